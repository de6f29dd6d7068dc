"""Continuing a run from its latest checkpoint (``faap train --resume``): find and load it, check
it comes from this run, and restore the trained parts and the training position from it.

The order of restoring matters for byte-identical continuation: the parts' weights and optimiser
state first, then the global RNG, then the position and the epoch's meters (``Trainer._restore``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from faapkit.artifacts.checkpoint import CheckpointPayload, latest_checkpoint, read_training_checkpoint
from faapkit.artifacts.rundir import RunDir
from faapkit.config import FaapConfig
from faapkit.errors import CheckpointError, FaapError
from faapkit.losses.base import LossStrategy
from faapkit.train.state import EpochState


def latest(run: RunDir, notes: list[str]) -> tuple[Path, CheckpointPayload]:
    """The run's checkpoint with the highest training position, loaded and validated; only it is
    read whole. Checkpoints that cannot be read are left out with a line in ``notes`` naming each."""
    damaged: list[str] = []
    path = latest_checkpoint(run.checkpoint_files(), damaged)
    if path is None:
        raise FaapError(f"{run.path} has no checkpoint to resume from")
    notes.extend(f"{reason}; left out: resuming from {path.name}" for reason in damaged)
    return path, read_training_checkpoint(path)


def check_resumable(
    ckpt: CheckpointPayload,
    path: Path,
    *,
    config: FaapConfig,
    manifest: dict[str, Any],
    detector_sha256: str | None,
    data_fingerprint: str,
) -> None:
    """The checkpoint must come from this run: version, detector weights, dataset content and
    generator width; each mismatch is named (continuing from foreign weights is silent)."""
    problems = []
    if ckpt.version != config.version:
        problems.append(f"version '{ckpt.version}' (this run: '{config.version}')")
    sha = ckpt.detector.sha256
    if sha != detector_sha256:
        problems.append(f"detector weights {str(sha)[:12]} (now: {str(detector_sha256)[:12]})")
    generator = dict(config.generator)
    if ckpt.generator_spec != generator:
        problems.append(f"generator {ckpt.generator_spec} (this run: {generator})")
    fingerprints = {ckpt.dataset_fingerprint, manifest["dataset"]["fingerprint"]}
    if fingerprints != {data_fingerprint}:
        problems.append(
            f"dataset fingerprint {', '.join(sorted(fingerprints))} (the data now: {data_fingerprint}; "
            "images or annotations changed)"
        )
    if ckpt.run_id != manifest["run_id"]:
        problems.append(f"run id {ckpt.run_id} (this folder's run: {manifest['run_id']}; copied from another run?)")
    if problems:
        raise CheckpointError(f"cannot resume from {path}: it differs in {'; '.join(problems)}")


def load_parts(
    ckpt: CheckpointPayload,
    path: Path,
    *,
    generator: nn.Module,
    head: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    strategy: LossStrategy,
) -> None:
    """The generator's and head's weights, the optimiser's and the loss strategy's state."""
    try:
        generator.load_state_dict(ckpt.generator)
        if head is not None:
            head.load_state_dict(ckpt.head)
        optimizer.load_state_dict(ckpt.optimizer)
        strategy.load_state_dict(ckpt.strategy)
    except (KeyError, RuntimeError, ValueError) as exc:
        first = " ".join(str(exc).split())[:160]
        raise CheckpointError(f"cannot resume from {path}: its state does not fit this run ({first})") from None


def restore_position(ckpt: CheckpointPayload, state: EpochState) -> None:
    """Continue after an epoch-end checkpoint's epoch, or mid-epoch where a step checkpoint stopped
    (with that epoch's meters, skips and non-finite count so far)."""
    state.global_step = ckpt.global_step
    if ckpt.epoch_complete:
        state.epoch, state.position = ckpt.epoch + 1, 0
    else:
        state.epoch, state.position = ckpt.epoch, ckpt.position
        state.meters.load_state_dict(ckpt.meters)
        state.skips.update(ckpt.skips)
        state.nonfinite = ckpt.nonfinite
