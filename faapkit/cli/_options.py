"""Reusable ``Annotated`` option types for commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faapkit.config.defaults import DEFAULT_VERSION

VersionOpt = Annotated[
    str | None,
    typer.Option("--version", "-V", help=f"method version (default: {DEFAULT_VERSION}; see `faap inspect plugins`)"),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML or YAML config file")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="override a config value: key.path=value (repeatable)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]
