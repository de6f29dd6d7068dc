"""How ``faap eval RUN`` picks its checkpoint (:func:`resolve_target`): a run folder's
``best.pt``, chosen on val by the run and checked against the sha256 its ``selection.json``
recorded; ``--epoch N`` gives that epoch's checkpoint; a run without ``best.pt`` gives its
highest-step checkpoint when it never validated, and is refused when its selection chose no
epoch (none narrowed the val gap within the guard) or chose one whose ``best.pt`` is gone; a
checkpoint path is used as given (a run's ``best.pt`` checked alike). A checkpoint asked for
that the run did not choose is labelled so in ``chosen_by``. A checkpoint inside a run folder must be that run's
(:func:`check_belongs`). Torch-free."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faapkit.errors import ConfigError, FaapError
from faapkit.evaluate.command.host import Notes, Silent


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
CHANGED_BEST_HINT = f"; evaluate it anyway with {CHANGED_BEST} (labelled as not the chosen checkpoint), "


def resolve_target(
    target: Path | None, epoch: int | None, accept_changed_best: bool = False, say: Notes | None = None
) -> Target:
    """A run folder gives ``checkpoints/best.pt`` if there is one (chosen on val, checked against
    the sha256 ``selection.json`` recorded), else the checkpoint with the highest stored
    global_step (never the newest file: a copy resets file times); ``--epoch N`` gives
    ``epoch_N``. A checkpoint path is used as given (a run's ``best.pt`` is checked alike). Notes
    about the choice go to ``say`` (none without)."""
    from faapkit.artifacts.rundir import RunDir, run_holding

    say = say or Silent()

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
            check_stored_epoch(path, epoch)
            chosen_by = f"--epoch {epoch} {asked_for(run.read_selection(), epoch)}"
            return Target(path, target, *recorded[:1], chosen_by, *recorded[1:])
        return _unchosen_target(run, target, recorded, accept_changed_best, say)
    if epoch is not None:
        raise ConfigError("--epoch chooses within a run folder; it cannot be combined with a checkpoint path")
    holder = run_holding(target)
    if holder is not None:
        config, root, run_id = _recorded(holder)
        if target.name != "best.pt":
            given = f"given {asked_for(holder.read_selection(), _epoch_of(target))}"
            return Target(target, holder.path, config, given, root, run_id)
        check = check_best(holder, target, accept_changed_best, say)
        return Target(target, holder.path, config, "given", root, run_id, check.chosen_on, check.note)
    return Target(target, None, {}, "given")


def _unchosen_target(run: Any, target: Path, recorded: tuple[Any, ...], accept_changed: bool, say: Notes) -> Target:
    """A run folder without ``--epoch``: ``best.pt`` (checked against ``selection.json``), else
    its highest step when the run chose none. A ``best.pt`` that is gone although the selection
    chose an epoch is refused: the highest step is not what the run chose."""
    from faapkit.artifacts.checkpoint import latest_checkpoint

    config, root, run_id = recorded
    best = run.checkpoints / "best.pt"
    selection = run.read_selection() or {}
    if best.is_file():
        check = check_best(run, best, accept_changed, say)
        return Target(best, target, config, check.chosen_by, root, run_id, check.chosen_on, check.note)
    if selection.get("epoch") is not None:
        raise FaapError(_missing_best(run, best, selection["epoch"]))
    damaged: list[str] = []
    last = latest_checkpoint(run.checkpoint_files(), damaged)
    if last is None:
        raise FaapError(
            f"{target} has no checkpoint yet: the run stopped before its first one, so there is nothing to "
            f"evaluate; continue it with faap train --resume {target}"
        )
    for reason in damaged:
        say.warn(f"{reason}; left out of the choice of the highest step")
    if selection:
        raise FaapError(_none_chosen(run, target, selection))
    return Target(last, target, config, "highest global_step", root, run_id)


def none_chosen(target: Path) -> str | None:
    """Why the run in ``target`` has no checkpoint to evaluate without ``--epoch``: its selection
    chose no epoch (``selection.json``'s outcome) and it holds no ``best.pt``; ``None`` otherwise."""
    from faapkit.artifacts.rundir import RunDir

    run = RunDir(target)
    selection = run.read_selection() or {}
    if not selection or selection.get("epoch") is not None or (run.checkpoints / "best.pt").is_file():
        return None
    outcome = selection.get("outcome")
    return outcome.removeprefix("none: ") if isinstance(outcome, str) else "its selection chose no epoch"


def _none_chosen(run: Any, target: Path, selection: dict[str, Any]) -> str:
    """One line: the run chose no checkpoint, why (``selection.json``'s outcome) and the way on."""
    outcome = selection.get("outcome")
    why = (
        outcome.removeprefix("none: ")
        if isinstance(outcome, str)
        else f"no validated epoch met the selection rule ({selection.get('description', '')})"
    )
    return (
        f"{target} has no best.pt: {why} ({run.selection_path}); evaluate a checkpoint the run did not "
        f"choose with --epoch N or {run.checkpoints / 'last.pt'} (labelled as not chosen)"
    )


def asked_for(selection: dict[str, Any] | None, epoch: int | None) -> str:
    """How a checkpoint asked for by epoch or path stands to the run's choice, in parentheses."""
    if not selection:
        return "(asked for; not chosen: the run has no selection.json)"
    if selection.get("epoch") is None:
        return "(asked for; not chosen: the run's selection chose no epoch)"
    if epoch is not None and selection.get("epoch") == epoch:
        return f"(the epoch selection.json chose on {selection.get('split', 'val')})"
    return f"(asked for; not the epoch selection.json chose, {selection.get('epoch')})"


def check_stored_epoch(path: Path, epoch: int) -> None:
    """Refuse an ``epoch_NNNN.pt`` whose stored epoch is another (a file renamed or copied over):
    its numbers would be filed under the epoch its name says."""
    from faapkit.io import load_checkpoint

    stored = load_checkpoint(path, mmap=True).get("epoch")
    if stored != epoch or isinstance(stored, bool):
        held = f"epoch {stored}" if isinstance(stored, int) and not isinstance(stored, bool) else "no epoch"
        raise FaapError(
            f"{path} holds {held}, not epoch {epoch} as its name says (renamed or copied over?); "
            f"--epoch {epoch} would evaluate another epoch under this one's name"
        )


def _epoch_of(path: Path) -> int | None:
    """The epoch an ``epoch_NNNN.pt`` file name says (None for other names: last.pt, step files)."""
    name = path.name
    return int(name[6:10]) if name.startswith("epoch_") and name[6:10].isdigit() else None


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


def check_best(run: Any, best: Path, accept_changed: bool, say: Notes) -> BestCheck:
    """``best.pt`` against the ``checkpoint_sha256`` its run's ``selection.json`` recorded when
    it wrote it (streamed once). A file that differs, or a ``best.pt`` although the selection chose
    no epoch, is refused unless ``accept_changed`` (then labelled as not the chosen checkpoint).
    A selection from before the hash was recorded passes, said in one note line."""
    from faapkit.artifacts.integrity import file_sha256
    from faapkit.fairness import former_choice_without_narrowing

    selection = run.read_selection() or {}
    split = str(selection.get("split", "val"))
    label = f"best.pt (chosen on {split})"
    widened = former_choice_without_narrowing(selection)
    if widened is not None:
        say.warn(f"{run.selection_path}: {widened}; evaluated, labelled so")
        label = f"best.pt (chosen on {split} by the former rule; {widened})"
    chosen = BestCheck(label, split, "sha256 matches selection.json")
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
        say.info(f"note: {run.selection_path} {why}: {best} is evaluated unverified")
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
        raise FaapError(f"{problem}{CHANGED_BEST_HINT}or another checkpoint with --epoch")
    say.warn(f"{problem}; evaluated as {CHANGED_BEST} asks, labelled as not the checkpoint chosen on {split}")
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


def check_belongs(checkpoint: Path, run_dir: Path) -> None:
    """Refuse a checkpoint of ``run_dir`` that is no whole training checkpoint (format, keys and
    their types: before any inference), or whose run id or version is not the run's (one dropped
    in from another run)."""
    from faapkit.artifacts.records import checkpoint_payload
    from faapkit.artifacts.rundir import RunDir
    from faapkit.io import load_checkpoint

    manifest = RunDir(run_dir).manifest()
    # memory-mapped: the check reads the keys, the weights are loaded once, by the evaluation
    ckpt = checkpoint_payload(load_checkpoint(checkpoint, mmap=True), checkpoint)
    for key, what in (("run_id", "run id"), ("version", "version")):
        mine, stored = getattr(manifest, key), getattr(ckpt, key)
        if stored != mine:
            raise FaapError(
                f"{checkpoint} was written with {what} {stored}, not by the run of {run_dir} ({what} {mine}): "
                "copied from another run? evaluate it from its own run folder, or copy it out of this one"
            )
