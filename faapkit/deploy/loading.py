"""Loading a run's perturbation and its fair detector for use outside faapkit.

A path is a run folder (or one seed's folder of a seed set), resolved exactly as ``faap eval RUN``
resolves it (:func:`faapkit.evaluate.command.checkpoint_choice.resolve_target`: ``best.pt`` checked against the
sha256 its ``selection.json`` recorded, ``--epoch N``), or a checkpoint file. The detector is the
run's (:func:`faapkit.evaluate.command.settings.run_detector`), and its weights must be the ones the
checkpoint's generator was trained against (:func:`faapkit.evaluate.command.settings.check_trained_against`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.errors import FaapError


@dataclass(frozen=True)
class Loaded:
    """What :func:`load_parts` resolved: the chosen checkpoint (``Target``), the detector's spec
    and weights, the generator (in eval mode) and the :class:`DeployInfo`."""

    target: Any
    detector_spec: Any
    detector_checkpoint: Path | None
    generator: Any
    info: Any
    detector: Any  # the loaded FrozenDetector, or None where nothing needed it yet


def load_perturbation(path: str | Path, *, epoch: int | None = None, registries: Any = None) -> Any:
    """The run's perturbation as a :class:`faapkit.deploy.modules.Perturbation` (a
    ``torch.nn.Module``): ``images (N, 3, H, W)`` float RGB in [0, 1] at the detector's input
    scale -> the perturbed images, same shape, in [0, 1]. A generator that reads the detector
    carries the frozen detector's weights inside (the run's detector, checked against the
    fingerprint the checkpoint recorded)."""
    from faapkit.deploy.modules import Perturbation

    if exported := load_exported(Path(path), "perturbation", epoch):
        return exported
    parts = load_parts(Path(path), epoch, registries, need_detector=False)
    return Perturbation(parts.generator, parts.info, parts.detector if parts.info.reads_detector else None).eval()


def load_fair_detector(path: str | Path, *, epoch: int | None = None, registries: Any = None) -> Any:
    """The run's perturbation in front of its frozen detector, with the detector's
    post-processing (:class:`faapkit.deploy.modules.FairDetector`): ``images (N, 3, H, W)`` in
    [0, 1] -> ``(boxes (N, Q, 4) xyxy in input pixels, scores (N, Q), labels (N, Q))``, every
    query kept, as ``faap eval`` scores them."""
    from faapkit.deploy.modules import FairDetector, Perturbation

    if exported := load_exported(Path(path), "fair-detector", epoch):
        return exported
    parts = load_parts(Path(path), epoch, registries, need_detector=True)
    perturbation = Perturbation(parts.generator, parts.info, parts.detector if parts.info.reads_detector else None)
    return FairDetector(perturbation, parts.detector).eval()


def load_exported(path: Path, interface: str, epoch: int | None) -> Any:
    """A file ``faap export`` wrote (it has a sidecar) as a :class:`faapkit.deploy.modules.Exported`
    module, its sidecar checked first (an edited one is refused naming the key); ``None`` for
    anything else."""
    from faapkit.artifacts.exported import load_runner, read_sidecar, sidecar_path
    from faapkit.deploy.modules import Exported

    if not (path.is_file() and sidecar_path(path).is_file()):
        return None
    sidecar = read_sidecar(path)
    if epoch is not None:
        raise FaapError(f"{path} is an exported file of one checkpoint; epoch= chooses within a run folder")
    if sidecar.get("interface") != interface:
        call = "load_fair_detector" if sidecar.get("interface") == "fair-detector" else "load_perturbation"
        raise FaapError(f"{path} is a {sidecar.get('interface')} export: load it with faapkit.{call}")
    return Exported(load_runner(path, str(sidecar["format"])), sidecar).eval()


def load_parts(path: Path, epoch: int | None, registries: Any, *, need_detector: bool) -> Loaded:
    """Resolve ``path`` to its checkpoint, load the generator (with the detector where it reads
    it, or where ``need_detector``) and describe it."""
    import torch

    from faapkit.evaluate.command.settings import check_trained_against, run_detector
    from faapkit.evaluate.evaluator import load_generator
    from faapkit.io import load_checkpoint

    reg = registries or _registries()
    target = chosen_checkpoint(path, epoch)
    ckpt = load_checkpoint(target.checkpoint, mmap=True)
    name = str((ckpt.get("generator_spec") or {}).get("name", "unet"))
    reads = name in reg.generators and reg.generators.get(name).uses_detector
    det_name, det_ckpt = run_detector(target.config, _recorded_detector(ckpt, target), None)
    if det_name not in reg.detectors:
        raise FaapError(f"{target.checkpoint}: its detector '{det_name}' is not installed (no plugin registers it)")
    spec = reg.detectors.get(det_name)
    detector = None
    if reads or need_detector:
        from faapkit.detr.frozen import load_detector

        detector = load_detector(spec, det_ckpt)
        check_trained_against(target.checkpoint, detector)
    generator, meta = load_generator(target.checkpoint, None, torch.device("cpu"), reg.generators, detector=detector)
    info = describe(target, ckpt, spec, meta, reads)
    return Loaded(target, spec, det_ckpt, generator, info, detector)


def chosen_checkpoint(path: Path, epoch: int | None) -> Any:
    """The checkpoint ``faap eval`` would evaluate for ``path`` (a ``Target``); a seed set is
    refused naming its seeds' folders, a folder without a checkpoint naming ``--epoch``."""
    from faapkit.artifacts.seedset import is_seed_set, seed_runs
    from faapkit.evaluate.command.checkpoint_choice import CHANGED_BEST_HINT, resolve_target

    if path.is_dir() and is_seed_set(path):
        seeds = ", ".join(str(folder) for _, folder in seed_runs(path))
        raise FaapError(f"{path} is a seed set: name one seed's run folder ({seeds})")
    try:
        target = resolve_target(path, epoch)
    except FaapError as exc:  # faap eval's hint names an option the deploy commands do not take
        problem, changed, _ = exc.one_line().partition(CHANGED_BEST_HINT)
        if not changed:
            raise
        raise FaapError(f"{problem}; name another checkpoint with --epoch N") from None
    if target.checkpoint is None or target.chosen_by.startswith("highest global_step"):
        # faap eval scores the highest step with a warning; a deployed perturbation must be one chosen
        raise FaapError(
            f"{path}: the run chose no checkpoint (no best.pt); name one with --epoch N or a checkpoint path"
        )
    return target


