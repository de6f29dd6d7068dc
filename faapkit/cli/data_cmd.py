"""``faap data synth`` and ``faap detector pretrain``."""

from __future__ import annotations

import typer

data_app = typer.Typer(no_args_is_help=True)
detector_app = typer.Typer(no_args_is_help=True)
