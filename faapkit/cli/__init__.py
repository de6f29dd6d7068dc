"""The ``faap`` command line. Importing this module must not import torch (tested)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, NoReturn

import typer
import typer.main

from faapkit import __version__
from faapkit.cli import apply, compare, config, data, detector, evaluate, export, inspection, probe, report, train
from faapkit.cli._console import err_console
from faapkit.cli._context import AppState
from faapkit.cli._plugin_commands import add_plugin_commands, blocked_plugins, requested_command
from faapkit.config.defaults import DEFAULT_VERSION
from faapkit.errors import FaapError

app = typer.Typer(
    name="faap",
    help="Fairness-aware adversarial perturbations for frozen DETR detectors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=True,  # --install-completion; completing imports no torch (commands import it lazily)
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"faapkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    disable_plugin: Annotated[
        list[str] | None, typer.Option("--disable-plugin", help="block a plugin by name (repeatable)")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
) -> None:
    blocked = list(disable_plugin or [])
    if not (isinstance(ctx.obj, AppState) and ctx.obj.blocked == blocked):  # main() may have loaded the plugins
        ctx.obj = AppState(blocked=blocked)


app.command("train", help=train.HELP)(train.train)
app.command("eval")(evaluate.evaluate)
app.command("compare")(compare.compare)
app.command("report")(report.report)
app.command("export")(export.export)
app.command("apply")(apply.apply)
app.add_typer(inspection.app, name="inspect", help="Look into plugins, detectors, datasets, checkpoints, runs.")
app.add_typer(config.app, name="config", help="Show resolved configurations.")
app.add_typer(
    data.data_app, name="data", help="Generate the synthetic benchmark; import fairness datasets as released."
)
app.add_typer(detector.detector_app, name="detector", help="Pretrain the shipped tiny detector.")
app.add_typer(probe.probe_app, name="probe", help="Oracle bounds: how much any perturbation could change.")


def _list_registered_versions(command: Any, args: list[str]) -> None:
    """On ``--help`` of a command with ``--version``, name the versions the plugins register
    (built-in and third-party alike); plugins are loaded only then, and never import torch."""
    if "--help" not in args:
        return
    targets = [c for c in _subcommands(command) if any(p.name == "version" for p in c.params)]
    if not targets or not {c.name for c in targets} & set(args):
        return
    from faapkit.plugins.providers import version_names

    try:
        names = version_names(AppState(blocked=blocked_plugins(args)).registries)
    except FaapError:
        return  # the command itself reports a broken plugin set
    for sub in targets:
        for param in sub.params:
            if param.name == "version":
                default = f" (default: {DEFAULT_VERSION})" if DEFAULT_VERSION in names else ""
                param.help = f"method version: {', '.join(names)}{default}"


def _subcommands(command: Any) -> list[Any]:
    """The command and every command under it (Typer's click commands, duck-typed: Typer vendors click)."""
    found = [command]
    for sub in getattr(command, "commands", {}).values():
        found += _subcommands(sub)
    return found


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    debug = os.environ.get("FAAP_DEBUG") == "1"
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = typer.main.get_command(app)
        obj = None
        name = requested_command(args)
        if name is None or name not in getattr(command, "commands", {}):
            # not a built-in command: it may be a plugin's (and `faap --help` lists them)
            obj = AppState(blocked=blocked_plugins(args))
            add_plugin_commands(command, obj.pm)
        _list_registered_versions(command, args)
        command(args=args, prog_name="faap", obj=obj)
    except FaapError as exc:
        _report_error(f"error: {exc.one_line()}", exc.exit_code)
    except KeyboardInterrupt:
        _report_interrupt()
    except SystemExit as exc:
        if _interrupted(exc):  # Typer turns Ctrl-C into a silent exit 130
            _report_interrupt()
        raise
    except Exception as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        _report_error(
            f"error: {type(exc).__name__}: {message} (unexpected; rerun with FAAP_DEBUG=1 for a traceback)", 1
        )


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while handling a Ctrl-C (``KeyboardInterrupt`` in its chain)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _report_interrupt() -> NoReturn:
    """Ctrl-C's line and exit status, written without importing anything (torch may have been
    interrupted halfway through its import)."""
    err_console.print("error: interrupted", markup=False)
    sys.exit(130)


def _report_error(line: str, exit_code: int) -> NoReturn:
    """Print the error line and exit; under ``--nproc`` also leave both where the launcher looks."""
    from faapkit.distributed.launch import leave_rank_error

    err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    leave_rank_error(line, exit_code)
    sys.exit(exit_code)
