"""What a training run may do with its run folder: the one-writer lock, refusing to overwrite or
mix into a folder that is not this run's, what ``--resume`` may change in the config, and the
``run.json`` a run starts with. The folder's files themselves are :mod:`faapkit.artifacts.rundir`."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

import torch

from faapkit import __version__
from faapkit.artifacts.rundir import RunDir
from faapkit.config import FaapConfig
from faapkit.config.differences import config_differences, with_defaults
from faapkit.data.coco import DatasetSplit
from faapkit.detr.frozen import FrozenDetector
from faapkit.errors import ConfigError, FaapError

# what a fresh run writes (its loggers start their files afresh): a folder holding one is not new
RUN_FILES = ("metrics.csv", "tb", "train_log.jsonl", "selection.json")


def open_run_folder(run: RunDir, config: FaapConfig, *, resume: bool, is_main: bool) -> dict[str, Any]:
    """Take the folder's lock (one writer per run folder), then check it may be written: a resumed
    run must be the same version with the same config (``RESUMABLE_KEYS`` aside), a new run needs
    a folder holding no run. Returns the resumed run's manifest (``{}`` for a new run)."""
    if is_main:
        run.lock()
    if resume:
        return resumable_manifest(run, config)
    if run.exists():
        if not run.checkpoint_files():
            raise FaapError(
                f"{run.path} holds a run that stopped before its first checkpoint; "
                f"faap train --resume {run.path} starts it afresh, or choose another --out"
            )
        raise FaapError(f"{run.path} already holds a run; use --resume to continue it or choose another --out")
    taken = [n for n in RUN_FILES if (run.path / n).exists()]
    if taken:
        raise FaapError(
            f"{run.path} holds {taken[0]} but no run.json (not a faapkit run): a new run would replace "
            "or mix into it; choose another --out"
        )
    if is_main:
        run.create()
    return {}


def resumable_manifest(run: RunDir, config: FaapConfig) -> dict[str, Any]:
    """The manifest of the run in ``run`` when ``config`` may continue it: the same version and
    config, ``RESUMABLE_KEYS`` aside; else a configuration error naming the keys that differ."""
    manifest = run.read_manifest()
    if manifest.get("version") != config.version:
        raise ConfigError(f"cannot resume {run.path}: it is a '{manifest.get('version')}' run, not '{config.version}'")
    diffs = config_differences(with_defaults(manifest.get("config", {})), config.model_dump(mode="json"))
    if diffs:
        raise ConfigError(
            f"cannot resume {run.path}: the config differs in {', '.join(diffs[:6])}"
            + (" ..." if len(diffs) > 6 else "")
        )
    return manifest


def start_fresh(run: RunDir, manifest: dict[str, Any]) -> None:
    """A new run, or ``--resume`` of one that stopped before its first checkpoint: no epoch rows,
    no half-written files, this ``run.json``."""
    run.truncate_log(0)
    run.remove_partial_writes()
    run.write_manifest(manifest)


def run_manifest(
    config: FaapConfig,
    *,
    run_id: str,
    providers: dict[str, Any],
    world_size: int,
    data: DatasetSplit,
    detector: FrozenDetector,
    steps_per_epoch: int,
) -> dict[str, Any]:
    """``run.json``: what the run is (version, config, software, data, detector) and its id."""
    return {
        "format": "faapkit.run/1",
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": config.version,
        "config": config.model_dump(mode="json"),
        "software": {"faapkit": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "providers": providers,
        "seed": config.train.seed,
        "world_size": world_size,
        "dataset": {
            "root": str(data.root),
            "layout": data.layout,
            "split": data.split,
            "fingerprint": data.fingerprint,
            "groups": data.group_counts(),
            "skipped": data.skipped,
            "skipped_corrupt": len(data.skipped_corrupt),
            "group_level": data.group_level,
        },
        "detector": {"name": detector.name, "checkpoint": detector.checkpoint, "sha256": detector.sha256},
        "steps_per_epoch": steps_per_epoch,
    }
