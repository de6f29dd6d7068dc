"""Commands from plugins (hook ``faap_register_commands``), added to ``faap`` beside the built-ins.

Command plugins are loaded only when the command line does not name a built-in command, so
``faap train ...`` never pays for them, and ``faap --help`` still imports no torch (plugins are
torch-free at import time). A name claimed twice, by two plugins or by a plugin and a built-in
command, is one error naming both providers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
import typer.main

from faapkit.errors import ConfigError, DuplicateNameError

if TYPE_CHECKING:
    from faapkit.plugins import FaapPluginManager

BUILTIN = "faapkit (built-in command)"
ROOT_OPTIONS_WITH_VALUE = {"--disable-plugin"}


@dataclass(frozen=True)
class PluginCommand:
    name: str
    command: Any  # the click command built from the plugin's Typer app or function
    provider: str


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


def provider_of(pm: FaapPluginManager, plugin: str) -> str:
    info = pm.info.get(plugin)
    return f"plugin '{plugin}' ({info.distribution} {info.version})" if info else f"plugin '{plugin}'"


def plugin_commands(pm: FaapPluginManager, builtin: set[str]) -> list[PluginCommand]:
    """Call every ``faap_register_commands`` implementation (in registration order) with a
    ``register`` bound to its plugin; refuse names claimed twice and objects that are no command."""
    found: dict[str, PluginCommand] = {}
    for impl in pm.hook.faap_register_commands.get_hookimpls():  # in registration order
        impl.function(register=_register_for(pm, impl.plugin_name, builtin, found))
    return list(found.values())


def _register_for(
    pm: FaapPluginManager, plugin: str, builtin: set[str], found: dict[str, PluginCommand]
) -> Callable[..., None]:
    who = provider_of(pm, plugin)

    def register(name: str, command: Any, help: str = "") -> None:
        if not isinstance(name, str) or not name or name.startswith("-") or any(c.isspace() for c in name):
            raise ConfigError(f"{who} registered a command with an invalid name {name!r}")
        if name in builtin:
            raise DuplicateNameError(f"faap command '{name}' claimed by both {BUILTIN} and {who}")
        if name in found:
            raise DuplicateNameError(f"faap command '{name}' claimed by both {found[name].provider} and {who}")
        click_command: Any
        if isinstance(command, typer.Typer):
            click_command = typer.main.get_group(command)  # a group even with one subcommand
        elif callable(command):
            single = typer.Typer()
            single.command(name=name)(command)
            click_command = typer.main.get_command(single)
        else:
            raise ConfigError(
                f"{who} registered command '{name}' as a {type(command).__name__}, not a typer.Typer or a function"
            )
        if help:
            click_command.help = help
            click_command.short_help = help
        found[name] = PluginCommand(name, click_command, who)

    return register


def add_plugin_commands(group: Any, pm: FaapPluginManager) -> None:
    """Add the plugins' commands to ``faap``'s click group (built from the built-in Typer app)."""
    for cmd in plugin_commands(pm, set(group.commands)):
        group.add_command(cmd.command, name=cmd.name)
