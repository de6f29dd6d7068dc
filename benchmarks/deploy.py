"""The benchmarks' ``deploy`` section: what the perturbation costs in front of the detector.

``python -m benchmarks.deploy [--repeats N] [--batches 1,8] [--runtimes eager,torchscript,onnxruntime]``

Per image, at the embedded benchmark's eval size (128 x 170): the frozen detector alone (normalise,
DETR, post-processing) against the fair detector (``faapkit.deploy.modules.FairDetector``: the
perturbation, then the same detector), for level-up's default generator (``transformer-aware``,
which reads the detector's backbone, encoder and decoder on the clean image) and for a pixel-only
one (``subpixel``), eager, TorchScript (traced) and onnxruntime, batch 1 and 8, all in one run, so
every ratio is of numbers measured together. Generator weights are random: the cost does not
depend on them. The modules are timed in turn within each repeat (the machine may be shared).
The arithmetic bound of a detector-reading generator is printed beside its eager rows: ``1 +
t(view) / t(detector)``, ``t(view)`` the eager time of the detector parts it reads
(``FrozenDetector.transformer_view``: backbone, encoder, decoder), since the fair detector runs
those on the clean image and the whole detector on the perturbed one; the generator's own
convolutions come on top.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from benchmarks.spread import Spread

GENERATORS = ("transformer-aware", "subpixel")
RUNTIMES = ("eager", "torchscript", "onnxruntime")
SIZE = (128, 170)


class DetectorOnly(nn.Module):
    """The unperturbed detector with the fair detector's interface: [0, 1] images -> boxes, scores, labels."""

    def __init__(self, detector: Any) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        from faapkit.data.transforms import normalize
        from faapkit.deploy.modules import input_sizes

        x = normalize(images)
        with torch.no_grad():
            outputs = self.detector(x, torch.zeros_like(x[:, 0], dtype=torch.bool))
        results = self.detector.postprocess(outputs, input_sizes(x))
        return tuple(torch.stack([r[k] for r in results]) for k in ("boxes", "scores", "labels"))  # type: ignore[return-value]


def fair_detector(name: str, detector: Any) -> nn.Module:
    """A fair detector around a freshly built ``name`` generator (random weights) and ``detector``."""
    from faapkit.deploy.modules import DeployInfo, FairDetector, Perturbation
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    spec = Registries.from_plugin_manager(make_plugin_manager()).generators.get(name)
    generator = spec.build(epsilon=0.09, detector=detector) if spec.uses_detector else spec.build(epsilon=0.09)
    info = DeployInfo(None, "-", "-", "-", 0.09, name, spec.uses_detector, {}, *SIZE, "-")
    return FairDetector(Perturbation(generator, info, detector if spec.uses_detector else None), detector).eval()


def runner(module: nn.Module, runtime: str, example: Tensor, folder: Path) -> Callable[[Tensor], Any]:
    """``module`` as ``runtime`` runs it, traced at ``example``'s shape for the exported forms."""
    if runtime == "eager":
        return module
    from faapkit.artifacts.exported import load_runner
    from faapkit.deploy.export import trace_to

    fmt = "torchscript" if runtime == "torchscript" else "onnx"
    path = folder / f"{id(module)}-{example.shape[0]}.{'ts' if fmt == 'torchscript' else 'onnx'}"
    trace_to(module, fmt, path, example)
    return load_runner(path, fmt)


def interleaved(fns: dict[str, Callable[[], object]], images: int, repeat: int, warmup: int) -> dict[str, Spread]:
    """Milliseconds per image of each of ``fns`` (each runs a batch of ``images``), timed in turn
    within every repeat, so a shared machine's load drifts over all of them alike. TorchScript's
    profiling executor optimises a graph only after its first calls: ``warmup`` calls each first."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        for _ in range(repeat):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(1000 * (time.perf_counter() - start) / images)
    return {name: Spread.of(values) for name, values in times.items()}


def section_deploy(
    repeat: int = 5,
    batches: tuple[int, ...] = (1, 8),
    runtimes: tuple[str, ...] = RUNTIMES,
    generators: tuple[str, ...] = GENERATORS,
    warmup: int = 3,
) -> list[dict[str, Any]]:
    """One row per (generator, runtime, batch): ms per image of the detector alone and of the
    fair detector, their ratio (of medians) and, for a detector-reading generator, the bound."""
    from faapkit.config import DEFAULT_DETECTOR
    from faapkit.detr.frozen import load_detector
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    detector = load_detector(Registries.from_plugin_manager(make_plugin_manager()).detectors.get(DEFAULT_DETECTOR))
    alone = DetectorOnly(detector).eval()
    fair = {name: fair_detector(name, detector) for name in generators}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in batches:
            images = torch.rand(batch, 3, *SIZE)
            for runtime in runtimes:
                fns = {"detector": _call(runner(alone, runtime, images, Path(tmp)), images)}
                fns |= {name: _call(runner(m, runtime, images, Path(tmp)), images) for name, m in fair.items()}
                if runtime == "eager":  # the parts a detector-reading generator runs, timed as eager
                    fns["view"] = lambda images=images: detector.transformer_view(images)
                got = interleaved(fns, batch, repeat, warmup)
                for name in generators:
                    reads = bool(fair[name].perturbation.info.reads_detector) and "view" in got
                    rows.append(
                        {
                            "generator": name,
                            "runtime": runtime,
                            "batch": batch,
                            "detector_ms": got["detector"],
                            "fair_ms": got[name],
                            "ratio": got[name].median / got["detector"].median,
                            "bound": 1 + got["view"].median / got["detector"].median if reads else None,
                        }
                    )
    return rows


def _call(fn: Callable[[Tensor], Any], images: Tensor) -> Callable[[], object]:
    return lambda: fn(images)


def table(rows: list[dict[str, Any]]) -> str:
    head = "generator          runtime      batch  detector ms/img        fair ms/img            ratio  bound"
    lines = [head]
    for r in rows:
        bound = f"{r['bound']:.2f}" if r["bound"] is not None else "-"
        lines.append(
            f"{r['generator']:<18} {r['runtime']:<12} {r['batch']:>5}  {r['detector_ms']!s:<22} "
            f"{r['fair_ms']!s:<22} {r['ratio']:.2f}  {bound}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    args = parser.parse_args(argv)
    batches = tuple(int(b) for b in args.batches.split(","))
    rows = section_deploy(args.repeats, batches, tuple(args.runtimes.split(",")))
    print(f"deploy (CPU, {torch.get_num_threads()} threads, {SIZE[0]}x{SIZE[1]} images, ms per image min/median/max)")
    print(table(rows))


if __name__ == "__main__":
    main()
