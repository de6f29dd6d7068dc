"""``faap config show``: print the resolved configuration of a version."""

from __future__ import annotations

import sys

import typer

from faapkit.cli._console import print_json
from faapkit.cli._context import state
from faapkit.cli._options import ConfigOpt, JsonOpt, SetOpt, VersionOpt

app = typer.Typer(no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    version: VersionOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print the configuration a run would use: defaults < version < file < --set."""
    from faapkit.config import resolve_config, to_toml

    resolved = resolve_config(state(ctx).registries, version=version, file=config, overrides=set_ or [])
    data = resolved.model_dump(mode="json")
    if json_:
        print_json(data)
    else:
        # written as is, like --json: it is a file to save and read back, not text for Rich to lay out
        sys.stdout.write(to_toml(data))
        sys.stdout.flush()
