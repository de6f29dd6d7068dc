"""Durable, safe checkpoint files.

Writes go to a temporary file in the same folder, are fsynced and then renamed over the target,
so a kill at any moment leaves either the old file or the new one. Reads always use
``torch.load(weights_only=True)``: a pickle carrying code is refused.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from faapkit.errors import CheckpointError, FaapError

FORMAT = "faapkit.checkpoint/1"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically save a dict of tensors / plain Python values (loadable with weights_only=True)."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise FaapError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None


def load_checkpoint(path: Path, *, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint safely; every failure is a :class:`CheckpointError` with one clear line.
    ``mmap``: map tensors instead of reading them (cheap when only the metadata is needed)."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    with path.open("rb") as fh:
        head = fh.read(4)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or a legacy pickle
        raise CheckpointError(f"{path} is not a torch checkpoint file (it starts with {head!r})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        reason = " ".join(str(exc).split())
        if "weights_only" in reason or "Unsupported global" in reason or "GLOBAL" in reason:
            raise CheckpointError(
                f"refusing to load {path}: it contains pickled code or objects, not plain weights (weights_only=True)"
            ) from None
        raise CheckpointError(
            f"cannot read checkpoint {path} (truncated or not a torch file): {reason[:160]}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a dict of weights")
    return obj


def training_position(path: Path) -> tuple[int, bool]:
    """``(global_step, epoch_complete)`` stored in a faapkit checkpoint: what "latest" means
    (file times and names lie after a copy or a rename)."""
    try:
        ckpt = load_checkpoint(path, mmap=True)
    except CheckpointError:
        ckpt = load_checkpoint(path)  # an old (non-zip) torch file cannot be mapped
    step = ckpt.get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{path} stores no global_step: not a faapkit training checkpoint")
    return step, bool(ckpt.get("epoch_complete", False))


def latest_checkpoint(files: list[Path]) -> Path | None:
    """The checkpoint with the highest stored ``global_step`` (an epoch-end one over a mid-epoch
    one of the same step); None for no files."""
    if not files:
        return None
    return max(files, key=lambda p: (*training_position(p), p.name))


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
