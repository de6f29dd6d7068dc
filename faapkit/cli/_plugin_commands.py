"""Commands from plugins (``faapkit.plugins.commands``), added to ``faap`` beside the built-ins.

Command plugins are loaded only when the command line does not name a built-in command, so
``faap train ...`` never pays for them, and ``faap --help`` still imports no torch (plugins are
torch-free at import time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faapkit.plugins import FaapPluginManager

ROOT_OPTIONS_WITH_VALUE = {"--disable-plugin"}


def requested_command(args: Sequence[str]) -> str | None:
    """The command name on a ``faap`` command line (the first token that is not a root option)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ROOT_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def blocked_plugins(args: Sequence[str]) -> list[str]:
    """The ``--disable-plugin NAME`` / ``--disable-plugin=NAME`` values of a command line."""
    blocked = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--disable-plugin"]
    return blocked + [a.split("=", 1)[1] for a in args if a.startswith("--disable-plugin=")]


def add_plugin_commands(group: Any, pm: FaapPluginManager) -> None:
    """Add the plugins' commands to ``faap``'s click group (built from the built-in Typer app)."""
    from faapkit.plugins.commands import plugin_commands

    for cmd in plugin_commands(pm, set(group.commands)):
        group.add_command(cmd.command, name=cmd.name)
