"""Durable writes and safe reads of files, for every package of faapkit.

Writes go to a temporary file in the same folder, are fsynced and then renamed over the target,
so a kill at any moment leaves either the old file or the new one (research pitfall P17). Torch
files are always read with ``torch.load(weights_only=True)``: a pickle carrying code is refused
(P7).

This module is a leaf of the package graph (it imports only ``faapkit.errors``) and imports torch
only inside the functions that need it, so the torch-free commands (``faap --help``,
``faap compare``) can write their files with it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from faapkit.errors import CheckpointError, FaapError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically, creating its folder if needed. A file-system
    failure (disk full, read-only folder, a file where a folder should be) is one
    :class:`FaapError` naming ``path``; the old file, if any, is left as it was."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write_with(path, write)


def atomic_write_with(path: Path, write: Callable[[Path], None], *, keep_suffix: bool = False) -> None:
    """``write(tmp)`` to a temporary ``.NAME.*.tmp`` beside ``path`` (the run folder's cleanup
    finds these), then rename it over ``path``; a failure removes it and is one
    :class:`FaapError` naming ``path``; the old file, if any, is left as it was. ``keep_suffix``
    ends the temporary name with ``path``'s suffix too (a figure or image writer picks its
    format from it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp" + (path.suffix if keep_suffix else ""), dir=path.parent
        )
        os.close(fd)
    except OSError as exc:
        raise FaapError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); results are shared like any file the user writes
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # never a half-written temporary left beside the target
        if isinstance(exc, OSError):
            raise FaapError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> str:
    """Atomically save a dict of tensors / plain Python values (loadable with weights_only=True);
    returns the sha256 of the bytes written (hashed from memory: no second read of the file)."""
    import hashlib

    import torch

    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)  # a failed write is one line naming the file
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(path: Path, *, mmap: bool = False) -> dict[str, Any]:
    """Load a torch file safely; every failure is a :class:`CheckpointError` with one clear line.
    ``mmap``: map tensors instead of reading them (cheap when only the metadata is needed); an old
    (non-zip) torch file cannot be mapped and is read whole."""
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    with path.open("rb") as fh:
        head = fh.read(4)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch's zip format, or a legacy pickle
        raise CheckpointError(f"{path} is not a torch checkpoint file (it starts with {head!r})")
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and head.startswith(b"PK\x03\x04"))
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


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` is a ``.safetensors`` file, by its content: an 8-byte little-endian header
    length, then the JSON header (``{``). A torch file starts with ``PK`` (zip) or a pickle opcode,
    so neither is taken for the other whatever the file is named."""
    try:
        with path.open("rb") as fh:
            head = fh.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8


TRAINED_RECORD: dict[str, type] = {"preset": str, "shape_buckets": bool, "bias": str}


def checkpoint_training(path: Path) -> dict[str, Any]:
    """How a ``faap detector pretrain`` file was trained (``{"preset", "shape_buckets", "bias"}``);
    empty for other checkpoints (upstream DETR's, files that record no training). A record that
    is there but malformed is refused, naming the file and the key: runs follow it, so a
    misread one would train or evaluate on the wrong batches or benchmark. A ``.safetensors``
    file (Hugging Face weights) holds tensors only, so it records none."""
    if path.is_file() and is_safetensors(path):
        return {}
    return training_record(load_checkpoint(path, mmap=True), path)


def training_record(ckpt: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """:func:`checkpoint_training` of a checkpoint already loaded from ``path``."""
    if "trained" not in ckpt:
        return {}
    trained = ckpt["trained"]
    if not isinstance(trained, Mapping):
        raise CheckpointError(f"{path}: its 'trained' record is a {type(trained).__name__}, not a mapping")
    for key, kind in TRAINED_RECORD.items():
        value = trained.get(key)
        if not isinstance(value, kind) or (kind is str and not value):
            raise CheckpointError(
                f"{path}: 'trained.{key}' must be a {'non-empty ' * (kind is str)}{kind.__name__}, got {value!r}"
            )
    return {key: trained[key] for key in TRAINED_RECORD}
