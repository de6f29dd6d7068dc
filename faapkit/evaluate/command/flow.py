"""``faap eval`` from its command to the metrics file, step by step: :func:`run_eval` refuses
impossible options and a misfiled ``--out``, layers the settings, then rescores saved detections,
relaunches under torchrun, evaluates a seed set (:func:`evaluate_seeds`: every seed's run as
``faap eval RUN`` evaluates it) or one run, checkpoint or the baseline (:func:`evaluate_one`).

One evaluation resolves the target (:mod:`~faapkit.evaluate.command.checkpoint_choice`),
settings, data and detector (:mod:`~faapkit.evaluate.command.settings`), takes the output's lock
and refuses a taken output (:mod:`~faapkit.evaluate.command.outputs`), all before any inference;
then :func:`faapkit.evaluate.evaluator.evaluate_with_detections` infers and scores, and the
result is annotated and written. Every refusal that needs no inference comes before the first
inference; a seed set checks every seed's run before the first seed's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faapkit.artifacts.seedset import is_seed_set, seed_states
from faapkit.errors import ConfigError, FaapError
from faapkit.evaluate.command import outputs
from faapkit.evaluate.command.checkpoint_choice import Target, check_belongs, resolve_target
from faapkit.evaluate.command.host import Host, Notes, Silent
from faapkit.evaluate.command.settings import CommandLayers
from faapkit.evaluate.requests import EvalCommand, EvalOutcome, Progress, SeedsOutcome

if TYPE_CHECKING:
    from faapkit.config import EvalConfig
    from faapkit.evaluate.requests import EvalRequest
    from faapkit.plugins.registry import Registries


def run_eval(cmd: EvalCommand, host: Host) -> EvalOutcome:
    """Refuse impossible options and a misfiled ``--out``, layer the settings, then do what
    ``cmd`` asks. Every refusal that needs no inference comes before the first inference."""
    from faapkit.evaluate.command.settings import check_options, command_layers

    check_options(cmd)
    if cmd.out is not None and cmd.rescore is None:  # found before inference, not when the metrics are written
        outputs.check_out(cmd.out, force=cmd.force)  # --rescore's, once it knows its file
    layers = command_layers(cmd, host)
    if cmd.rescore is not None:
        from faapkit.evaluate.command.rescore import refuse_inference_options, rescore_metrics

        refuse_inference_options(cmd)
        return EvalOutcome(result=rescore_metrics(cmd, layers, host))
    if cmd.nproc > 1:
        host.launch(cmd.nproc)  # each rank runs this command again, with one process
        return EvalOutcome()
    reg = host.registries()
    if cmd.target is not None and is_seed_set(cmd.target):
        return EvalOutcome(seeds=evaluate_seeds(cmd, layers, reg, host))
    return EvalOutcome(result=evaluate_one(cmd, layers, reg, host))


@dataclass(frozen=True)
class Resolved:
    """What :func:`evaluate_one` resolved before any inference."""

    tgt: Target
    settings: EvalConfig
    sources: dict[str, str]  # per setting, the layer that set it
    dcfg: Any  # DataConfig
    det: Any  # the loaded detector
    dev: Any  # torch.device
    dist_info: Any
    split_data: Any  # EvalSplit
    input_size: dict[str, Any]  # {"min_size", "max_size", "source"}
    settings_out: list[str]  # "baseline" (and "perturbed" with a checkpoint)
    other_detector: dict[str, Any] | None = None  # a detector-reading generator's other detector (the label)


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
    from faapkit.data.coco import require_person_label
    from faapkit.distributed import setup_process
    from faapkit.evaluate.command import settings as layering
    from faapkit.evaluate.evaluator import load_eval_split

    tgt = checked_target(cmd, host)
    outputs.check_folder(tgt, cmd.out)  # a folder that cannot take the result is said before any work
    run_config = tgt.config
    stored_eval = layering.run_layer(run_config.get("eval", {}))
    settings, sources = layering.resolve([("the run's config", stored_eval), *layers.eval])
    det_name, det_ckpt = layering.run_detector(run_config, cmd.detector, cmd.detector_checkpoint)
    detector = (reg.detectors.get(det_name), det_ckpt)
    input_size = layering.resolve_sizes(detector[0], run_config.get("data", {}), layers.sizes)
    dcfg, root = layering.run_data(
        run_config, cmd.data, cmd.limit_images, cmd.on_invalid, tgt.trained_on, detector, input_size, cmd.on_corrupt
    )
    if (group_level := layering.group_level_of(layers.sizes)) is not None:
        dcfg = dcfg.model_copy(update={"group_level": group_level})
    attr = cmd.split_by or dcfg.split_by
    if cmd.disadvantaged is not None and cmd.disadvantaged == cmd.advantaged:
        raise ConfigError(f"--disadvantaged and --advantaged are both '{cmd.advantaged}': the gap needs two groups")
    dist_info, dev = setup_process(cmd.device, key="--device")
    named = cmd.detector is not None or cmd.detector_checkpoint is not None
    det, other_detector = layering.checked_detector(
        detector, named, tgt, dev, (reg.generators, cmd.accept_other_detector)
    )
    if other_detector is not None:
        host.warn(
            f"the generator reads detector '{other_detector['trained_to_read']['name']}' and is evaluated with "
            f"'{det.name}' ({layering.OTHER_DETECTOR}): a transfer, labelled so in the metrics"
        )
    split_data = load_eval_split(
        root, settings.split, attr, dcfg.layout, dcfg.limit_images, dcfg.on_corrupt, dcfg.on_invalid, dcfg.group_level,
        resize=(int(input_size["min_size"]), int(input_size["max_size"])),
    )  # fmt: skip
    require_person_label(split_data, detector[0].person_label, detector[0].name)
    tags = outputs.tags(cmd, layers.sizes, det, split_data, settings, dcfg)
    path = outputs.output_path(tgt, cmd.out, settings.split, attr, dcfg.limit_images, tags)
    settings_out = ["baseline", *(["perturbed"] if tgt.checkpoint is not None else [])]
    det_paths = outputs.detection_paths(path, settings_out, settings.save_detections)
    resolved = Resolved(
        tgt, settings, sources, dcfg, det, dev, dist_info, split_data, input_size, settings_out, other_detector
    )
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
    from faapkit.evaluate.command.settings import annotate, reference_pair
    from faapkit.evaluate.evaluator import evaluate_with_detections

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
    if r.other_detector is not None:
        result["other_detector"] = r.other_detector
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
    """The evaluator's :class:`~faapkit.evaluate.requests.EvalRequest` from what was resolved."""
    from faapkit.evaluate.requests import EvalRequest

    return EvalRequest(
        data=r.split_data,
        detector=r.det,
        device=r.dev,
        checkpoint=r.tgt.checkpoint,
        epsilon=cmd.epsilon,
        eval_config=r.settings,
        min_size=r.dcfg.min_size,
        max_size=r.dcfg.max_size,
        disadvantaged=pair[0],
        advantaged=pair[1],
        num_workers=cmd.workers,
        cache=not cmd.no_cache,
        generators=reg.generators,
        progress=progress,
        codec=_codec(cmd.codec),
        exported=cmd.exported,
    )


