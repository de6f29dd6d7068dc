"""``faap eval``: per-group COCO AP/AR for baseline and perturbed inputs, gaps and CIs."""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from faapkit.cli._console import info, out_console, print_json, warn
from faapkit.cli._context import state
from faapkit.cli._options import ConfigOpt, JsonOpt, SetOpt, check_bootstrap
from faapkit.errors import ConfigError, FaapError

if TYPE_CHECKING:
    from faapkit.config import DataConfig


@dataclass(frozen=True)
class Target:
    """What ``faap eval`` evaluates: a checkpoint (None: baseline only), the run it belongs to
    (None: a loose checkpoint), the run's config and how the checkpoint was chosen."""

    checkpoint: Path | None = None
    run_dir: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    chosen_by: str = "none"
    trained_on: str | None = None  # the dataset root the run recorded (its embedded benchmark's cache folder)
    run_id: str | None = None  # the run's id (run.json), recorded in the metrics
    chosen_on: str | None = None  # the split the run chose this checkpoint on (a verified best.pt)
    check: str | None = None  # how best.pt was checked against selection.json (recorded in the metrics)


CHANGED_BEST = "--accept-changed-best"


def resolve_target(target: Path | None, epoch: int | None, accept_changed_best: bool = False) -> Target:
    """A run folder gives ``checkpoints/best.pt`` if there is one (chosen on val, checked against
    the sha256 ``selection.json`` recorded), else the checkpoint with the highest stored
    global_step (never the newest file: a copy resets file times); ``--epoch N`` gives
    ``epoch_N``. A checkpoint path is used as given (a run's ``best.pt`` is checked alike)."""
    from faapkit.artifacts.rundir import RunDir

    if target is None:
        if epoch is not None:
            raise ConfigError("--epoch needs a run folder to choose from")
        return Target()
    if not target.exists():
        raise FaapError(f"not found: {target}")
    target = target.absolute()
    if target.is_dir():
        run = RunDir(target)
        recorded = _recorded(run)
        if epoch is not None:
            path = run.epoch_checkpoint(epoch)
            if not path.is_file():
                raise FaapError(f"{target} has no checkpoint of epoch {epoch} (no {path.name})")
            return Target(path, target, *recorded[:1], f"--epoch {epoch}", *recorded[1:])
        return _unchosen_target(run, target, recorded, accept_changed_best)
    if epoch is not None:
        raise ConfigError("--epoch chooses within a run folder; it cannot be combined with a checkpoint path")
    run = RunDir(target.parent.parent)
    if target.parent.name == "checkpoints" and run.exists():
        config, root, run_id = _recorded(run)
        if target.name != "best.pt":
            return Target(target, run.path, config, "given", root, run_id)
        check = check_best(run, target, accept_changed_best)
        return Target(target, run.path, config, "given", root, run_id, check.chosen_on, check.note)
    return Target(target, None, {}, "given")


def _unchosen_target(run: Any, target: Path, recorded: tuple[Any, ...], accept_changed: bool) -> Target:
    """A run folder without ``--epoch``: ``best.pt`` (checked against ``selection.json``), else
    its highest step when the run chose none. A ``best.pt`` that is gone although the selection
    chose an epoch is refused: the highest step is not what the run chose."""
    from faapkit.artifacts.checkpoint import latest_checkpoint

    config, root, run_id = recorded
    best = run.checkpoints / "best.pt"
    selection = run.read_selection() or {}
    if best.is_file():
        check = check_best(run, best, accept_changed)
        return Target(best, target, config, check.chosen_by, root, run_id, check.chosen_on, check.note)
    if selection.get("epoch") is not None:
        raise FaapError(_missing_best(run, best, selection["epoch"]))
    last = latest_checkpoint(run.checkpoint_files())
    if last is None:
        raise FaapError(f"{target} has no checkpoint yet (the run stopped before its first one)")
    if selection:
        _target_note(
            warn,
            f"{target}: no validated epoch met the selection rule ({selection.get('description', '')}); "
            f"evaluating the highest step, {last.name}, which the rule did not choose",
        )
        return Target(last, target, config, "highest global_step (no epoch met the val rule)", root, run_id)
    return Target(last, target, config, "highest global_step", root, run_id)


def _missing_best(run: Any, best: Path, epoch: Any) -> str:
    kept = isinstance(epoch, int) and run.epoch_checkpoint(epoch).is_file()
    hint = (
        f"evaluate that epoch's checkpoint with --epoch {epoch}"
        if kept
        else "its epoch checkpoint is not kept either; evaluate another checkpoint by path or --epoch, "
        "knowing the run did not choose it"
    )
    return f"{best} is missing though {run.selection_path} chose epoch {epoch}; {hint}"


@dataclass(frozen=True)
class BestCheck:
    """What :func:`check_best` found: the label of the checkpoint, the split it was chosen on
    (``None`` when it is not the chosen one) and the check recorded in the metrics."""

    chosen_by: str
    chosen_on: str | None
    note: str