def describe(target: Any, ckpt: dict[str, Any], spec: Any, meta: dict[str, Any], reads: bool) -> Any:
    """The :class:`DeployInfo` of a loaded checkpoint: the sizes are the run's eval sizes (its
    stored ``data.min_size``/``max_size`` over the detector's)."""
    from faapkit import __version__
    from faapkit.artifacts.integrity import file_sha256
    from faapkit.deploy.modules import DeployInfo
    from faapkit.evaluate.command.settings import resolve_sizes

    sizes = resolve_sizes(spec, target.config.get("data", {}), [])
    stored = ckpt.get("detector")
    record: dict[str, Any] = stored if isinstance(stored, dict) else {}
    return DeployInfo(
        run_id=target.run_id or (str(ckpt["run_id"]) if ckpt.get("run_id") else None),
        checkpoint=str(target.checkpoint),
        checkpoint_sha256=file_sha256(target.checkpoint),
        chosen_by=target.chosen_by,
        epsilon=float(meta["epsilon"]),
        generator=str(meta["generator"]),
        reads_detector=reads,
        detector={"name": spec.name, "sha256": record.get("sha256")},
        min_size=int(sizes["min_size"]),
        max_size=int(sizes["max_size"]),
        faapkit=__version__,
    )


def _recorded_detector(ckpt: dict[str, Any], target: Any) -> str | None:
    """A loose checkpoint (no run folder) names its detector itself."""
    if target.config:
        return None
    record = ckpt.get("detector")
    return str(record["name"]) if isinstance(record, dict) and record.get("name") else None


def _registries() -> Any:
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    return Registries.from_plugin_manager(make_plugin_manager())