def _codec(text: str | None) -> Any:
    from faapkit.data.codecs import parse_codec

    return None if text is None else parse_codec(text)


def evaluate_seeds(cmd: EvalCommand, layers: CommandLayers, reg: Registries, host: Host) -> SeedsOutcome | None:
    """Each seed of the set ``cmd.target`` names (one configuration, trained to the end)
    evaluated in turn; a seed whose selection chose no checkpoint is said and left out of the
    spread, never silently; ``None`` on a non-zero rank."""
    from faapkit.evaluate.across_seeds import aggregate, seed_row

    assert cmd.target is not None
    if cmd.out is not None:
        raise ConfigError(f"{cmd.target} is a seed set: each seed's metrics go to its own run folder; drop --out")
    states = seed_states(cmd.target)  # refuses a set that is not one configuration
    missing = [f"seed {s} ({state})" for s, _, state in states if state != "done"]
    if missing:
        raise FaapError(
            f"{cmd.target}: {', '.join(missing)} not trained to the end; continue with faap train --resume {cmd.target}"
        )
    runs, left_out = _seeds_to_evaluate(cmd, [(seed, run) for seed, run, _ in states], host)
    for seed, run in runs:  # every seed's checkpoint and output, before the first seed's inference
        with _seed_taken(seed, cmd.target):
            preflight_seed(replace(cmd, target=run), layers)
    rows, results = [], {}
    for seed, run in runs:
        host.info(f"seed {seed}: faap eval {run}")
        with _seed_taken(seed, cmd.target):
            result = evaluate_one(replace(cmd, target=run, progress=False), layers, reg, host)
        if result is None:
            return None  # non-zero ranks
        results[str(seed)] = result
        if "perturbed" in result["metrics"]:
            rows.append(seed_row(seed, result))
    confidence = next(iter(results.values())).get("eval_config", {}).get("confidence", 0.95)
    return SeedsOutcome(cmd.target, rows, aggregate(rows, confidence, left_out) if rows else None)


