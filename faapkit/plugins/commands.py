"""Commands from plugins (hook ``faap_register_commands``): each implementation is called, in
registration order, with a ``register`` bound to its plugin, and what it registers becomes a click
command. A name claimed twice, by two plugins or by a plugin and a built-in command, is one error
naming both providers; a name that is no command name, or an object that is no command, is refused.
Torch-free: ``faap --help`` lists these commands (``faapkit.cli._plugin_commands`` adds them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
import typer.main

from faapkit.errors import ConfigError, DuplicateNameError

if TYPE_CHECKING:
    from faapkit.plugins import FaapPluginManager

BUILTIN = "faapkit (built-in command)"


@dataclass(frozen=True)
class PluginCommand:
    name: str
    command: Any  # the click command built from the plugin's Typer app or function
    provider: str


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
