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
    from faapkit.plugins.specs import (
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
    and default hyperparameters, and other names (``aliases``) ``--version`` accepts. Components
    are referred to by their registry names; ``extends`` names a version whose parts and
    defaults this one builds on (``faapkit.plugins.specs.VersionSpec``)."""


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
    """Register per-epoch schedules: pure functions ``(epoch, total_epochs, **options) -> float``;
    ``kind`` (epsilon, lr, weight or None for any) restricts the roles they may be bound to."""


@hookspec
def faap_register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    """Register detectors: ``factory(**arch)`` returns a ``faapkit.plugin_api.DetectorParts`` (model,
    a set criterion or a loss of its own, postprocess); every detector faapkit uses is built by its spec's factory, then
    frozen and loaded with the configured checkpoint or the spec's packaged ``weights``."""


@hookspec
def faap_register_loggers(register: Callable[[LoggerSpec], None]) -> None:
    """Register experiment-tracker writers of training scalars, chosen by ``train.loggers``: a
    factory ``(run_dir, **options)`` returns an object with ``open(start_step)``,
    ``log(split, step, epoch, scalars)`` and ``close()`` (see ``faapkit.train.loggers``)."""


@hookspec
def faap_register_commands(register: Callable[[str, Any, str], None]) -> None:
    """Register ``faap NAME ...`` commands: ``register(name, command, help)`` with a
    ``typer.Typer`` (a command group, ``faap NAME SUB ...``) or a function (one command; its
    parameters are typer options and arguments). Loaded only when the command line does not name
    a built-in command (``faap``, ``faap --help``, ``faap NAME``); a name that a built-in command or
    another plugin claims is refused, naming both providers. Import torch inside the command, not
    at module level: ``faap --help`` loads the plugin."""


@hookspec(firstresult=True)
def faap_read_run(path: Path) -> list[Any] | None:  # RunRecord or dict: faapkit.compare sits above this layer
    """Read a run folder or metrics file written by another tool.

    Return a list of records or ``None`` when the path is not in a format this plugin
    understands. A record is a ``faapkit.plugin_api.RunRecord`` for one (run, epoch, split), or
    a plain dict with its keys (validated into one; a bad value is one error naming the key), as
    ``faapkit.plugin_api.train_only_records`` and the built-in ``faap_plugins.legacy_runs.read_eval_file`` build them:
    ``run``, ``path``, ``source``, ``version``, ``epoch``, ``split``, ``dataset``, ``epsilon``,
    ``perturbed`` and ``baseline`` (``{group: {"AP": ..., "AR": ..., ...}}`` or ``None``), and
    optionally ``reference``, ``is_baseline_only``, ``train`` (the epoch's training-log row).
    """