def _seeds_to_evaluate(
    cmd: EvalCommand, runs: list[tuple[int, Path]], host: Host
) -> tuple[list[tuple[int, Path]], list[str]]:
    """The seeds with a checkpoint to evaluate, and each seed left out with why: without
    ``--epoch``, a seed whose selection chose no epoch (no ``best.pt``) is said on stderr and left
    out; a set where no seed has one is refused."""
    from faapkit.evaluate.command.checkpoint_choice import none_chosen

    if cmd.epoch is not None:
        return runs, []
    kept, left_out = [], []
    for seed, run in runs:
        why = none_chosen(run)
        if why is None:
            kept.append((seed, run))
            continue
        left_out.append(f"seed {seed} (no chosen checkpoint: {why})")
        host.warn(
            f"seed {seed}: no chosen checkpoint ({why}; {run / 'selection.json'}): not evaluated, left out of "
            f"the spread; faap eval {run} --epoch N evaluates one the run did not choose, labelled so"
        )
    if not kept:
        raise FaapError(
            f"{cmd.target}: no seed has a chosen checkpoint (each seed's selection chose no epoch); "
            "evaluate checkpoints the runs did not choose with --epoch N, labelled so"
        )
    return kept, left_out


@contextlib.contextmanager
def _seed_taken(seed: int, seed_set: Path) -> Iterator[None]:
    """A seed's result there already, said for the set (the single run's hint names --out, which a
    seed set refuses)."""
    try:
        yield
    except outputs.ResultTaken as exc:
        raise FaapError(
            f"seed {seed}: {exc.path} already holds an evaluation of the same checkpoint and settings; "
            f"pass --force to replace every seed's, or compare them as they are with faap compare {seed_set}"
        ) from None


def preflight_seed(cmd: EvalCommand, layers: CommandLayers) -> None:
    """What :func:`evaluate_one` would refuse of one seed's run without
    loading data or detector: its checkpoint (``best.pt`` against ``selection.json``), the folder
    its metrics go into, and, without ``--force``, a metrics file there already (its name needs no
    data or detector unless ``--data`` or ``--detector-checkpoint`` add theirs; then the seed's own
    check still refuses it, before its inference). Its notes are said when the seed is evaluated."""
    from faapkit.config import DataConfig, validate_model
    from faapkit.evaluate.command import settings as layering

    tgt = checked_target(cmd, Silent())
    outputs.check_folder(tgt, None)
    if cmd.force or cmd.data is not None or cmd.detector_checkpoint is not None:
        return
    settings, _ = layering.resolve([("the run's config", layering.run_layer(tgt.config.get("eval", {}))), *layers.eval])
    stored: dict[str, Any] = {**tgt.config.get("data", {}), "limit_images": cmd.limit_images}
    dcfg = validate_model(DataConfig, stored, prefix="data")
    tags = outputs.tags(cmd, layers.sizes, None, None, settings, dcfg)
    path = outputs.output_path(tgt, None, settings.split, cmd.split_by or dcfg.split_by, cmd.limit_images, tags)
    if path is not None:
        outputs.refuse_taken([path])
