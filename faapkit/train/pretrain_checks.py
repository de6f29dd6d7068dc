"""What ``faap detector pretrain`` refuses before any work: an unknown preset, a schedule with no
epoch to train, a negative worker count, and an ``--out`` whose weights, report (``.json``) or
snapshot (``.partial.pth``) may not be written. torch is imported only to read an existing file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from faapkit.errors import ConfigError, FaapError

if TYPE_CHECKING:
    from faapkit.train.pretrain import PretrainPreset


def check_pretrain_options(preset: str, epochs: int | None, stop_after: int | None, workers: int) -> PretrainPreset:
    """The named preset, once ``--epochs``, ``--stop-after`` and ``--workers`` are known to fit it."""
    from faapkit.train.pretrain import PRESETS

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; known: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    check_schedule(p.epochs, p.start_epoch, epochs, stop_after)
    if workers < 0:
        raise ConfigError(f"--workers must be at least 0, got {workers}")
    return p


def check_schedule(preset_epochs: int, start_epoch: int, epochs: int | None, stop_after: int | None) -> None:
    """``--epochs`` and ``--stop-after`` give a schedule with at least one epoch to train: both
    at least 1 (0 is not "unset": it would start the preset's full schedule), the stop within
    the schedule, and both past the epoch a preset that continues a schedule starts from."""
    for option, value in (("--epochs", epochs), ("--stop-after", stop_after)):
        if value is not None and value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    total = preset_epochs if epochs is None else epochs
    given = f"--epochs {epochs}" if epochs is not None else f"the preset's {total} epochs"
    if stop_after is not None and stop_after > total:
        raise ConfigError(f"--stop-after {stop_after} is past the end of the schedule ({given}): give at most {total}")
    for option, value in (("--epochs", total), ("--stop-after", stop_after)):
        if value is not None and value <= start_epoch:
            raise ConfigError(
                f"{option} {value}: this preset continues its schedule from epoch {start_epoch}; "
                f"give more than {start_epoch}"
            )


def check_pretrain_out(out: Path, force: bool) -> None:
    """The weights, their report (``.json``) and their snapshot (``.partial.pth``) may be
    written: a ``.pth``/``.pt`` name outside any run folder, in a writable folder; existing ones
    are replaced only with ``--force`` and only when they are earlier detector weights and
    pretrain reports (never a run's checkpoint, a generator or another JSON)."""
    from faapkit.artifacts.outputs import check_output, run_folder_of

    folder = run_folder_of(out)
    if folder is not None:
        raise FaapError(f"--out {out} lies in the run folder {folder}: write detector weights outside run folders")
    # a .pth/.pt name, so that the report (the .json beside it) is never the weights themselves
    for path, option in ((out, "--out"), (out.with_suffix(".partial.pth"), f"--out {out}: its snapshot")):
        check_output(
            path,
            option,
            force=force,
            replaceable=_not_weights,
            weights=True,
            suffixes=(".pth", ".pt"),
            what="detector weights",
        )
    check_output(out.with_suffix(".json"), f"--out {out}: its report", force=force, replaceable=_not_report)


def _not_weights(path: Path) -> str | None:
    """Why an existing ``path`` may not be replaced by pretrained weights: it holds none (a
    generator checkpoint, another torch file, no torch file at all)."""
    import torch

    from faapkit.errors import CheckpointError
    from faapkit.io import load_checkpoint

    try:
        held = load_checkpoint(path, mmap=True)
    except CheckpointError:
        return "is no torch weights file"
    if "generator" in held:
        return "is a generator checkpoint"
    state = held.get("model", held)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "holds no detector weights"
    return None


def _not_report(path: Path) -> str | None:
    """Why an existing ``path`` may not be replaced by a pretrain report: it is none."""
    import json

    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        held = None
    if isinstance(held, dict) and {"detector", "preset", "command"} <= set(held):
        return None
    return "is no faap detector pretrain report"
