"""``faap eval`` of one run folder or checkpoint (or of the baseline alone): resolve the target,
settings, data and detector; take the output's lock and refuse a taken output, all before any
inference; then infer, score, annotate and write."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faapkit.errors import ConfigError
from faapkit.evaluate import outputs
from faapkit.evaluate.host import Host, Notes, Progress
from faapkit.evaluate.request import EvalCommand
from faapkit.evaluate.settings import CommandLayers
from faapkit.evaluate.targets import Target, resolve_target

if TYPE_CHECKING:
    from faapkit.evaluate.evaluator import EvalRequest
    from faapkit.plugins.registry import Registries


@dataclass(frozen=True)
class Resolved:
    """What :func:`evaluate_one` resolved before any inference."""

    tgt: Target
    settings: Any  # EvalConfig
    sources: dict[str, str]  # per setting, the layer that set it
    dcfg: Any  # DataConfig
    det: Any  # the loaded detector
    dev: Any  # torch.device
    dist_info: Any
    split_data: Any  # EvalSplit
    input_size: dict[str, Any]  # {"min_size", "max_size", "source"}
    settings_out: list[str]  # "baseline" (and "perturbed" with a checkpoint)


def checked_target(cmd: EvalCommand, say: Notes) -> Target:
    """What to evaluate (after the options that need no file); a checkpoint in a run folder
    must be that run's (run id and version)."""
    from faapkit.config import check_device

    if cmd.epsilon is not None and not 0 < cmd.epsilon <= 1:
        raise ConfigError(f"--epsilon must be in (0, 1], got {cmd.epsilon}")
    check_device(cmd.device, "--device")
    if cmd.codec is not None:  # refused before any work
        from faapkit.data.codecs import parse_codec

        parse_codec(cmd.codec)
    tgt = resolve_target(_target_of(cmd), cmd.epoch, cmd.accept_changed_best, say)
    if cmd.exported is not None:
        from faapkit.artifacts.exported import check_exported_from

        check_exported_from(cmd.exported, tgt.checkpoint)
    if tgt.run_dir is not None and tgt.checkpoint is not None:
        from faapkit.evaluate.guards import check_belongs

        check_belongs(tgt.checkpoint, tgt.run_dir)
    return tgt


def _target_of(cmd: EvalCommand) -> Path | None:
    """``--exported FILE`` scores FILE against the run it was exported from (RUN, else its sidecar's checkpoint)."""
    if cmd.exported is None or cmd.target is not None:
        return cmd.target
    from faapkit.artifacts.exported import exported_source

    return exported_source(cmd.exported)


def evaluate_one(cmd: EvalCommand, layers: CommandLayers, reg: Registries, host: Host) -> dict[str, Any] | None:
    """Resolve, claim the output, infer, score and write; the result, or ``None`` on a non-zero
    rank."""
    from faapkit.distributed import setup_process
    from faapkit.evaluate import inputs
    from faapkit.evaluate import settings as layering
    from faapkit.evaluate.evaluator import load_eval_split

    tgt = checked_target(cmd, host)
    outputs.check_folder(tgt, cmd.out)  # a folder that cannot take the result is said before any work
    run_config = tgt.config
    run_eval = layering.run_layer(run_config.get("eval", {}))
    settings, sources = layering.resolve([("the run's config", run_eval), *layers.eval])
    det_name, det_ckpt = inputs.run_detector(run_config, cmd.detector, cmd.detector_checkpoint)
    detector = (reg.detectors.get(det_name), det_ckpt)
    input_size = layering.resolve_sizes(detector[0], run_config.get("data", {}), layers.sizes)
    dcfg, root = inputs.run_data(
        run_config, cmd.data, cmd.limit_images, cmd.on_invalid, tgt.trained_on, detector, input_size
    )
    if (group_level := layering.group_level_of(layers.sizes)) is not None:
        dcfg = dcfg.model_copy(update={"group_level": group_level})
    attr = cmd.split_by or dcfg.split_by
    if cmd.disadvantaged is not None and cmd.disadvantaged == cmd.advantaged:
        raise ConfigError(f"--disadvantaged and --advantaged are both '{cmd.advantaged}': the gap needs two groups")
    dist_info, dev = setup_process(cmd.device, key="--device")
    named = cmd.detector is not None or cmd.detector_checkpoint is not None
    det = inputs.checked_detector(detector, named, tgt, dev)
    split_data = load_eval_split(
        root, settings.split, attr, dcfg.layout, dcfg.limit_images, dcfg.on_corrupt, dcfg.on_invalid, dcfg.group_level
    )
    tags = outputs.tags(cmd, layers.sizes, det, split_data, settings, dcfg)
    path = outputs.output_path(tgt, cmd.out, settings.split, attr, dcfg.limit_images, tags)
    settings_out = ["baseline", *(["perturbed"] if tgt.checkpoint is not None else [])]
    det_paths = outputs.detection_paths(path, settings_out, settings.save_detections)
    resolved = Resolved(tgt, settings, sources, dcfg, det, dev, dist_info, split_data, input_size, settings_out)
    lock = outputs.claim(path, det_paths, cmd.force, host) if dist_info.is_main else None
    try:
        return _infer_and_write(cmd, reg, resolved, (path, det_paths, lock), host)
    finally:
        if lock is not None:
            lock.release()


