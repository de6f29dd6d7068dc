"""A seed set on disk, read: what ``seeds.json`` records (:class:`SeedSet`), the run folder of
each seed and where each stands. Torch-free, and below ``faapkit.train`` (which writes and trains
the set: ``faapkit.train.seeds``) so that ``faap eval SEEDSET``, ``faap inspect`` and
``faap report`` read a set without importing the trainer.

The parent folder holds ``seeds.json`` (what the set is: version, seeds, the config file and
``--set`` overrides every seed shares) and one ordinary run folder per seed, ``seed-<N>/``.

A set is one configuration: every reader (``faap train --resume``, ``faap eval``, ``faap report``,
``faap compare``) asks :func:`check_one_configuration`, which refuses a set whose seeds' ``run.json``
disagree with ``seeds.json`` or with each other in anything but the seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
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
    (:func:`seed_state`: ``"done"`` when the seed's run trained to the end); a set that is not one
    configuration is refused (:func:`check_one_configuration`)."""
    version = read_seed_set(parent).version
    states = [(seed, run, seed_state(run, seed, version)) for seed, run in seed_runs(parent)]
    check_one_configuration(parent)
    return states


# what the seeds of one set may differ in: the seed itself
PER_SEED = frozenset({("train", "seed")})
SHOWN = 4  # differing keys named in the one line


def check_one_configuration(parent: Path, resolved: Mapping[str, Any] | None = None) -> SeedSet:
    """The set in ``parent``, refused in one line naming the differing keys when it is not one
    configuration: a seed's ``run.json`` that differs from ``seeds.json`` (its version, or a key its
    ``--set`` overrides give) or from the other seeds' (any key but ``train.seed``
    and those that change how a run executes, not what it computes), or, with ``resolved`` (the
    configuration ``seeds.json`` resolves to now, what a missing seed would be trained with), from
    that. Seeds without a ``run.json`` have nothing to compare."""
    held = read_seed_set(parent)
    problems = configuration_problems(Path(parent), held, resolved)
    if problems:
        restore = MANIFEST + (f" and {held.config}" if held.config else "")
        raise FaapError(
            f"seed set {parent}: {'; '.join(problems)}: its seeds are not one configuration; restore "
            f"{restore} (or move the seeds that differ out and run faap train --resume {parent}); "
            f"faap compare {parent} shows its seeds as separate runs"
        )
    return held


def configuration_problems(parent: Path, held: SeedSet, resolved: Mapping[str, Any] | None = None) -> list[str]:
    """What :func:`check_one_configuration` refuses, one phrase per difference (seeds that differ
    alike said together)."""
    from faapkit.config.differences import with_defaults

    runs = {seed: _stored(seed_folder(parent, seed)) for seed in held.seeds}
    stored = {seed: (run[0], with_defaults(run[1])) for seed, run in runs.items() if run is not None}
    said: dict[str, list[int]] = {}
    wanted = _manifest_tree(held)
    reference: tuple[int, dict[str, Any]] | None = None
    for seed, (version, config) in stored.items():
        if version != held.version:
            versions = f"{json.dumps(version)} vs {json.dumps(held.version)}"
            said.setdefault(f"from {MANIFEST} in version ({versions})", []).append(seed)
            continue
        found = _differences(config, wanted, MANIFEST, partial=True)
        if resolved is not None and not found:
            found = _differences(config, resolved, f"what {MANIFEST} trains now")
        if not found and reference is not None:
            found = _differences(config, reference[1], f"seed {reference[0]}'s")
        if found:
            said.setdefault(found, []).append(seed)
        elif reference is None:
            reference = (seed, config)
    return _copies(runs) + [f"{_whose(seeds)} {what}" for what, seeds in said.items()]


def _copies(runs: Mapping[int, tuple[Any, Any, Any] | None]) -> list[str]:
    """Seeds whose ``run.json`` records one run id: one run copied into another seed's folder (its
    ``train.seed`` edited) is no other sample."""
    ids: dict[str, list[int]] = {}
    for seed, run in runs.items():
        if run is not None and isinstance(run[2], str):
            ids.setdefault(run[2], []).append(seed)
    return [
        f"the run.json of seeds {', '.join(map(str, seeds))} record one run (run id {run_id}): "
        "a copy of a seed's run is no other seed"
        for run_id, seeds in ids.items()
        if len(seeds) > 1
    ]


def _stored(run: Path) -> tuple[Any, dict[str, Any], Any] | None:
    """A seed's ``run.json``: its version, config and run id (``None`` without one)."""
    from faapkit.artifacts.rundir import RunDir

    rd = RunDir(run)
    if not rd.exists():
        return None
    manifest = rd.read_manifest()
    return manifest.get("version"), dict(manifest.get("config") or {}), manifest.get("run_id")


def _whose(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}'s run.json differs"
    return f"the run.json of seeds {', '.join(map(str, seeds))} differ"


def _manifest_tree(held: SeedSet) -> dict[str, Any]:
    """The keys ``seeds.json`` itself sets: its ``--set`` overrides. Its config file is named, not
    recorded (a file edited since for another experiment says nothing of the trained seeds): what it
    gives now is checked where a seed would be trained from it, ``resolved``."""
    from faapkit.config import parse_override
    from faapkit.config.layering import deep_merge
    from faapkit.errors import ConfigError

    tree: dict[str, Any] = {}
    for item in held.overrides:
        try:
            keys, value = parse_override(item)
        except ConfigError:
            continue
        nested: Any = value
        for key in reversed(keys):
            nested = {key: nested}
        tree = deep_merge(tree, nested)
    tree.pop("version", None)
    return tree


def _differences(config: Mapping[str, Any], other: Mapping[str, Any], whose: str, partial: bool = False) -> str:
    """``from WHOSE in key (run.json A, B)`` for the keys that differ (``partial``: only the keys
    ``other`` sets), the first :data:`SHOWN` named; ``""`` when none does."""
    from faapkit.config.differences import differing

    found = [
        (key, a, b)
        for key, a, b in differing(config, other, PER_SEED)
        if not (partial and b is None and not _sets(other, key)) and not _same_path(a, b)
    ]
    if not found:
        return ""
    named = ", ".join(f"{key} ({_short(a)} vs {_short(b)})" for key, a, b in found[:SHOWN])
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return f"from {whose} in {named}{more}"


def _sets(tree: Mapping[str, Any], dotted: str) -> bool:
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _same_path(stored: Any, given: Any) -> bool:
    """A path the trainer made absolute against the relative one ``seeds.json`` records (resolved
    against the folder the set was started from, which is not recorded): the same when it ends so."""
    if not isinstance(stored, str) or not isinstance(given, str) or not stored.startswith("/"):
        return False
    if given.startswith("/"):  # written otherwise (a trailing slash, a '..'), the same file
        return os.path.normpath(given) == os.path.normpath(stored)
    parts = tuple(p for p in Path(os.path.normpath(given)).parts if p not in ("..", "."))
    return bool(parts) and Path(stored).parts[-len(parts) :] == parts


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
