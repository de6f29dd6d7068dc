"""A seed set on disk, read: what ``seeds.json`` records (:class:`SeedSet`), the run folder of
each seed and where each stands. Torch-free, and below ``faapkit.train`` (which writes and trains
the set: ``faapkit.train.seeds``) so that ``faap eval SEEDSET``, ``faap inspect`` and
``faap report`` read a set without importing the trainer.

The parent folder holds ``seeds.json`` (what the set is: version, seeds, the config file and
``--set`` overrides every seed shares) and one ordinary run folder per seed, ``seed-<N>/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.errors import FaapError

SCHEMA = "faapkit.seeds/1"
MANIFEST = "seeds.json"


def seed_folder(parent: Path, seed: int) -> Path:
    return parent / f"seed-{seed}"


@dataclass(frozen=True)
class SeedSet:
    """What ``seeds.json`` records: the set's shared command and its seeds."""

    version: str
    seeds: tuple[int, ...]
    config: str | None = None  # the --config file, absolute
    overrides: tuple[str, ...] = ()  # the --set overrides (train.seed excluded)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": self.version,
            "seeds": list(self.seeds),
            "runs": {str(s): f"seed-{s}" for s in self.seeds},
            "config": self.config,
            "overrides": list(self.overrides),
        }


def is_seed_set(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_seed_set(parent: Path) -> SeedSet:
    """The set recorded in ``parent/seeds.json``, refused in one line if it is not one."""
    path = Path(parent) / MANIFEST
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"schema is {data.get('schema') if isinstance(data, dict) else None!r}, not {SCHEMA}")
        seeds = tuple(int(s) for s in data["seeds"])
        if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError("'seeds' must be distinct non-negative integers")
        return SeedSet(
            version=str(data["version"]),
            seeds=seeds,
            config=data.get("config"),
            overrides=tuple(str(o) for o in data.get("overrides") or ()),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FaapError(f"{path} is not a faapkit seed set: {exc}") from None


def seed_runs(parent: Path) -> list[tuple[int, Path]]:
    """``(seed, run folder)`` of every seed of the set in ``parent``, in the recorded order."""
    return [(s, seed_folder(Path(parent), s)) for s in read_seed_set(parent).seeds]


def seed_state(run: Path, seed: int | None = None, version: str | None = None) -> str:
    """``done`` (trained to its schedule's end), ``partial`` (a run to resume; one that stopped
    before its first checkpoint resumes by starting afresh) or ``new``. With ``seed`` (and the
    set's ``version``), a run folder there that records another seed or version is refused: it is
    not this seed's run (edited, or moved in by hand), and counting it would report it as one."""
    from faapkit.artifacts.rundir import RunDir

    rd = RunDir(run)
    if not rd.exists():
        return "new"
    manifest = rd.read_manifest()
    train = (manifest.get("config") or {}).get("train") or {}
    if seed is not None and (train.get("seed") != seed or (version is not None and manifest.get("version") != version)):
        raise FaapError(
            f"{run} records the run of seed {train.get('seed')!r}, version {manifest.get('version')!r}, "
            f"not seed {seed} of this '{version}' set: move it out (or restore it) and run faap train --resume "
            f"{run.parent}"
        )
    epochs, max_steps = train.get("epochs"), train.get("max_steps")
    log = rd.read_log()
    finished = bool(log) and (
        (isinstance(epochs, int) and max(int(r["epoch"]) for r in log) >= epochs - 1)
        or (max_steps is not None and any(int(r.get("global_step", 0)) >= max_steps for r in log))
    )
    kept = rd.checkpoint_files() or any((rd.checkpoints / name).is_file() for name in ("last.pt", "best.pt"))
    if finished and not kept:
        # trained, but nothing left to evaluate or resume from: counting it as done hides that
        raise FaapError(
            f"{run} finished training but its checkpoints are gone ({rd.checkpoints}): restore them, "
            f"or move {run} out and run faap train --resume {run.parent} to train that seed again"
        )
    return "done" if finished else "partial"


def seed_states(parent: Path) -> list[tuple[int, Path, str]]:
    """``(seed, run folder, state)`` of every seed of the set in ``parent``, in the recorded order
    (:func:`seed_state`: ``"done"`` when the seed's run trained to the end)."""
    version = read_seed_set(parent).version
    return [(seed, run, seed_state(run, seed, version)) for seed, run in seed_runs(parent)]
