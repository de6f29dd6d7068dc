"""``faap export``: a run's perturbation (or fair detector) as one TorchScript or ONNX file, its
parity with the eager module checked before it is kept, and its sidecar JSON.

TorchScript is written by tracing (``torch.jit.script`` cannot compile the generators' and
DETR's Python), ONNX by ``torch.onnx`` (the ``export`` extra). Both are traced at one size with
the height and width left symbolic; the file is then run at two eval sizes of the run (a
landscape and a portrait image) and must match the eager module to :data:`PARITY_TOLERANCE`
(max abs) at both, else nothing is written. Every output is written to a temporary name and
renamed.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.artifacts.exported import (
    EMBEDDED_NAME,
    EXTRA_INSTALL,
    FORMATS,
    SIDECAR_FORMAT,
    embedded_of,
    load_runner,
    missing_onnx_packages,
    sealed,
    sidecar_path,
)
from faapkit.errors import ConfigError, FaapError
from faapkit.io import atomic_write_with

PARITY_TOLERANCE = 1e-4
INPUT_CONVENTION = "float32 RGB in [0, 1], (N, 3, H, W), unpadded, at the detector's input scale"


@dataclass(frozen=True)
class ExportRequest:
    """One ``faap export``: the run (folder, seed folder or checkpoint), ``--epoch``, the format,
    whether the detector and its post-processing go in (``--with-detector``), whether the file
    must hold no detector internals (``--black-box``), the output and ``--force``."""

    run: Path
    fmt: str
    out: Path | None = None
    epoch: int | None = None
    with_detector: bool = False
    black_box: bool = False
    force: bool = False


def check_request(req: ExportRequest) -> None:
    """The refusals that need no checkpoint: an unknown format, a missing export extra."""
    if req.fmt not in FORMATS:
        raise ConfigError(f"--format {req.fmt!r} is not one of {', '.join(FORMATS)}")
    if req.fmt == "onnx" and (missing := missing_onnx_packages()):
        raise FaapError(f"--format onnx needs {', '.join(missing)} (the export extra): {EXTRA_INSTALL}")
    if req.black_box and req.with_detector:
        raise ConfigError("--black-box exports the perturbation alone; --with-detector puts the detector in")


def default_out(target: Any, fmt: str, with_detector: bool) -> Path:
    """``RUN/export/<perturbation|fair-detector><suffix>`` for a run, else beside the checkpoint."""
    name = ("fair-detector" if with_detector else "perturbation") + FORMATS[fmt]
    if target.run_dir is not None:
        return Path(target.run_dir) / "export" / name
    return Path(target.checkpoint).with_name(f"{Path(target.checkpoint).stem}.{name}")


def probe_sizes(min_size: int, max_size: int) -> list[tuple[int, int]]:
    """Two eval sizes ``(H, W)`` the export is traced at and checked at: a 4:3 landscape and a
    3:4 portrait image resized as ``faap eval`` resizes them."""
    from faapkit.data.transforms import resized_hw

    return [resized_hw(480, 640, min_size, max_size), resized_hw(640, 480, min_size, max_size)]


def export_run(req: ExportRequest) -> tuple[Path, dict[str, Any]]:
    """Load, check, trace, verify and write: the file written and its sidecar."""
    from faapkit.artifacts.outputs import check_output, ensure_folder
    from faapkit.deploy.loading import chosen_checkpoint, load_fair_detector, load_perturbation
    from faapkit.io import atomic_write_text

    check_request(req)
    target = chosen_checkpoint(req.run, req.epoch)
    out = req.out or default_out(target, req.fmt, req.with_detector)
    if req.out is None:
        ensure_folder(out, "--out")  # RUN/export, made on first use
    check_output(out, "--out", force=req.force, suffixes=(FORMATS[req.fmt],), what=f"the {req.fmt} export")
    check_output(sidecar_path(out), "--out's sidecar", force=req.force)
    load = load_fair_detector if req.with_detector else load_perturbation
    module = load(target.checkpoint if target.run_dir is None else req.run, epoch=req.epoch)
    info = module.info
    if req.black_box and info.reads_detector:
        raise FaapError(
            f"{target.checkpoint}: its '{info.generator}' generator reads the detector's internals, so a black-box "
            "file cannot hold it; export it with --with-detector (or alone, detector parts inside), or train a "
            "pixel-only generator (generator.name=subpixel)"
        )
    sizes = probe_sizes(info.min_size, info.max_size)
    inside = embedded_of(identity_of(info, req))
    written, parity = write_checked(module, req.fmt, out, sizes, batch=1 if req.with_detector else 2, inside=inside)
    sidecar = sidecar_of(info, req, written, sizes, parity)
    sidecar["run"] = str(target.run_dir) if target.run_dir is not None else None
    sidecar = sealed(sidecar)
    atomic_write_text(sidecar_path(written), json.dumps(sidecar, indent=2) + "\n")
    return written, sidecar


def write_checked(
    module: Any, fmt: str, out: Path, sizes: list[tuple[int, int]], batch: int, inside: dict[str, Any]
) -> tuple[Path, float]:
    """Export ``module`` traced at ``sizes[0]`` (``batch`` images), with the record ``inside``
    written into the file, to a temporary file beside ``out``; check it at every size against
    the eager module, then rename it to ``out``. Returns ``(out, max abs difference)``; a file
    off by more than :data:`PARITY_TOLERANCE` is removed and refused."""
    for stale in out.parent.glob(f".{glob.escape(out.name)}.*.tmp{glob.escape(out.suffix)}"):
        stale.unlink(missing_ok=True)  # left by an export killed before its rename
    worst = 0.0

    def traced_and_checked(tmp: Path) -> None:
        nonlocal worst
        trace_to(module, fmt, tmp, example_images(*sizes[0], n=batch), inside)
        worst = parity(module, tmp, fmt, sizes, batch)
        if worst > PARITY_TOLERANCE:
            raise FaapError(
                f"the {fmt} export differs from the eager module by {worst:.2e} (> {PARITY_TOLERANCE:g}) at "
                f"{', '.join(f'{h}x{w}' for h, w in sizes)}; nothing written"
            )

    atomic_write_with(out, traced_and_checked, keep_suffix=True)
    return out, worst


def example_images(height: int, width: int, n: int = 2, seed: int = 0) -> Any:
    """``(n, 3, H, W)`` seeded images in [0, 1] with structure at several scales (a smooth field
    plus fine noise): enough for the detector to see something and for a parity check to cover
    the whole value range."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(n, 3, 8, 8, generator=gen), size=(height, width), mode="bilinear")
    return (0.8 * coarse + 0.2 * torch.rand(n, 3, height, width, generator=gen)).clamp(0, 1)


