"""``faap data synth``: write the embedded synthetic benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faapkit.cli._console import info
from faapkit.cli._context import lock_output

data_app = typer.Typer(no_args_is_help=True)


@data_app.command("synth")
def synth(
    ctx: typer.Context,
    out: Path,
    seed: Annotated[int, typer.Option(help="generator seed; the same seed gives the same bytes")] = 0,
    bias: Annotated[
        str | None,
        typer.Option(help="v3 (the default: detr-synth-tiny-v3's), v2 (v3 with a smaller val split), v1 (weaker)"),
    ] = None,
    mixed: Annotated[
        bool, typer.Option("--mixed", help="images of both groups, groups on each person's box (FACET-style)")
    ] = False,
    images: Annotated[int | None, typer.Option(help="--mixed: images per split (default: the bias's)")] = None,
) -> None:
    """Write the synthetic biased benchmark (both layouts; --mixed: the attributes layout) to OUT."""
    from faapkit.data.synth import DEFAULT_BIAS, SynthSpec, check_synth_out, write_synthetic
    from faapkit.data.synth_mixed import MixedSpec, write_mixed
    from faapkit.errors import ConfigError

    bias = bias or DEFAULT_BIAS
    if images is not None and (not mixed or images < 1):
        raise ConfigError(f"--images takes at least 1 and goes with --mixed, got {images}")
    check_synth_out(out, seed)  # also makes the folder above OUT: the lock lies beside it
    lock_output(ctx, out)  # two writers of one benchmark folder: one is refused
    existed = (out / "manifest.json").is_file()
    if mixed:  # each refuses a folder holding another benchmark
        write_mixed(out, MixedSpec(seed=seed, bias=bias, images=images))
    else:
        write_synthetic(out, SynthSpec(seed=seed, bias=bias))
    held = f"{out} already holds the {'mixed ' * mixed}synthetic benchmark of seed {seed}, bias {bias}"
    done = held if existed else f"wrote {'mixed-group ' * mixed}synthetic benchmark"
    layouts = [out / "coco"] if mixed else [out / "coco", out / "research"]
    info(f"{done} (layouts: {', '.join(map(str, layouts))})")
