"""``faap detector pretrain``: train the shipped tiny detector on the embedded benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faapkit.cli._console import info, print_json
from faapkit.cli._context import lock_output, state
from faapkit.cli._options import JsonOpt

detector_app = typer.Typer(no_args_is_help=True)


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
