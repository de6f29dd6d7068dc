"""The run folder: ``run.json`` manifest (a :class:`~faapkit.artifacts.records.RunManifest`),
``train_log.jsonl`` and ``checkpoints/``.

Every file is replaced atomically. ``train_log.jsonl`` is rewritten whole on each epoch, keeping
only epochs before the one being written, so a resumed run never duplicates an epoch (P17).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faapkit.artifacts.records import RunManifest, read_run_manifest, write_run_manifest
from faapkit.errors import FaapError
from faapkit.io import atomic_write_text

# Folders this process holds locked. flock locks per open file, so a second lock from the same
# process would refuse it; in-process use (tests, notebooks) runs trainers one after another,
# so a new lock on a folder this process holds takes it over instead.
_HELD: dict[Path, int] = {}

CHECKPOINT_RE = re.compile(r"^(epoch_(\d{4})|step_(\d{8}))\.pt$")


def seed_runs_inside(folder: Path) -> list[str]:
    """The names of the ``seed-<N>/`` run folders in ``folder`` (a seed set's, or what is left of
    one without its ``seeds.json``), sorted."""
    return sorted(p.parent.name for p in Path(folder).glob("seed-*/run.json"))


def run_holding(checkpoint: Path) -> RunDir | None:
    """The run folder whose ``checkpoints/`` holds ``checkpoint``, else ``None`` (a loose checkpoint)."""
    run = RunDir(checkpoint.parent.parent)
    return run if checkpoint.parent.name == "checkpoints" and run.exists() else None


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).absolute()
        self.checkpoints = self.path / "checkpoints"
        self.manifest_path = self.path / "run.json"
        self.log_path = self.path / "train_log.jsonl"
        self.selection_path = self.path / "selection.json"
        self._lock_fd: int | None = None
        self.made_by_lock = False  # this process created the folder (a refused setup may take it back)

    def lock(self) -> None:
        """Become the folder's only writer until this process ends (or :meth:`unlock`).

        An advisory ``flock`` on the folder itself: no lock file to leave behind or to remove by
        hand after a crash (the kernel drops the lock with the process), and a refused second run
        changes nothing in the folder."""
        held = _HELD.pop(self.path, None)
        if held is not None:
            os.close(held)
        fresh = not self.path.exists()
        if self.path.exists() and not self.path.is_dir():  # mkdir would say 'File exists'
            raise FaapError(f"output folder {self.path} is a file; name a folder (new, or a run to --resume)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise FaapError(f"output folder {self.path} is not writable: {exc.strerror or exc}") from None
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): one writer is then the user's responsibility
            pass
        except OSError:
            os.close(fd)
            raise FaapError(
                f"{self.path} is in use by another faap process (one writer per run folder); "
                "wait for it to finish or choose another --out"
            ) from None
        self._lock_fd = _HELD[self.path] = fd
        self.made_by_lock = self.made_by_lock or fresh  # only once the lock is ours: never another writer's folder

    def unlock(self) -> None:
        if self._lock_fd is not None and _HELD.get(self.path) == self._lock_fd:
            os.close(_HELD.pop(self.path))  # closing the descriptor releases the flock
        self._lock_fd = None

    def discard_if_unused(self) -> None:
        """Remove the folder again if this process created it and nothing was written into it
        (empty sub-folders only): a run refused during setup leaves no trace. Files are never removed."""
        if not self.made_by_lock or not self.path.is_dir():
            return
        if any(p.is_file() or p.is_symlink() for p in self.path.rglob("*")):
            return
        self.unlock()
        try:
            for folder in sorted((p for p in self.path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                folder.rmdir()
            self.path.rmdir()
        except OSError:  # written to meanwhile (another process took the folder): it stays
            pass

    def create(self) -> None:
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise FaapError(f"output folder {self.path} is not writable: {exc.strerror or exc}") from None

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def manifest(self) -> RunManifest:
        """The run's ``run.json``, validated (:func:`faapkit.artifacts.records.run_manifest`)."""
        if not self.path.is_dir():
            raise FaapError(f"run folder not found: {self.path}")
        if not self.manifest_path.is_file():
            seeds = seed_runs_inside(self.path)
            if seeds:  # a seed set without its seeds.json: no command recreates it
                raise FaapError(
                    f"{self.path} holds seed runs ({', '.join(seeds[:3])}{', ...' if len(seeds) > 3 else ''}) "
                    f"but no seeds.json, so it is no seed set: evaluate each seed as a run (faap eval "
                    f"{self.path / seeds[0]}), compare them with faap compare {self.path}, or restore seeds.json"
                )
            raise FaapError(
                f"{self.path} is not a faapkit run folder (no run.json; a run that failed before its "
                f"manifest was written holds nothing: start it with faap train --out {self.path})"
            )
        return read_run_manifest(self.manifest_path)

    def read_manifest(self) -> dict[str, Any]:
        """:meth:`manifest` as the JSON object ``run.json`` holds."""
        return self.manifest().dump()

    def write_manifest(self, manifest: RunManifest | Mapping[str, Any]) -> None:
        write_run_manifest(self.manifest_path, manifest)

    def write_selection(self, selection: Mapping[str, Any]) -> None:
        atomic_write_text(self.selection_path, json.dumps(selection, indent=2, default=str) + "\n")

    def read_selection(self) -> dict[str, Any] | None:
        if not self.selection_path.is_file():
            return None
        try:
            return json.loads(self.selection_path.read_text())  # type: ignore[no-any-return]
        except json.JSONDecodeError as exc:
            raise FaapError(f"{self.selection_path} is corrupt: {exc}") from None

    def read_log(self) -> list[dict[str, Any]]:
        if not self.log_path.is_file():
            return []
        rows = []
        for number, line in enumerate(self.log_path.read_text(errors="replace").splitlines(), start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                    int(row["epoch"])  # every reader keys rows by epoch
                except (ValueError, KeyError, TypeError):
                    raise FaapError(f"{self.log_path} line {number} is corrupt: {line[:80]!r}") from None
                rows.append(row)
        return rows

    def _write_log(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in rows))

    def write_epoch(self, row: Mapping[str, Any]) -> None:
        self._write_log([*(r for r in self.read_log() if int(r["epoch"]) < int(row["epoch"])), dict(row)])

    def truncate_log(self, before_epoch: int) -> None:
        if self.log_path.is_file():
            self._write_log([r for r in self.read_log() if int(r["epoch"]) < before_epoch])

    def partial_writes(self) -> list[Path]:
        """Temporary files left by a process killed while writing (never read, safe to drop)."""
        return [*self.path.glob(".*.tmp"), *self.checkpoints.glob(".*.tmp")]

    def remove_partial_writes(self) -> list[str]:
        """Drop :meth:`partial_writes`; their names."""
        stale = self.partial_writes()
        for p in stale:
            p.unlink(missing_ok=True)
        return [p.name for p in stale]

    def checkpoint_files(self) -> list[Path]:
        if not self.checkpoints.is_dir():
            return []
        return sorted(p for p in self.checkpoints.iterdir() if CHECKPOINT_RE.match(p.name))

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:04d}.pt"

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:08d}.pt"
