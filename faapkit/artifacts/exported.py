"""A perturbation exported by ``faap export``: the file (TorchScript or ONNX) and its sidecar JSON
``FILE.json``, read back to run it (``faap eval --exported``, the parity check, the benchmarks).

The sidecar says what the file is: ``format``, ``interface`` (``perturbation``: ``(N, 3, H, W)``
in [0, 1] -> same; ``fair-detector``: -> ``boxes (N, Q, 4)``, ``scores (N, Q)``, ``labels (N, Q)``),
the input convention, the accepted sizes, epsilon, the run, the checkpoint's sha256, the
detector's fingerprint and the faapkit version that wrote it.

A sidecar is checked whole before anything trusts it (:func:`read_sidecar`): the file must be
the one it describes (``file_sha256``); what the file was exported with (epsilon, run,
checkpoint, generator, detector, sizes: :data:`EMBEDDED_KEYS`) is also written inside the file
(a TorchScript extra file, an ONNX metadata entry, both covered by the file's sha256) and must
equal the sidecar's; and the sidecar's own fields must hash to its ``sidecar_sha256``. An edited
sidecar is refused naming the key.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from faapkit.errors import FaapError

SIDECAR_FORMAT = "faapkit-export/1"
FORMATS = {"torchscript": ".ts", "onnx": ".onnx"}
EXTRA_INSTALL = "pip install 'faapkit[export]'"
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
DIGEST_KEY = "sidecar_sha256"
EMBEDDED_NAME = "faapkit.json"  # the record inside the file: TorchScript extra file, ONNX metadata key
# what the file's numbers depend on or are filed under: written inside the file as in the sidecar
EMBEDDED_KEYS = (
    "format", "interface", "epsilon", "generator", "run_id", "checkpoint_sha256", "detector", "min_size", "max_size"
)


def sidecar_path(file: Path) -> Path:
    return file.with_name(file.name + ".json")


def read_sidecar(file: Path) -> dict[str, Any]:
    """The sidecar of an exported ``file``, refused in one line when missing or not one."""
    path = sidecar_path(file)
    if not file.is_file():
        raise FaapError(f"{file} is not a file (a faap export file)" if file.exists() else f"not found: {file}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FaapError(f"{file} has no sidecar {path.name} (faap export writes one beside the file)") from None
    except (OSError, ValueError) as exc:
        raise FaapError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SIDECAR_FORMAT:
        raise FaapError(f"{path} is not a faap export sidecar (schema {SIDECAR_FORMAT})")
    if data.get("format") not in FORMATS:
        raise FaapError(f"{path}: unknown format {data.get('format')!r} (known: {', '.join(FORMATS)})")
    check_sidecar(file, data)
    return data


def sealed(sidecar: dict[str, Any]) -> dict[str, Any]:
    """``sidecar`` with the hash of its own fields under :data:`DIGEST_KEY`."""
    from faapkit.artifacts.integrity import record_sha256

    return {**sidecar, DIGEST_KEY: record_sha256(sidecar, DIGEST_KEY)}


def embedded_of(sidecar: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``sidecar`` that ``faap export`` also writes inside the file."""
    return {key: sidecar.get(key) for key in EMBEDDED_KEYS}


def check_sidecar(file: Path, sidecar: dict[str, Any]) -> None:
    """Refuse a sidecar that does not describe ``file`` as ``faap export`` wrote it: another file
    (sha256), a field that differs from the record inside the file (named), or fields that no
    longer hash to ``sidecar_sha256``."""
    from faapkit.artifacts.integrity import file_sha256, record_sha256

    path = sidecar_path(file)
    if file_sha256(file) != sidecar.get("file_sha256"):
        raise FaapError(f"{file} differs from the file its sidecar describes (sha256); export it again")
    inside = embedded_record(file, str(sidecar["format"]))
    if inside is None:
        raise FaapError(f"{file} holds no record of its export (an older faapkit wrote it); export it again")
    for key, value in inside.items():
        if sidecar.get(key) != value:
            raise FaapError(
                f"{path}: {key} is {json.dumps(sidecar.get(key))}, but {file.name} was exported with "
                f"{json.dumps(value)} (the sidecar was edited); export it again"
            )
    if sidecar.get(DIGEST_KEY) != record_sha256(sidecar, DIGEST_KEY):
        changed = DIGEST_KEY if DIGEST_KEY in sidecar else f"{DIGEST_KEY} missing"
        raise FaapError(f"{path} was edited after faap export wrote it ({changed}: its fields differ); export it again")


def embedded_record(file: Path, fmt: str) -> dict[str, Any] | None:
    """The record ``faap export`` wrote inside ``file`` (:data:`EMBEDDED_KEYS`), ``None`` if it
    holds none; a file that is not of format ``fmt`` is named."""
    with _named_load_error(file, fmt):
        if fmt == "torchscript":
            import zipfile

            with zipfile.ZipFile(file) as archive:
                names = [n for n in archive.namelist() if n.endswith(f"/extra/{EMBEDDED_NAME}")]
                text = archive.read(names[0]).decode("utf-8") if names else None
        else:
            missing = missing_onnx_packages()
            if missing:
                raise FaapError(f"reading {file} needs {', '.join(missing)} (the export extra): {EXTRA_INSTALL}")
            import onnx

            model = onnx.load(str(file), load_external_data=False)
            text = next((e.value for e in model.metadata_props if e.key == EMBEDDED_NAME), None)
    if text is None:
        return None
    record = json.loads(text)
    return record if isinstance(record, dict) else None