def check_best(run: Any, best: Path, accept_changed: bool) -> BestCheck:
    """``best.pt`` against the ``checkpoint_sha256`` its run's ``selection.json`` recorded when
    it wrote it (streamed once). A file that differs, or a ``best.pt`` although the selection chose
    no epoch, is refused unless ``accept_changed`` (then labelled as not the chosen checkpoint).
    A selection from before the hash was recorded passes, said in one note line."""
    from faapkit.artifacts.integrity import file_sha256

    selection = run.read_selection() or {}
    split = str(selection.get("split", "val"))
    chosen = BestCheck(f"best.pt (chosen on {split})", split, "sha256 matches selection.json")
    recorded = selection.get("checkpoint_sha256")
    if selection and selection.get("epoch") is None:
        problem = f"{best} is there though {run.selection_path} chose no epoch"
    elif "checkpoint_sha256" in selection and not _is_sha256(recorded):
        # the trainer writes a hash, or null only when it chose no epoch: anything else was edited
        problem = (
            f"{run.selection_path} records checkpoint_sha256 {json.dumps(recorded)[:20]} for epoch "
            f"{selection.get('epoch')}, not a sha256 (edited?): {best} cannot be checked against it"
        )
    elif not isinstance(recorded, str) or not recorded:
        why = "records no checkpoint_sha256 (written before faapkit recorded it)" if selection else "is missing"
        _target_note(info, f"note: {run.selection_path} {why}: {best} is evaluated unverified")
        return BestCheck(chosen.chosen_by, split, "unverified (selection.json records no sha256)")
    else:
        actual = file_sha256(best)
        if actual == recorded:
            return chosen
        problem = (
            f"{best} has sha256 {actual[:12]}, not the {recorded[:12]} that {run.selection_path} recorded "
            f"for epoch {selection.get('epoch')} (replaced since the run chose it?)"
        )
    if not accept_changed:
        raise FaapError(
            f"{problem}; evaluate it anyway with {CHANGED_BEST} (labelled as not the chosen checkpoint), "
            "or another checkpoint with --epoch"
        )
    _target_note(warn, f"{problem}; evaluated as {CHANGED_BEST} asks, labelled as not the checkpoint chosen on {split}")
    return BestCheck(
        f"best.pt (not the checkpoint selection.json chose on {split}: {CHANGED_BEST})",
        None,
        "differs from selection.json",
    )


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _recorded(run: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """A run folder's config, the dataset root it trained on and its run id, from its manifest."""
    manifest = run.read_manifest()
    run_id = manifest.get("run_id")
    return (
        manifest.get("config", {}),
        (manifest.get("dataset") or {}).get("root"),
        run_id if isinstance(run_id, str) else None,
    )


def output_path(
    tgt: Target, out: Path | None, split: str, attr: str, limit: int | None, tags: list[str]
) -> Path | None:
    """Where the metrics go. The name encodes what was evaluated (split, attribute, checkpoint,
    subset and any override in ``tags``), so different evaluations never share a file; a loose
    checkpoint's metrics go next to it, not into a folder two levels up."""
    if out is not None:
        return out.absolute()
    if tgt.checkpoint is None:
        return None
    parts = [split, attr, tgt.checkpoint.stem, *([f"first{limit}"] if limit else []), *tags]
    name = "_".join(parts) + ".json"
    if tgt.run_dir is not None:
        return tgt.run_dir / "eval" / name
    return tgt.checkpoint.parent / f"{tgt.checkpoint.stem}.eval" / name


def _check_options(
    batch_size: int | None,
    bootstrap: int | None,
    limit_images: int | None,
    workers: int | None,
    nproc: int,
    on_invalid: str | None,
    epsilon: float | None = None,
    epoch: int | None = None,
) -> None:
    """Refuse impossible option values before any work (typer would accept them)."""
    if epsilon is not None and not 0 < epsilon <= 1:  # NaN too
        raise ConfigError(f"--epsilon must be in (0, 1], got {epsilon}")
    if epoch is not None and epoch < 0:
        raise ConfigError(f"--epoch must be at least 0, got {epoch}")
    for name, value, least in (
        ("--batch-size", batch_size, 1),
        ("--bootstrap", bootstrap, 0),
        ("--limit-images", limit_images, 1),
        ("--workers", workers, 0),
        ("--nproc", nproc, 1),
    ):
        if value is not None and value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")
    if bootstrap is not None:
        check_bootstrap(bootstrap)
    if on_invalid not in (None, "fail", "skip"):
        raise ConfigError(f"--on-invalid must be fail or skip, got {on_invalid!r}")


def evaluate(
    ctx: typer.Context,
    target: Annotated[Path | None, typer.Argument(help="run folder or checkpoint; omit for the baseline only")] = None,
    split: Annotated[str | None, typer.Option(help="split to evaluate [eval.split: test]")] = None,
    split_by: Annotated[
        str | None, typer.Option(help="image attribute defining the groups (default: the run's)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="dataset root (default: the run's, else the embedded benchmark)")
    ] = None,
    detector: Annotated[str | None, typer.Option(help="registered detector (default: the run's)")] = None,
    detector_checkpoint: Annotated[Path | None, typer.Option(help="detector weights")] = None,
    epoch: Annotated[int | None, typer.Option(help="checkpoint epoch of a run folder (default: last)")] = None,
    epsilon: Annotated[float | None, typer.Option(help="override the checkpoint's epsilon")] = None,
    disadvantaged: Annotated[str | None, typer.Option(help="disadvantaged group of a two-group gap")] = None,
    advantaged: Annotated[str | None, typer.Option(help="reference group of a two-group gap")] = None,
    batch_size: Annotated[int | None, typer.Option(help="images of one shape per batch [eval.batch_size: 8]")] = None,
    bootstrap: Annotated[int | None, typer.Option(help="bootstrap resamples, 0 = none [eval.bootstrap: 1000]")] = None,
    seed: Annotated[int | None, typer.Option(help="bootstrap seed [eval.seed: 0]")] = None,
    confidence: Annotated[float | None, typer.Option(help="level of every CI [eval.confidence: 0.95]")] = None,
    iou: Annotated[
        list[float] | None, typer.Option(help="IoU threshold, repeatable [eval.iou_thresholds: 0.50:0.05:0.95]")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    rescore: Annotated[
        Path | None,
        typer.Option(help="re-score the detections saved with this metrics JSON (other bootstrap/seed/CI/IoU)"),
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    limit_images: Annotated[int | None, typer.Option(help="evaluate only the first N images")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute the baseline")] = False,
    workers: Annotated[
        int | None, typer.Option(help="data-loading processes (default: 0 on CPU, up to 8 on CUDA)")
    ] = None,
    amp: Annotated[bool | None, typer.Option(help="bf16 autocast on CUDA [eval.amp: off]")] = None,
    channels_last: Annotated[bool | None, typer.Option(help="NHWC convolutions [eval.channels_last: on]")] = None,
    save_detections: Annotated[
        bool | None, typer.Option(help="keep detections for --rescore [eval.save_detections: on]")
    ] = None,
    nproc: Annotated[int, typer.Option(help="shard inference over N processes with torchrun")] = 1,
    out: Annotated[
        Path | None,
        typer.Option(help="metrics.json path (default: <run>/eval/<what was evaluated>.json, or next to a checkpoint)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing metrics file")] = False,
    accept_changed_best: Annotated[
        bool,
        typer.Option(
            CHANGED_BEST,
            help="evaluate a run's best.pt whose sha256 differs from selection.json's (labelled as not chosen on val)",
        ),
    ] = False,
    on_invalid: Annotated[
        str | None,
        typer.Option(help="fail | skip: images with invalid annotations, sizes or modes (default: the run's)"),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no live progress")] = False,
    json_: JsonOpt = False,
) -> None:
    """Per-group and overall COCO AP/AR of baseline and perturbed inputs, gaps, ratios and CIs."""
    _check_options(batch_size, bootstrap, limit_images, workers, nproc, on_invalid, epsilon, epoch)
    if out is not None and rescore is None:  # found before inference, not when the metrics are written
        from faapkit.cli.eval_guards import check_out

        check_out(out, force=force)  # --rescore checks its --out once it knows the file it rescores
    from faapkit.cli import eval_settings

    flags = eval_settings.flag_layer(
        split=split,
        batch_size=batch_size,
        bootstrap=bootstrap,
        seed=seed,
        confidence=confidence,
        iou=iou,
        amp=amp,
        channels_last=channels_last,
        save_detections=save_detections,
    )
    layers, sizes = _command_layers(config, list(set_ or []), flags)
    if rescore is not None:
        given = {
            "TARGET": target, "--epoch": epoch, "--epsilon": epsilon, "--split-by": split_by,
            "--detector": detector, "--detector-checkpoint": detector_checkpoint, "--limit-images": limit_images,
            "--workers": workers, CHANGED_BEST: accept_changed_best or None,
            "--on-invalid": on_invalid, "--no-cache": no_cache or None, "--nproc": nproc if nproc > 1 else None,
        }  # fmt: skip
        pair = (disadvantaged, advantaged)  # the gap's groups: a choice of scoring, not of inference
        _rescore(rescore, given, (layers, sizes), data, out, force, pair, progress=not quiet and not json_, json_=json_)
        return
    if nproc > 1:
        from faapkit.cli._launch import launch_torchrun

        launch_torchrun(nproc)
        return
    opts = _Inference(
        target, epoch, split_by, data, detector, detector_checkpoint, epsilon, disadvantaged, advantaged,
        device, limit_images, no_cache, workers, out, force, on_invalid, quiet, json_, tuple(sizes),
        accept_changed_best,
    )  # fmt: skip
    _evaluate_target(state(ctx).registries, opts, layers)


Layers = list[tuple[str, dict[str, Any]]]


def _command_layers(config: Path | None, set_: list[str], flags: dict[str, Any]) -> tuple[Layers, Layers]:
    """The command's layers over the run's settings, lowest first: those of ``[eval]``
    (``--config``, ``--set``, one per flag) and those of the input size (``data.min_size`` /
    ``data.max_size`` from ``--config`` and ``--set``)."""
    from faapkit.cli import eval_settings

    layers: Layers = []
    sizes: Layers = []
    if config is not None:
        own, size = eval_settings.file_layers(config)
        layers.append((f"--config {config}", own))
        sizes += [(f"--config {config}", size)] if size else []
    if set_:
        own, size = eval_settings.set_layers(set_)
        layers.append(("--set", own))
        sizes += [("--set", size)] if size else []
    return layers + eval_settings.flag_layers(flags), sizes


def _evaluate_target(reg: Any, o: _Inference, layers: list[tuple[str, Any]]) -> None:
    from faapkit.train.seeds import is_seed_set

    if o.target is not None and is_seed_set(o.target):
        _evaluate_seeds(reg, o, layers)
    else:
        _evaluate(reg, o, layers)


def _evaluate_seeds(reg: Any, o: _Inference, layers: list[tuple[str, Any]]) -> None:
    """``faap eval SEEDSET``: every seed's run as ``faap eval RUN`` evaluates it (its metrics in its
    own ``eval/``), then one table across seeds. Every seed's run is checked before any inference."""
    from dataclasses import replace

    from faapkit.evaluate.across_seeds import aggregate, seed_row
    from faapkit.train.seeds import read_seed_set, seed_runs, seed_state

    assert o.target is not None
    if o.out is not None:
        raise ConfigError(f"{o.target} is a seed set: each seed's metrics go to its own run folder; drop --out")
    runs = seed_runs(o.target)
    version = read_seed_set(o.target).version
    states = {s: seed_state(r, s, version) for s, r in runs}  # each run's manifest and log read once
    missing = [f"seed {s} ({state})" for s, state in states.items() if state != "done"]
    if missing:
        raise FaapError(
            f"{o.target}: {', '.join(missing)} not trained to the end; continue with faap train --resume {o.target}"
        )
    rows, results = [], {}
    for seed, run in runs:  # every seed's checkpoint and output, before the first seed's inference
        with _seed_taken(seed, o.target):
            _preflight_seed(replace(o, target=run), layers)
    for seed, run in runs:
        info(f"seed {seed}: faap eval {run}")
        with _seed_taken(seed, o.target):
            result = _evaluate(reg, replace(o, target=run, json_=False, quiet=True), layers, show=False)
        if result is None:
            return  # non-zero ranks
        results[str(seed)] = result
        if "perturbed" in result["metrics"]:
            rows.append(seed_row(seed, result))
    confidence = next(iter(results.values())).get("eval_config", {}).get("confidence", 0.95)
    summary = aggregate(rows, confidence) if rows else None
    if o.json_:
        print_json({"seed_set": str(o.target), "seeds": rows, "aggregate": summary})
        return
    from faapkit.cli.eval_table import show_seeds

    show_seeds(rows, summary, out_console)


_PREFLIGHT = contextvars.ContextVar("faap_eval_preflight", default=False)


def _target_note(say: Any, line: str) -> None:
    """A note about the checkpoint chosen, said once: not by a seed set's check before inference,
    which resolves every seed's target again when it evaluates it."""
    if not _PREFLIGHT.get():
        say(line)


@contextlib.contextmanager
def _seed_taken(seed: int, seed_set: Path) -> Iterator[None]:
    """A seed's result there already, said for the set (the single run's hint names --out, which a
    seed set refuses)."""
    try:
        yield
    except ResultTaken as exc:
        raise FaapError(
            f"seed {seed}: {exc.path} already holds an evaluation of the same checkpoint and settings; "
            f"pass --force to replace every seed's, or compare them as they are with faap compare {seed_set}"
        ) from None


def _preflight_seed(o: _Inference, layers: list[tuple[str, Any]]) -> None:
    """What :func:`_evaluate` would refuse of one seed's run without loading data or detector: its
    checkpoint (``best.pt`` against ``selection.json``), the folder its metrics go into, and,
    without ``--force``, a metrics file there already (its name needs no data or detector unless
    ``--data`` or ``--detector-checkpoint`` add theirs; then the seed's own check still refuses
    it, before its inference)."""
    from faapkit.cli import eval_settings
    from faapkit.config import DataConfig, validate_model

    token = _PREFLIGHT.set(True)
    try:
        tgt = _checked_target(o)
    finally:
        _PREFLIGHT.reset(token)
    _check_folder(tgt, None)
    if o.force or o.data is not None or o.detector_checkpoint is not None:
        return
    settings, _ = eval_settings.resolve(
        [("the run's config", eval_settings.run_layer(tgt.config.get("eval", {}))), *layers]
    )
    dcfg = validate_model(DataConfig, {**tgt.config.get("data", {}), "limit_images": o.limit_images}, prefix="data")
    path = output_path(
        tgt, None, settings.split, o.split_by or dcfg.split_by, o.limit_images, _tags(o, None, None, settings, dcfg)
    )
    if path is not None:
        _refuse_taken([path])


@dataclass(frozen=True)
class _Inference:
    """The ``faap eval`` options that only an evaluation with inference reads."""

    target: Path | None
    epoch: int | None
    split_by: str | None
    data: Path | None
    detector: str | None
    detector_checkpoint: Path | None
    epsilon: float | None
    disadvantaged: str | None
    advantaged: str | None
    device: str
    limit_images: int | None
    no_cache: bool
    workers: int | None
    out: Path | None
    force: bool
    on_invalid: str | None
    quiet: bool
    json_: bool
    sizes: tuple[tuple[str, dict[str, Any]], ...] = ()  # the input size's layers (data.min_size, max_size)
    accept_changed_best: bool = False  # evaluate a best.pt that differs from selection.json's, labelled so


def _rescore(
    rescore: Path,
    given: dict[str, Any],
    layers: tuple[Layers, Layers],
    data: Path | None,
    out: Path | None,
    force: bool,
    pair: tuple[str | None, str | None],
    *,
    progress: bool,
    json_: bool,
) -> None:
    """``--rescore``: refuse every option that needs a new inference, then score the saved
    detections (``layers``: those of ``[eval]`` and of the input size; ``pair``: the gap's groups,
    ``(None, None)`` for the recorded ones)."""
    from faapkit.cli.rescore import rescore_metrics

    for name, value in given.items():
        if value is not None:
            raise ConfigError(f"--rescore scores the saved detections again; {name} needs a new inference")
    result = rescore_metrics(rescore, layers[0], data, out, force, progress=progress, pair=pair, sizes=layers[1])
    _show(result, json_)


def _evaluate(reg: Any, o: _Inference, layers: list[tuple[str, Any]], show: bool = True) -> dict[str, Any] | None:
    """Resolve the target, settings, data and detector; take the output's lock and refuse a taken
    output; infer, score, write (and print, unless not ``show``). The result, or ``None`` on a
    non-zero rank."""
    from faapkit.cli import eval_settings
    from faapkit.distributed import setup_process
    from faapkit.evaluate.evaluator import load_eval_split

    tgt = _checked_target(o)
    _check_folder(tgt, o.out)  # a folder that cannot take the result is said before any work
    run_config = tgt.config
    run_eval = eval_settings.run_layer(run_config.get("eval", {}))
    settings, sources = eval_settings.resolve([("the run's config", run_eval), *layers])
    split = settings.split
    det_name, det_ckpt = _run_detector(run_config, o.detector, o.detector_checkpoint)
    detector = (reg.detectors.get(det_name), det_ckpt)
    input_size = eval_settings.resolve_sizes(detector[0], run_config.get("data", {}), list(o.sizes))
    dcfg, root = _run_data(run_config, o.data, o.limit_images, o.on_invalid, tgt.trained_on, detector, input_size)
    attr = o.split_by or dcfg.split_by
    if o.disadvantaged is not None and o.disadvantaged == o.advantaged:
        raise ConfigError(f"--disadvantaged and --advantaged are both '{o.advantaged}': the gap needs two groups")
    dist_info, dev = setup_process(o.device, key="--device")
    det = _checked_detector(detector, o, tgt, dev)
    split_data = load_eval_split(
        root, split, attr, dcfg.layout, dcfg.limit_images, dcfg.on_corrupt, dcfg.on_invalid, dcfg.group_level
    )
    path = output_path(tgt, o.out, split, attr, dcfg.limit_images, _tags(o, det, split_data, settings, dcfg))
    settings_out = ["baseline", *(["perturbed"] if tgt.checkpoint is not None else [])]
    det_paths = _detection_paths(path, settings_out, settings.save_detections)
    resolved = _Resolved(tgt, settings, sources, dcfg, det, dev, dist_info, split_data, input_size, settings_out)
    lock = _claim(path, det_paths, o.force) if dist_info.is_main else None
    try:
        return _infer_and_write(reg, o, resolved, (path, det_paths, lock), show)
    finally:
        if lock is not None:
            lock.release()


@dataclass(frozen=True)
class _Resolved:
    """What :func:`_evaluate` resolved before any inference."""

    tgt: Target
    settings: Any
    sources: dict[str, str]
    dcfg: Any
    det: Any
    dev: Any
    dist_info: Any
    split_data: Any
    input_size: dict[str, Any]
    settings_out: list[str]


def _check_folder(tgt: Target, out: Path | None) -> None:
    """The folder the default output goes into (``RUN/eval``, ``<checkpoint>.eval``), made if
    missing and able to take a file; ``--out`` was checked by :func:`check_out`."""
    if out is not None or tgt.checkpoint is None:
        return
    from faapkit.artifacts.outputs import ensure_folder

    path = output_path(tgt, None, "<split>", "<attribute>", None, [])
    assert path is not None
    ensure_folder(path, "faap eval's output", create=False)


def _claim(path: Path | None, det_paths: list[Path], force: bool) -> Any:
    """The output's lock (``<output>.lock``), taken before any inference: of two evaluations
    started together one writes, the other is refused naming the holder. Under it, a result that
    is there already is refused without ``force``."""
    if path is None:
        return None
    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.artifacts.outputs import ensure_folder

    ensure_folder(path, "faap eval's output")  # RUN/eval made now, when the work is about to start
    lock = OutputLock(path, note=warn).acquire()
    try:
        if not force:
            _refuse_taken([path, *det_paths])
    except BaseException:
        lock.release()
        raise
    return lock


def _infer_and_write(
    reg: Any, o: _Inference, r: _Resolved, output: tuple[Path | None, list[Path], Any], show: bool
) -> dict[str, Any] | None:
    """Infer and score what :func:`_evaluate` resolved, write ``output`` (``(path, detection
    paths, lock)``) and print."""
    from dataclasses import replace

    from faapkit.cli.eval_progress import EvalProgress
    from faapkit.distributed import shutdown
    from faapkit.evaluate.evaluator import evaluate_with_detections

    tgt, split, is_main = r.tgt, r.settings.split, r.dist_info.is_main
    path, det_paths, lock = output
    if tgt.chosen_on == split and is_main:
        warn(f"the checkpoint was chosen on '{split}', the split being reported: its numbers are optimistic")
        tgt = replace(tgt, chosen_by=f"{tgt.chosen_by}; chosen on the reported split")
    if is_main:
        for line in r.split_data.warnings():
            warn(line)
    same_attr = r.split_data.split_by == r.dcfg.split_by
    pair = _reference_pair(r.split_data, o.disadvantaged, o.advantaged, r.dcfg if same_attr else None, bool(tgt.config))
    reporter = EvalProgress(enabled=not o.quiet and not o.json_ and is_main)
    req = _request(o, tgt, r.split_data, r.det, r.dev, r.settings, r.dcfg, pair, reg, reporter)
    try:
        with reporter:
            result, dets = evaluate_with_detections(req)
    finally:
        shutdown(r.dist_info)
    if not result:
        return None  # non-zero ranks
    _annotate(result, tgt, r.dcfg, r.settings, r.sources, r.input_size)
    if path is not None:
        if lock is not None:
            lock.check_unchanged(o.force)  # written meanwhile by a process that ignored the lock
        _write(path, result, r.settings_out, det_paths, dets, o.force)
    if show:
        _show(result, json_=o.json_)
    return result


def _checked_target(o: _Inference) -> Target:
    """What to evaluate (after the options that need no file); a checkpoint in a run folder
    must be that run's (run id and version)."""
    from faapkit.config import check_device

    if o.epsilon is not None and not 0 < o.epsilon <= 1:
        raise ConfigError(f"--epsilon must be in (0, 1], got {o.epsilon}")
    check_device(o.device, "--device")
    tgt = resolve_target(o.target, o.epoch, o.accept_changed_best)
    if tgt.run_dir is not None and tgt.checkpoint is not None:
        from faapkit.cli.eval_guards import check_belongs

        check_belongs(tgt.checkpoint, tgt.run_dir)
    return tgt


def _tags(o: _Inference, det: Any, split_data: Any, settings: Any, dcfg: Any = None) -> list[str]:
    """What the metrics file name adds for each override of the run's evaluation (``dcfg``: the
    run's data config, whose pair of groups a ``--disadvantaged``/``--advantaged`` may change)."""
    from faapkit.cli import eval_settings

    tags = [f"eps{o.epsilon:g}"] if o.epsilon is not None else []
    tags += _pair_tag(o, dcfg)
    tags += [f"det-{o.detector}"] if o.detector else []
    tags += [f"detckpt-{_short_hash(det.sha256)}"] if o.detector_checkpoint else []
    tags += [f"data-{split_data.fingerprint[:8]}"] if o.data else []
    tags += eval_settings.iou_tag(settings)
    sizes: dict[str, Any] = {}
    for _, layer in o.sizes:  # the input size the command set (min800, max1333): other detections
        sizes.update(layer)
    tags += [f"{key.removesuffix('_size')}{sizes[key]}" for key in eval_settings.SIZE_KEYS if key in sizes]
    return tags


def _pair_tag(o: _Inference, dcfg: Any) -> list[str]:
    """``ref-<disadvantaged>-<advantaged>`` (as ``--rescore`` names it) when the options change the
    gap's groups from the run's: the same name held the other pair's evaluation, so that one was
    refused as 'the same checkpoint and settings', and replaced by another gap with --force."""
    import re

    if o.disadvantaged is None and o.advantaged is None:
        return []
    same_attr = dcfg is not None and (o.split_by is None or o.split_by == dcfg.split_by)
    default = (dcfg.disadvantaged, dcfg.advantaged) if same_attr else (None, None)
    pair = (o.disadvantaged or default[0], o.advantaged or default[1])
    if pair == default:
        return []
    return ["ref-" + "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(g)) for g in pair)]


def _annotate(
    result: dict[str, Any], tgt: Target, dcfg: Any, settings: Any, sources: dict[str, str], input_size: dict[str, Any]
) -> None:
    """What the evaluator does not know: how the checkpoint was chosen, the run, the data and
    evaluation settings and where each setting came from (``input_size``: the images' resize,
    ``{"min_size", "max_size", "source"}``)."""
    result["checkpoint_choice"] = tgt.chosen_by
    if tgt.check is not None:  # best.pt against the sha256 its run's selection.json recorded
        result["checkpoint_check"] = tgt.check
        if tgt.chosen_on is None and "selection" in result:  # not the chosen file: its record is not the run's
            result["selection_in_checkpoint"] = result.pop("selection")
    result["input_size"] = dict(input_size)
    if tgt.run_dir is not None:
        result["run"] = str(tgt.run_dir)
        result["run_id"] = tgt.run_id
    result["dataset"].update(
        limit_images=dcfg.limit_images, on_corrupt=dcfg.on_corrupt, on_invalid=dcfg.on_invalid, split=settings.split
    )
    result["eval_config"] = settings.model_dump(mode="json")
    result["eval_config_sources"] = sources


def _run_data(
    run_config: dict[str, Any],
    data: Path | None,
    limit_images: int | None,
    on_invalid: str | None,
    trained_on: str | None = None,
    detector: tuple[Any, Path | None] = (None, None),
    input_size: dict[str, Any] | None = None,
) -> tuple[DataConfig, Path]:
    """``(DataConfig, dataset root)``: the run's ``[data]`` (defaults without a run) with the
    command's ``--limit-images``, ``--on-invalid`` and resolved ``input_size``
    (:func:`faapkit.cli.eval_settings.resolve_sizes`); ``--data`` replaces the run's root. A run
    on the embedded benchmark gets the one it trained on (``trained_on`` names its seed and bias),
    not today's default; without either, the benchmark ``detector`` (``(DetectorSpec, checkpoint)``) was
    trained on."""
    from faapkit.config import DataConfig, validate_model
    from faapkit.data.synth import embedded_dataset_for

    stored = {**run_config.get("data", {}), "limit_images": limit_images}
    stored.update({k: v for k, v in (input_size or {}).items() if k in ("min_size", "max_size")})
    if on_invalid is not None:
        stored["on_invalid"] = on_invalid
    dcfg = validate_model(DataConfig, stored, prefix="data")
    if data is None and dcfg.root is not None and not Path(dcfg.root).is_absolute():
        raise ConfigError(
            f"the run stores a relative data.root '{dcfg.root}' (faapkit before 0.2 did): it depends on the folder "
            "faap runs in; pass --data with the dataset's path"
        )
    own = Path(dcfg.root) if dcfg.root else None
    recorded = Path(trained_on) if trained_on else None
    root = (data.absolute() if data else None) or own or embedded_dataset_for(*detector, recorded=recorded)
    return dcfg, root


def _run_detector(
    run_config: dict[str, Any], detector: str | None, detector_checkpoint: Path | None
) -> tuple[str, Path | None]:
    """The registered detector and weights to evaluate with: the options, else the run's (an
    empty stored checkpoint means the shipped weights), else the shipped tiny DETR."""
    stored = run_config.get("detector", {})
    from faapkit.config import DEFAULT_DETECTOR

    name = detector or stored.get("name", DEFAULT_DETECTOR)  # no run (a loose checkpoint): today's default
    # absolute: the metrics JSON must name the same file wherever it is read from (a run's is stored so)
    ckpt = detector_checkpoint.absolute() if detector_checkpoint else None
    ckpt = ckpt or (Path(stored["checkpoint"]) if stored.get("checkpoint") else None)
    return name, ckpt


def _checked_detector(detector: tuple[Any, Path | None], o: _Inference, tgt: Target, dev: Any) -> Any:
    """The detector to evaluate with (``(DetectorSpec, checkpoint)`` from :func:`_run_detector`);
    unless ``--detector``/``--detector-checkpoint`` name one, it must be the weights the
    checkpoint's generator was trained against."""
    from faapkit.detr.frozen import load_detector

    det = load_detector(*detector, device=dev)
    if tgt.checkpoint is not None and o.detector is None and o.detector_checkpoint is None:
        from faapkit.cli.eval_guards import check_trained_against

        check_trained_against(tgt.checkpoint, det)
    return det


def _detection_paths(path: Path | None, settings_out: list[str], save: bool) -> list[Path]:
    from faapkit.evaluate import detections as saved

    return [saved.detections_path(path, s) for s in settings_out] if path and save else []


def _refuse_taken(paths: list[Path]) -> None:
    """Results are never replaced without ``--force``: refuse before any inference."""
    taken = [p for p in paths if p.exists()]
    if taken:
        raise ResultTaken(taken[0])


class ResultTaken(FaapError):
    """An evaluation would replace ``path`` without ``--force``."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} already holds an evaluation of the same checkpoint and settings; "
            "pass --force to replace it or --out to write elsewhere"
        )
        self.path = path


def _request(
    o: _Inference,
    tgt: Target,
    split_data: Any,
    det: Any,
    dev: Any,
    settings: Any,
    dcfg: Any,
    pair: tuple[str | None, str | None],
    reg: Any,
    reporter: Any,
) -> Any:
    """The evaluator's :class:`EvalRequest` from the resolved settings."""
    from faapkit.evaluate.evaluator import EvalRequest

    return EvalRequest(
        data=split_data,
        detector=det,
        device=dev,
        checkpoint=tgt.checkpoint,
        epsilon=o.epsilon,
        batch_size=settings.batch_size,
        min_size=dcfg.min_size,
        max_size=dcfg.max_size,
        bootstrap=settings.bootstrap,
        seed=settings.seed,
        confidence=settings.confidence,
        iou_thresholds=settings.iou_thresholds,
        disadvantaged=pair[0],
        advantaged=pair[1],
        cache=not o.no_cache,
        amp=settings.amp,
        num_workers=o.workers,
        channels_last=settings.channels_last,
        generators=reg.generators,
        progress=reporter,
    )


def _write(
    path: Path,
    result: dict[str, Any],
    settings_out: list[str],
    det_paths: list[Path],
    dets: dict[str, list[dict[str, Any]]],
    force: bool,
) -> None:
    """First each setting's detections (none when they are not kept), then the metrics that
    reference them, with the hash of their numbers (``numbers_sha256``); with ``force``, the
    rescores of the result it replaced are removed. A write that fails removes the detections
    it wrote: no detections are left without the metrics that reference them."""
    from faapkit.artifacts.integrity import numbers_sha256
    from faapkit.evaluate import detections as saved
    from faapkit.io import atomic_write_text

    written: list[Path] = []
    try:
        if det_paths:
            result["detections"] = {}
            for setting, p in zip(settings_out, det_paths, strict=True):
                result["detections"][setting] = saved.save(p, setting, dets[setting])
                written.append(p)
        result["numbers_sha256"] = numbers_sha256(result)
        atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    info(f"metrics written to {path}")
    for stale in _rescores_of(path) if force else []:
        stale.unlink(missing_ok=True)  # they scored the detections this evaluation replaced
        info(f"removed {stale}: a rescore of the result --force replaced")


def _rescores_of(path: Path) -> list[Path]:
    """The ``--rescore`` results beside ``path`` that were rescored from it (read, not guessed
    from the name: a file merely named like one stays)."""
    found = []
    for f in sorted(path.parent.glob(f"{path.stem}_rescored*.json")):
        try:
            source = (json.loads(f.read_text()).get("rescored_from") or {}).get("metrics")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(source, str) and Path(source).absolute() == path.absolute():
            found.append(f)
    return found


def _show(result: dict[str, Any], json_: bool) -> None:
    if json_:
        print_json(result)
    else:
        from faapkit.cli.eval_table import show

        show(result, out_console)


def _reference_pair(
    split: Any, disadvantaged: str | None, advantaged: str | None, dcfg: Any, from_run: bool
) -> tuple[str | None, str | None]:
    """The groups of the gap. Named ones (options, or the run's data config for the same attribute)
    must exist in the split: falling back to other groups would report another gap silently.
    Without a run, the defaults (female/male) apply only to a two-group split that has them."""
    chosen: list[str | None] = []
    for role, given in (("disadvantaged", disadvantaged), ("advantaged", advantaged)):
        source, group = f"--{role}", given
        if group is None and dcfg is not None:
            source, group = f"the run's data.{role}", getattr(dcfg, role)
            if not from_run:  # built-in defaults: only where they fit
                group = group if group in split.groups and len(split.groups) == 2 else None
        if group is not None and group not in split.groups:
            raise ConfigError(
                f"{source} '{group}' is not a group of '{split.split_by}' in split '{split.split}' "
                f"(groups: {', '.join(split.groups)})"
            )
        chosen.append(group)
    return chosen[0], chosen[1]


def _short_hash(sha: str | None) -> str:
    return (sha or "unknown")[:8]
