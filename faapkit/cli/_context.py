"""Per-invocation state shared by commands: the plugin manager and its registries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from pathlib import Path

    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.plugins import FaapPluginManager
    from faapkit.plugins.registry import Registries


@dataclass
class AppState:
    blocked: list[str] = field(default_factory=list)
    _pm: FaapPluginManager | None = None
    _registries: Registries | None = None

    @property
    def pm(self) -> FaapPluginManager:
        if self._pm is None:
            from faapkit.cli._console import warn
            from faapkit.plugins import make_plugin_manager

            self._pm = make_plugin_manager(blocked=self.blocked)
            for name, error in self._pm.load_errors:
                warn(f"plugin '{name}' failed to load and was skipped: {error}")
        return self._pm

    @property
    def registries(self) -> Registries:
        if self._registries is None:
            from faapkit.plugins.registry import Registries

            self._registries = Registries.from_plugin_manager(self.pm)
        return self._registries


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def lock_output(ctx: typer.Context, output: Path) -> OutputLock:
    """Take ``output``'s lock (``faapkit.artifacts.output_lock``) before the command's work and
    hold it until the command ends, however it ends: of two commands writing one result, one is
    refused before it starts."""
    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.cli._console import warn

    lock = OutputLock(output, note=warn).acquire()
    ctx.call_on_close(lock.release)
    return lock