def trace_to(module: Any, fmt: str, path: Path, example: Any, inside: dict[str, Any]) -> None:
    """Trace ``module`` on ``example`` into ``path`` (TorchScript or ONNX), H and W symbolic, with
    the JSON record ``inside`` in the file (an extra file, an ONNX metadata entry)."""
    import warnings

    import torch

    record = json.dumps(inside, sort_keys=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values: parity is checked instead
        if fmt == "torchscript":
            traced = torch.jit.trace(module, (example,), check_trace=False)
            torch.jit.save(traced, str(path), _extra_files={EMBEDDED_NAME: record})
            return
        outputs = ["boxes", "scores", "labels"] if isinstance(module(example), tuple) else ["images"]
        axes = {"images": {0: "batch", 2: "height", 3: "width"}}
        axes.update({name: {0: "batch"} for name in outputs if name != "images"})
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["images"],
            output_names=outputs,
            dynamic_axes=axes,
            dynamo=False,
            opset_version=17,
        )
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = EMBEDDED_NAME, record
    onnx.save(model, str(path))


def parity(module: Any, file: Path, fmt: str, sizes: list[tuple[int, int]], batch: int = 2) -> float:
    """The largest absolute difference between ``file``'s outputs and ``module``'s over images at
    every size (a fair detector's boxes are compared in units of the image's longer side)."""
    import torch

    run = load_runner(file, fmt)
    worst = 0.0
    for i, (h, w) in enumerate(sizes):
        images = example_images(h, w, n=batch, seed=i + 1)
        with torch.no_grad():
            eager = module(images)
        got = run(images)
        pairs = list(zip(eager, got, strict=True)) if isinstance(eager, tuple) else [(eager, got)]
        for k, (a, b) in enumerate(pairs):
            scale = float(max(h, w)) if isinstance(eager, tuple) and k == 0 else 1.0
            worst = max(worst, float((a.float() - b.float()).abs().max()) / scale)
    return worst


def identity_of(info: Any, req: ExportRequest) -> dict[str, Any]:
    """What the exported file is and came from: its format and interface, and the loaded
    checkpoint's :class:`faapkit.deploy.modules.DeployInfo` (less its free-form ``extra``)."""
    return {
        "format": req.fmt,
        "interface": "fair-detector" if req.with_detector else "perturbation",
        **{k: v for k, v in info.to_json().items() if k not in ("extra", "faapkit")},
    }


def sidecar_of(info: Any, req: ExportRequest, out: Path, sizes: list[tuple[int, int]], worst: float) -> dict[str, Any]:
    from faapkit.artifacts.integrity import file_sha256

    return {
        "schema": SIDECAR_FORMAT,
        "file": out.name,
        "file_sha256": file_sha256(out),
        "input": INPUT_CONVENTION,
        "output": (
            "boxes (N, Q, 4) xyxy in input pixels, scores (N, Q), labels (N, Q); every query, no threshold"
            if req.with_detector
            else "perturbed images, same shape, float32 RGB in [0, 1]"
        ),
        "accepted_sizes": "any",
        # the detector's post-processing returns one result per image, which a trace unrolls
        "batch": 1 if req.with_detector else "any",
        "size_policy": (
            f"resize the short side to {info.min_size} (long side capped at {info.max_size}) before the file, "
            "as faap eval does: the perturbation was trained at that scale"
        ),
        "parity": {"max_abs": worst, "tolerance": PARITY_TOLERANCE, "sizes": [list(s) for s in sizes]},
        "carries_detector": req.with_detector or info.reads_detector,
        **identity_of(info, req),
        "faapkit": info.faapkit,
    }
