"""Command plugins used by ``tests/plugins/test_command_plugins.py`` (found through ``.dist-info``
entry points the tests write): ``hello`` adds the group ``faap hello greet|count`` and the
one-function command ``faap shout TEXT``; ``twin`` claims ``hello`` again and ``clash`` claims the
built-in ``train`` (both refused). Registering them imports no torch."""

from collections.abc import Callable
from typing import Any

import typer

from faapkit.plugin_api import hookimpl

hello_app = typer.Typer()


@hello_app.command()
def greet(name: str = typer.Option("world", help="who to greet")) -> None:
    """Print a greeting."""
    typer.echo(f"hello {name}")


@hello_app.command()
def count(n: int = typer.Argument(..., help="how far")) -> None:
    """Count to N."""
    typer.echo(" ".join(str(i) for i in range(1, n + 1)))


def shout(text: str = typer.Argument(..., help="what to shout")) -> None:
    typer.echo(text.upper())


class Hello:
    @hookimpl
    def faap_register_commands(self, register: Callable[[str, Any, str], None]) -> None:
        register("hello", hello_app, "Say hello (a test plugin).")
        register("shout", shout, "Print TEXT in capitals.")


class Twin:
    @hookimpl
    def faap_register_commands(self, register: Callable[[str, Any, str], None]) -> None:
        register("hello", shout, "A second 'hello'.")


class Clash:
    @hookimpl
    def faap_register_commands(self, register: Callable[[str, Any, str], None]) -> None:
        register("train", shout, "Not the real train.")


hello, twin, clash = Hello(), Twin(), Clash()