def missing_onnx_packages() -> list[str]:
    """The packages of the ``export`` extra that are not installed (ONNX export and onnxruntime)."""
    import importlib.util

    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def check_accepted(sidecar: dict[str, Any], batch: int, height: int, width: int, file: Path) -> None:
    """Refuse an input the exported file does not accept: its sidecar's ``accepted_sizes``
    (``"any"`` or a list of ``[H, W]``) and ``batch`` (``"any"`` or the one batch size traced)."""
    accepted, batches = sidecar.get("accepted_sizes"), sidecar.get("batch", "any")
    if accepted != "any" and [height, width] not in (accepted or []):
        raise FaapError(
            f"{file} does not accept {height}x{width} images (accepted: {accepted}); re-export at that size"
        )
    if batches != "any" and batch != batches:
        raise FaapError(f"{file} takes batches of {batches} image(s), not {batch}")


def load_runner(file: Path, fmt: str) -> Callable[[Any], Any]:
    """A callable on a float ``(N, 3, H, W)`` tensor giving the file's outputs as tensors (one
    tensor, or a tuple for the fair detector), run on CPU by ``torch.jit.load`` or onnxruntime."""
    import torch

    if fmt == "torchscript":
        import warnings

        with warnings.catch_warnings(), _named_load_error(file, fmt):
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's notice that TorchScript is frozen
            module = torch.jit.load(str(file), map_location="cpu").eval()

        def run_script(images: torch.Tensor) -> Any:
            with torch.no_grad():
                return module(images)

        return run_script
    missing = missing_onnx_packages()
    if missing:
        raise FaapError(f"running {file} needs {', '.join(missing)} (the export extra): {EXTRA_INSTALL}")
    import onnxruntime

    with _named_load_error(file, fmt):
        session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run_onnx(images: torch.Tensor) -> Any:
        outs = [torch.from_numpy(o) for o in session.run(None, {name: images.detach().cpu().contiguous().numpy()})]
        return outs[0] if len(outs) == 1 else tuple(outs)

    return run_onnx


@contextlib.contextmanager
def _named_load_error(file: Path, fmt: str) -> Iterator[None]:
    """A file the runtime cannot load (damaged, or another format than its sidecar says) as one
    line naming it, not the runtime's multi-line error."""
    try:
        yield
    except FaapError:
        raise
    except Exception as exc:  # torch.jit and onnxruntime raise their own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FaapError(f"cannot load {file} as {fmt}: {first}") from None


def exported_generator(file: Path) -> tuple[Any, dict[str, Any]]:
    """An exported perturbation as ``faap eval`` runs a generator: a module mapping normalised
    images ``(B, 3, H, W)`` to the delta that takes them to the file's output (so
    :func:`faapkit.generators.perturb.apply_perturbation` gives the file's images), and the
    metadata the metrics record. The file must be the one its sidecar describes (sha256)."""
    import torch
    from torch import nn

    from faapkit.data.transforms import denormalize, normalize

    sidecar = read_sidecar(file)
    if sidecar.get("interface") != "perturbation":
        raise FaapError(f"{file} is a {sidecar.get('interface')} export; faap eval --exported scores a perturbation")
    run = load_runner(file, str(sidecar["format"]))

    class AsDelta(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            check_accepted(sidecar, x.shape[0], x.shape[-2], x.shape[-1], file)
            out = run(denormalize(x).contiguous()).to(x.device, x.dtype)
            return normalize(out) - x

    exported = {k: sidecar.get(k) for k in ("format", "file_sha256", "checkpoint_sha256", "parity")}
    meta: dict[str, Any] = {
        "generator": sidecar.get("generator"),
        "epsilon": sidecar.get("epsilon"),
        "epsilon_source": "exported file",
        "exported": {**exported, "file": str(file.absolute())},
    }
    return AsDelta(), meta


def exported_source(file: Path) -> Path:
    """The checkpoint an exported file was made from (its sidecar's), to evaluate its run."""
    checkpoint = Path(str(read_sidecar(file).get("checkpoint")))
    if not checkpoint.is_file():
        raise FaapError(f"{file}: the checkpoint its sidecar names is gone ({checkpoint}); pass the run folder")
    return checkpoint


def check_exported_from(file: Path, checkpoint: Path | None) -> None:
    """Refuse scoring ``file`` as the run of ``checkpoint`` unless it was exported from that very
    file (the sidecar's checkpoint sha256): its numbers would be filed as another checkpoint's."""
    from faapkit.artifacts.integrity import file_sha256

    recorded = read_sidecar(file).get("checkpoint_sha256")
    if checkpoint is None:
        raise FaapError(f"--exported {file}: name the run it was exported from")
    if file_sha256(checkpoint) != recorded:
        raise FaapError(
            f"--exported {file} was exported from a checkpoint with sha256 {str(recorded)[:12]}, not {checkpoint}; "
            "name the run or checkpoint it came from"
        )
