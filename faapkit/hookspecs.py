"""The extension points of faapkit: the only place where hooks are declared.

Every hook is named ``faap_*``. Registration hooks receive a ``register`` callback and return
nothing; the core attaches the providing plugin's name to whatever is registered and rejects
duplicates. ``faap_read_run`` is an "ask" hook: the first plugin that recognises a folder wins.

This module must not import torch: it is imported by ``faap --help``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from faapkit.specs import (
        DetectorSpec,
        GeneratorSpec,
        HeadSpec,
        LoggerSpec,
        LossSpec,
        ScheduleSpec,
        VersionSpec,
    )

hookspec = pluggy.HookspecMarker("faap")
hookimpl = pluggy.HookimplMarker("faap")


@hookspec
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    """Register method versions (e.g. ``"4th"``): a bundle naming a loss, a head, schedules
    and default hyperparameters. Components are referred to by their registry names."""


@hookspec
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    """Register loss strategies. A loss factory is called with its validated options and returns
    a ``faapkit.losses.base.LossStrategy``, called once per batch as
    ``strategy(inputs: LossInputs) -> LossOutput`` (both in ``faapkit.losses.base``)."""


@hookspec
def faap_register_heads(register: Callable[[HeadSpec], None]) -> None:
    """Register trainable heads on decoder features ``(B, Q, D)``: projection heads, discriminators."""


@hookspec
def faap_register_generators(register: Callable[[GeneratorSpec], None]) -> None:
    """Register perturbation generators: modules ``(B, 3, H, W) -> delta`` bounded by their
    ``epsilon`` attribute. A version names its default; ``generator.name`` in a config picks another."""


@hookspec
def faap_register_schedules(register: Callable[[ScheduleSpec], None]) -> None:
    """Register per-epoch schedules: pure functions ``(epoch, total_epochs, **options) -> float``."""


@hookspec
def faap_register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    """Register frozen detector configurations (architecture hyperparameters and optional weights)."""


@hookspec
def faap_register_loggers(register: Callable[[LoggerSpec], None]) -> None:
    """Register experiment-tracker writers of training scalars, chosen by ``train.loggers``: a
    factory ``(run_dir, **options)`` returns an object with ``open(start_step)``,
    ``log(split, step, epoch, scalars)`` and ``close()`` (see ``faapkit.train.loggers``)."""


@hookspec(firstresult=True)
def faap_read_run(path: Path) -> list[dict[str, Any]] | None:
    """Read a run folder or metrics file written by another tool.

    Return a list of metric records or ``None`` when the path is not in a format this plugin
    understands. A record is a plain dict for one (run, epoch, split), with the keys that
    ``faapkit.run_records.train_only_records`` and ``faapkit.legacy.read_eval_file`` write:
    ``run``, ``path``, ``source``, ``version``, ``epoch``, ``split``, ``dataset``, ``epsilon``,
    ``perturbed`` and ``baseline`` (``{group: {"AP": ..., "AR": ..., ...}}`` or ``None``), and
    optionally ``reference``, ``is_baseline_only``, ``train`` (the epoch's training-log row).
    """
