"""The one guard every command's output path goes through (``faap probe``, ``faap detector
pretrain``, ``faap eval``, ``faap compare --csv/--plot``, ``faap inspect perturbation``).

A command writes a *result*: a metrics or report JSON, a CSV, a figure, pretrained weights.
``--force`` replaces an earlier result of the same kind, never what a run is made of (its
records, checkpoints, saved detections) nor detector weights: a probe report written over
``RUN/run.json`` would leave a run that can no longer be evaluated or resumed. Everything is
checked before the command starts its work, so a refusal costs nothing and changes nothing;
the writability of the folder is tried with a real (empty, removed) file, because permission
bits do not tell (root, read-only mounts, ACLs).

Torch-free: ``faap compare`` checks its outputs without importing torch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path

from faapkit.errors import ConfigError, FaapError

# what a run folder or a seed set is made of (faapkit's and the research scripts' folders)
RUN_FILES = frozenset(
    {"run.json", "train_log.jsonl", "selection.json", "config.json", "metrics.csv", "seeds.json", "dataset_layout.json"}
)
CHECKPOINT_SUFFIXES = (".pt", ".pth")
DETECTIONS_SUFFIX = ".dets.json.gz"
# the weights faapkit ships: every run that names no detector checkpoint reads them
PACKAGED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"

Replaceable = Callable[[Path], str | None]


def protected_kind(path: Path, *, weights: bool = False) -> str | None:
    """What ``path`` names that no command's output may be, whatever exists there now: a run's
    record, saved detections, a checkpoint or detector weights (``weights``: the command writes
    detector weights, so a ``.pth`` is its result, except the packaged ones). ``None`` if none."""
    if path.name in RUN_FILES:
        return "a run's record"
    if path.name.endswith(DETECTIONS_SUFFIX):
        return "saved detections"
    if path.name.endswith(".lock"):  # another output's lock (<output>.lock): a result there would block it
        return "a writer's lock file"
    if path.suffix.lower() in CHECKPOINT_SUFFIXES and not weights:
        return "a checkpoint or detector weights"
    if path.absolute().parent == PACKAGED_WEIGHTS:
        return "a file of faapkit's packaged detector weights"
    return None


def run_folder_of(path: Path) -> Path | None:
    """The run folder or seed set ``path`` lies in (a folder above it holding ``run.json`` or
    ``seeds.json``), else ``None``."""
    for folder in path.absolute().parents:
        if (folder / "run.json").is_file() or (folder / "seeds.json").is_file():
            return folder
    return None


def check_suffix(path: Path, option: str, suffixes: Collection[str], what: str) -> None:
    """``path`` ends in one of ``suffixes`` (lower case, with the dot), else a configuration
    error listing them: a writer would otherwise fail, or guess a format, after the work."""
    if path.suffix.lower() not in suffixes:
        shown = f"not '{path.suffix}'" if path.suffix else "it has none"
        raise ConfigError(f"{option} {path}: {what} must end in one of {', '.join(suffixes)} ({shown})")


def check_output(
    path: Path,
    option: str,
    *,
    force: bool,
    replaceable: Replaceable | None = None,
    weights: bool = False,
    suffixes: Collection[str] = (),
    what: str = "the result",
) -> Path:
    """Refuse, before any work, an output ``path`` (given as ``option``) that the command must
    not or cannot write; returns it. Refused: a protected name (:func:`protected_kind`), a folder,
    a parent that is missing, a file or not writable, and an existing file without ``force``.
    With ``force``, ``replaceable(path)`` may still refuse the existing file by returning what it
    is (e.g. "is no faap eval metrics file"). ``suffixes``: the endings the writer understands
    (``what`` names the result in that error)."""
    kind = protected_kind(path, weights=weights)
    if kind is not None:
        raise FaapError(f"{option} {path} names {kind}: never written here, not even with --force; name another file")
    if path.is_dir():
        raise FaapError(f"{option} {path} is a folder; name a file")
    check_writable_folder(path, option)
    if path.exists() or path.is_symlink():
        _check_replace(path, option, force, replaceable)
    if suffixes:  # after what exists there: "never replaced" says more about a file than its suffix
        check_suffix(path, option, suffixes, what)
    return path


def _check_replace(path: Path, option: str, force: bool, replaceable: Replaceable | None) -> None:
    """An existing ``path`` is replaced only with ``force``, and only if ``replaceable`` agrees."""
    if not path.is_file():
        raise FaapError(f"{option} {path} exists and is not a regular file; name another file")
    if not force:
        raise FaapError(f"{option} {path} exists; pass --force to replace it")
    why = replaceable(path) if replaceable is not None else None
    if why:
        raise FaapError(f"{option} {path} exists and {why}: never replaced, not even with --force; name another file")


def _nearest_existing_folder(path: Path, option: str) -> Path:
    """The nearest existing folder at or above ``path``'s parent; one that is a file is refused."""
    existing = path.absolute().parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FaapError(f"{option} {path}: {existing} is a file, not a folder")
    return existing


def check_writable_folder(path: Path, option: str) -> None:
    """The folder ``path`` goes into exists and takes a new file: tried by creating and removing
    an empty temporary file, so a read-only folder or file system is said now, naming the path,
    not after the work. A missing folder is refused rather than made: a mistyped folder would
    otherwise be created silently and the result looked for elsewhere."""
    parent = path.absolute().parent
    existing = _nearest_existing_folder(path, option)
    if existing != parent:
        raise FaapError(f"{option} {path}: folder {parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".faap-write-test-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FaapError(f"{option} {path}: cannot write in {parent}: {exc.strerror or exc}") from None


def ensure_folder(path: Path, option: str, *, create: bool = True) -> None:
    """The folder of a default output path (``RUN/eval``), made if missing (``create``; else the
    nearest existing folder above it is tried), and able to take a new file: a folder that is a
    file, a parent that is a file, or a read-only folder is one line naming ``path``, said before
    any work (:func:`check_writable_folder`)."""
    parent = path.absolute().parent
    existing = _nearest_existing_folder(path, option)
    if not create:
        check_writable_folder(existing / path.name, option)
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FaapError(f"{option} {path}: cannot create folder {parent}: {exc.strerror or exc}") from None
    check_writable_folder(path, option)