def _infer_and_write(
    cmd: EvalCommand, reg: Registries, r: Resolved, output: tuple[Path | None, list[Path], Any], host: Host
) -> dict[str, Any] | None:
    """Infer and score what :func:`evaluate_one` resolved and write ``output`` (``(path,
    detection paths, lock)``)."""
    from faapkit.distributed import shutdown
    from faapkit.evaluate.evaluator import evaluate_with_detections
    from faapkit.evaluate.inputs import annotate, reference_pair

    tgt, split, is_main = r.tgt, r.settings.split, r.dist_info.is_main
    path, det_paths, lock = output
    if tgt.chosen_on == split and is_main:
        host.warn(f"the checkpoint was chosen on '{split}', the split being reported: its numbers are optimistic")
        tgt = replace(tgt, chosen_by=f"{tgt.chosen_by}; chosen on the reported split")
    if is_main:
        for line in r.split_data.warnings():
            host.warn(line)
    same_attr = r.split_data.split_by == r.dcfg.split_by
    pair = reference_pair(r.split_data, *cmd.pair, r.dcfg if same_attr else None, bool(tgt.config))
    try:
        with host.progress(cmd.progress and is_main) as progress:
            result, dets = evaluate_with_detections(build_request(cmd, r, pair, reg, progress))
    finally:
        shutdown(r.dist_info)
    if not result:
        return None  # non-zero ranks
    annotate(result, tgt, r.dcfg, r.settings, r.sources, r.input_size)
    if path is not None:
        if lock is not None:
            lock.check_unchanged(cmd.force)  # written meanwhile by a process that ignored the lock
        outputs.write(path, result, r.settings_out, det_paths, dets, cmd.force, host)
        if tgt.run_dir is not None:
            host.evaluation_written(tgt.run_dir, path)
    return result


def build_request(
    cmd: EvalCommand, r: Resolved, pair: tuple[str | None, str | None], reg: Registries, progress: Progress
) -> EvalRequest:
    """The evaluator's :class:`EvalRequest` from the resolved settings."""
    from faapkit.evaluate.evaluator import EvalRequest

    return EvalRequest(
        data=r.split_data,
        detector=r.det,
        device=r.dev,
        checkpoint=r.tgt.checkpoint,
        epsilon=cmd.epsilon,
        batch_size=r.settings.batch_size,
        min_size=r.dcfg.min_size,
        max_size=r.dcfg.max_size,
        bootstrap=r.settings.bootstrap,
        seed=r.settings.seed,
        confidence=r.settings.confidence,
        iou_thresholds=r.settings.iou_thresholds,
        coco_backend=r.settings.coco_backend,
        disadvantaged=pair[0],
        advantaged=pair[1],
        cache=not cmd.no_cache,
        amp=r.settings.amp,
        num_workers=cmd.workers,
        channels_last=r.settings.channels_last,
        generators=reg.generators,
        progress=progress,
        codec=_codec(cmd.codec),
        exported=cmd.exported,
    )


def _codec(text: str | None) -> Any:
    from faapkit.data.codecs import parse_codec

    return None if text is None else parse_codec(text)
