"""``faap data synth`` and ``faap detector pretrain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faapkit.cli._console import info, print_json
from faapkit.cli._context import lock_output, state
from faapkit.cli._options import JsonOpt

data_app = typer.Typer(no_args_is_help=True)
detector_app = typer.Typer(no_args_is_help=True)


@data_app.command("synth")
def synth(
    ctx: typer.Context,
    out: Path,
    seed: Annotated[int, typer.Option(help="generator seed; the same seed gives the same bytes")] = 0,
    bias: Annotated[
        str | None,
        typer.Option(help="v3 (the default: detr-synth-tiny-v3's), v2 (v3 with a smaller val split), v1 (history)"),
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


@detector_app.command("pretrain")
def pretrain_cmd(
    ctx: typer.Context,
    preset: Annotated[str, typer.Option(help="training preset")] = "synth-tiny",
    out: Annotated[Path, typer.Option(help="where to write the weights (.pth) and report (.json)")] = Path(
        "detr-synth-tiny.pth"
    ),
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="override the preset's epochs")] = None,
    stop_after: Annotated[
        int | None, typer.Option(help="end after this many epochs, keeping the --epochs schedule")
    ] = None,
    workers: Annotated[int, typer.Option(help="data loader workers")] = 4,
    force: Annotated[
        bool, typer.Option("--force", help="replace --out (and its report) if it holds earlier detector weights")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Train the tiny detector on the embedded benchmark (reproduces the shipped weights)."""
    from faapkit.distributed import check_device_available
    from faapkit.train.pretrain import pretrain
    from faapkit.train.pretrain_checks import check_pretrain_options, check_pretrain_out

    p = check_pretrain_options(preset, epochs, stop_after, workers)
    check_device_available(device, "--device")
    check_pretrain_out(out, force)
    lock_output(ctx, out)  # one pretraining per weights file (its report beside it included)
    spec = state(ctx).registries.detectors.get(p.detector)
    report = pretrain(
        spec,
        out,
        preset=p,
        device=device,
        epochs=epochs,
        stop_after=stop_after,
        num_workers=workers,
        log=info,
        preset_name=preset,
        init_spec=state(ctx).registries.detectors.get(p.init) if p.init else None,
    )
    if json_:
        print_json(report)
    else:
        info(
            f"saved {out}; test AP per group: "
            + ", ".join(f"{g}={m['AP']:.3f}" for g, m in report["test_baseline_trained_device"].items())
        )
