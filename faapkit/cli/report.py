"""``faap report RUN``: the page and figures of a run or seed set (``faapkit.report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faapkit.cli._context import lock_output, state


def report(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="run folder or seed set, evaluated with faap eval")],
    out: Annotated[Path | None, typer.Option(help="folder to write into (default RUN/report)")] = None,
    result: Annotated[Path | None, typer.Option(help="eval JSON to show (default: best.pt's, else newest)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing report")] = False,
    panel: Annotated[bool, typer.Option(help="draw the perturbation panel (loads the models)")] = True,
    images: Annotated[int, typer.Option(help="panel images per group")] = 2,
    score: Annotated[float, typer.Option(help="panel: smallest detection score drawn")] = 0.5,
    amplify: Annotated[float, typer.Option(help="panel: delta amplification")] = 10.0,
) -> None:
    """One Markdown page with figures: per-group AP/AR with CIs, gap and share closed, training
    curves and the perturbation panel."""
    from faapkit.cli._console import info, warn
    from faapkit.errors import FaapError
    from faapkit.report import PanelOptions, log_to_trackers, prepare, write_report
    from faapkit.report.inputs import unevaluated_seeds

    options = PanelOptions(images, score, amplify) if panel else None  # refused before any reading
    folder = out or run / "report"
    runs = prepare(run, folder, result, force)
    for line in unevaluated_seeds(run):
        warn(f"{run}: {line}: not in the report, nor in its spread across seeds")
    lock_output(ctx, folder / "report.md")
    registries = state(ctx).registries if panel else None
    info(f"wrote {write_report(run, runs, folder, registries, options, warn=warn)} and its figures")
    try:
        logged = log_to_trackers(runs, folder)
    except FaapError as exc:
        warn(f"report written, not logged to the run's tracker: {exc}")
    else:
        if logged:
            info(f"figures and numbers logged to {', '.join(logged)}")
