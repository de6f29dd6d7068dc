"""``faap probe headroom``: the oracle upper bound of what a perturbation of a given size can do;
``faap probe retrain``: what fine-tuning the detector itself buys, under the same validation and test."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from faapkit.cli._console import out_console, print_json
from faapkit.cli._context import state
from faapkit.cli._options import JsonOpt, SetOpt

probe_app = typer.Typer(no_args_is_help=True)


@probe_app.command("headroom")
def headroom(
    ctx: typer.Context,
    split: Annotated[str, typer.Option(help="split to probe")] = "test",
    split_by: Annotated[str, typer.Option(help="image attribute defining the groups")] = "gender",
    data: Annotated[Path | None, typer.Option(help="dataset root (default: the embedded benchmark)")] = None,
    detector: Annotated[str | None, typer.Option(help="registered detector (default: detector.name's default)")] = None,
    detector_checkpoint: Annotated[Path | None, typer.Option(help="detector weights")] = None,
    epsilon: Annotated[float, typer.Option(help="L-inf bound in normalised units, as a generator's")] = 0.09,
    steps: Annotated[int, typer.Option(help="signed-gradient steps per image")] = 10,
    step_size: Annotated[float, typer.Option(help="size of each step")] = 0.005,
    disadvantaged: Annotated[str, typer.Option(help="disadvantaged group")] = "female",
    advantaged: Annotated[str, typer.Option(help="advantaged group")] = "male",
    limit_images: Annotated[int | None, typer.Option(help="probe only the first N images (round-robin)")] = None,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples (0 = none)")] = 1000,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace --out if it is an earlier headroom report")] = False,
    json_: JsonOpt = False,
) -> None:
    """Oracle bound (per-image PGD with ground truth, never a method): per-group AP lift and gap."""
    from faapkit.cli.evaluate import CliHost
    from faapkit.evaluate.command.probe import ProbeCommand, run_probe

    cmd = ProbeCommand(
        split, split_by, data, detector, detector_checkpoint, epsilon, steps, step_size, disadvantaged, advantaged,
        limit_images, bootstrap, device, out, force,
    )  # fmt: skip
    app = state(ctx)
    result = run_probe(cmd, app.registries.detectors, CliHost(app))  # a detector is looked up after the checks
    if json_:
        print_json(result)
    else:
        out_console.print(headroom_table(result))


def _ci(ci: list[float] | None) -> str:
    return f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""


def headroom_table(result: dict[str, Any]) -> Table:
    o = result["oracle"]
    table = Table(title=f"headroom on {result['split']}: oracle, eps {o['epsilon']}, {o['steps']} steps")
    for col in ("group", "images", "AP clean", "AP oracle", "lift [CI]"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)
    for g, m in result["metrics"]["baseline"].items():
        lift = result["lift"][g]["AP"]
        table.add_row(
            g,
            str(result["groups"][g]["images"]),
            f"{m['AP']:.3f}",
            f"{result['metrics']['oracle'][g]['AP']:.3f}",
            f"{lift:+.3f}{_ci(result.get('lift_ci', {}).get(g, {}).get('AP'))}",
        )
    if "gap_AP" in result:
        gap = result["gap_AP"]
        table.add_row(
            "AP gap",
            "",
            f"{gap['baseline']:+.3f}",
            f"{gap['oracle_on_disadvantaged']:+.3f}",
            f"{gap['change']:+.3f}{_ci(gap.get('change_ci'))}",
        )
    return table


@probe_app.command("retrain")
def retrain(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="folder of the report and each seed's weights")],
    seeds: Annotated[str, typer.Option(help="seeds: 0-4, 0,3,7")] = "0-4",
    budget: Annotated[str, typer.Option(help="equal: level-up's steps x batch; long: 4 x the steps")] = "equal",
    lr: Annotated[float, typer.Option(help="peak learning rate of the detector's weights")] = 1e-5,
    disadvantaged_share: Annotated[
        float, typer.Option(help="the disadvantaged group's share of the draws: 0.5 balanced, 1 that group alone")
    ] = 0.5,
    data: Annotated[Path | None, typer.Option(help="dataset root (default: the embedded benchmark)")] = None,
    detector: Annotated[str | None, typer.Option(help="registered detector (default: detector.name's default)")] = None,
    detector_checkpoint: Annotated[Path | None, typer.Option(help="detector weights (only read)")] = None,
    limit_images: Annotated[int | None, typer.Option(help="the first N images of each split (smoke runs)")] = None,
    set_: SetOpt = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    force: Annotated[
        bool, typer.Option("--force", help="replace an earlier retrain report and weights in --out")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Retrain anchor (weight access, never a method): the detector fine-tuned on the train images
    at level-up's budget, chosen on val by the same rule, reported on test like faap eval."""
    from faapkit.cli.eval_table import show_seeds
    from faapkit.cli.evaluate import CliHost
    from faapkit.train.retrain_command import RetrainCommand, run_retrain

    cmd = RetrainCommand(
        out, seeds, budget, lr, disadvantaged_share, data, detector, detector_checkpoint, limit_images,
        tuple(set_ or ()), device, force,
    )  # fmt: skip
    app = state(ctx)
    result = run_retrain(cmd, app.registries, CliHost(app))
    if json_:
        print_json(result)
    else:
        show_seeds(result["rows"], result["summary"], out_console)
