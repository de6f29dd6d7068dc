"""The ``faap`` command line. Importing this module must not import torch (tested)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from faapkit import __version__
from faapkit.cli import commands, compare, config_cmd, data_cmd, evaluate, inspection, probe
from faapkit.cli._console import err_console
from faapkit.cli._context import AppState
from faapkit.cli._launch import LAUNCH_DIR_ENV
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
    ctx.obj = AppState(blocked=list(disable_plugin or []))


app.command("train")(commands.train)
app.command("eval")(evaluate.evaluate)
app.command("compare")(compare.compare)
app.add_typer(inspection.app, name="inspect", help="Look into plugins, detectors, datasets, checkpoints, runs.")
app.add_typer(config_cmd.app, name="config", help="Show resolved configurations.")
app.add_typer(data_cmd.data_app, name="data", help="Generate the embedded synthetic benchmark.")
app.add_typer(data_cmd.detector_app, name="detector", help="Pretrain the shipped tiny detector.")
app.add_typer(probe.probe_app, name="probe", help="Oracle bounds: how much any perturbation could change.")


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    debug = os.environ.get("FAAP_DEBUG") == "1"
    try:
        app(args=argv, prog_name="faap")
    except FaapError as exc:
        _report_error(f"error: {exc.one_line()}", exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("error: interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        _report_error(
            f"error: {type(exc).__name__}: {message} (unexpected; rerun with FAAP_DEBUG=1 for a traceback)", 1
        )


def _report_error(line: str, exit_code: int) -> NoReturn:
    """Print the error line and exit; under ``--nproc`` also leave both where the launcher looks."""
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    launch_dir = os.environ.get(LAUNCH_DIR_ENV)
    if launch_dir:
        with contextlib.suppress(OSError):
            (Path(launch_dir) / f"error-rank{os.environ.get('RANK', '0')}.txt").write_text(f"{exit_code} {line}\n")
    sys.exit(exit_code)
