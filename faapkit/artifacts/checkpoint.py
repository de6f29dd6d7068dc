"""What faapkit's training checkpoints hold: their format tag, training position, generator
weights and a summary for ``faap inspect checkpoint``; a training checkpoint written and read
through its typed payload (:class:`~faapkit.artifacts.records.CheckpointPayload`).

Writing and safe reading of the files themselves is :mod:`faapkit.io` (``save_checkpoint``,
``load_checkpoint``, the atomic writers).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from faapkit.artifacts.records import CHECKPOINT_FORMAT, CheckpointPayload, checkpoint_payload
from faapkit.errors import CheckpointError
from faapkit.io import load_checkpoint, save_checkpoint, training_record

__all__ = [
    "FORMAT",
    "describe_checkpoint",
    "generator_state",
    "latest_checkpoint",
    "read_training_checkpoint",
    "save_training_checkpoint",
    "training_position",
]

FORMAT = CHECKPOINT_FORMAT


def save_training_checkpoint(path: Path, payload: CheckpointPayload | Mapping[str, Any]) -> str:
    """``payload``, validated, saved as ``path``; the sha256 of the bytes written."""
    record = payload if isinstance(payload, CheckpointPayload) else checkpoint_payload(payload, path)
    return save_checkpoint(path, record.saved())


def read_training_checkpoint(path: Path) -> CheckpointPayload:
    """The training checkpoint at ``path``; another file (a research checkpoint, a detector's
    weights) or one missing a key is refused in one line naming the file and the key."""
    return checkpoint_payload(load_checkpoint(path), path)


def training_position(path: Path) -> tuple[int, bool]:
    """``(global_step, epoch_complete)`` stored in a faapkit checkpoint: what "latest" means
    (file times and names lie after a copy or a rename)."""
    ckpt = load_checkpoint(path, mmap=True)
    step = ckpt.get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{path} stores no global_step: not a faapkit training checkpoint")
    return step, bool(ckpt.get("epoch_complete", False))


def latest_checkpoint(files: list[Path], damaged: list[str] | None = None) -> Path | None:
    """The checkpoint with the highest stored ``global_step`` (an epoch-end one over a mid-epoch
    one of the same step); None for no files. A file whose position cannot be read (truncated, not
    a training checkpoint) is left out and its one-line reason added to ``damaged``, for the caller
    to warn of: an old epoch's damaged file must not stop a resume from the intact latest one.
    Refused when no file can be read, or when ``damaged`` is not given."""
    positions: dict[Path, tuple[int, bool]] = {}
    problems: list[CheckpointError] = []
    for path in files:
        try:
            positions[path] = training_position(path)
        except CheckpointError as exc:
            problems.append(exc)
    if problems and (damaged is None or not positions):
        raise problems[0]
    if damaged is not None:
        damaged.extend(exc.one_line() for exc in problems)
    if not positions:
        return None
    return max(positions, key=lambda p: (*positions[p], p.name))


def generator_state(ckpt: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], float | None]:
    """Generator weights and epsilon from a faapkit checkpoint, a research checkpoint
    (``{"generator": sd, "epoch", ...}``, no epsilon) or a bare generator state dict."""
    if "generator" in ckpt and isinstance(ckpt["generator"], Mapping):
        state = dict(ckpt["generator"])
    elif all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = dict(ckpt)
    else:
        raise CheckpointError("checkpoint has no generator weights")
    eps = ckpt.get("epsilon")
    return state, (float(eps) if isinstance(eps, int | float) else None)


def describe_checkpoint(path: Path) -> dict[str, Any]:
    """Summary for ``faap inspect checkpoint``: format, epoch, epsilon, parts and their sizes."""
    ckpt = load_checkpoint(path)
    if "trained" in ckpt:  # written by `faap detector pretrain`: a detector's weights and how they were trained
        return {"path": str(path), "format": "faap detector pretrain weights", **training_record(ckpt, path)}
    info: dict[str, Any] = {"path": str(path), "format": ckpt.get("format", "research (eeshape/faap_gan)")}
    for key in ("version", "epoch", "epsilon", "global_step", "detector"):
        if key in ckpt:
            info[key] = ckpt[key]
    for key, value in ckpt.items():
        if isinstance(value, Mapping) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
            n = sum(
                int(v.numel())
                for k, v in value.items()
                if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
            )
            info[f"{key} (tensors)"] = f"{len(value)} keys, {n:,} values"
        elif key in {"opt_g", "opt_d", "optimizer", "optimizers"}:
            info[key] = "optimiser state"
    if "epsilon" not in ckpt:
        info["epsilon"] = "not stored (research checkpoint: pass --epsilon)"
    return info
