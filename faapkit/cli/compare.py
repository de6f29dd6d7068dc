"""``faap compare DIR...``: runs side by side (faapkit runs and the research scripts' folders).

Every run folder and loose metrics file under the paths is found (``faapkit.compare.discover``).
Epochs with a train log but no evaluation are one summary row per run unless ``--all-epochs``.
Tables go to stdout only when it is a terminal; in a pipe the rows are TSV. What is decided
(options, columns, CSV, plot) is ``faapkit.compare``; this module keeps the options and printing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from faapkit.cli._console import out_console, print_json, warn
from faapkit.cli._context import lock_output, state
from faapkit.cli._options import JsonOpt
from faapkit.compare.options import FORMATS, SORT_KEYS
from faapkit.errors import FaapError


def compare(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="run folders, folders of runs, or metrics files")],
    sort: Annotated[
        str, typer.Option(help=f"sort by one of: {', '.join(SORT_KEYS)}", autocompletion=lambda: list(SORT_KEYS))
    ] = "run",
    best_per_run: Annotated[
        bool,
        typer.Option(help="each run at its epoch chosen on val (smallest --metric, guarded), on other splits"),
    ] = False,
    metric: Annotated[str, typer.Option(help="metric for --best-per-run: ap_gap or ar_gap")] = "ap_gap",
    select_rule: Annotated[
        str, typer.Option(help="--best-per-run's rule: parity (smallest |val gap|) or largest_lift (smallest signed)")
    ] = "parity",
    across_seeds: Annotated[
        bool, typer.Option(help="only the table of runs that differ in train.seed alone, one row per configuration")
    ] = False,
    all_epochs: Annotated[
        bool, typer.Option(help="list every logged epoch, not one summary row per run for epochs never evaluated")
    ] = False,
    evaluated_only: Annotated[bool, typer.Option(hidden=True, help="the default now; kept for old scripts")] = False,
    format_: Annotated[
        str,
        typer.Option(
            "--format", help="auto (a table on a terminal, TSV in a pipe), table or tsv", autocompletion=lambda: FORMATS
        ),
    ] = "auto",
    mix_datasets: Annotated[bool, typer.Option(help="put runs of different datasets in one table")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="also write the rows as CSV")] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="draw the AP gap per epoch with CI bands and baseline, one panel per split (matplotlib)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --csv or --plot file")] = False,
    json_: JsonOpt = False,
) -> None:
    """Put many runs side by side: per-group AP/AR, gaps with CIs, change vs baseline, significance."""
    from faapkit.compare import arrange, ci_levels, gather, seed_sets, summarize
    from faapkit.compare.columns import log_only, pct, write_csv
    from faapkit.compare.options import check_options

    outputs = (csv_out, plot)
    check_options(
        (sort, metric, select_rule), format_, (all_epochs, evaluated_only), outputs, force, lambda: state(ctx).pm
    )
    locks = {option: lock_output(ctx, path) for option, path in (("--csv", csv_out), ("--plot", plot)) if path}
    records = gather(paths, state(ctx).pm, {"--csv": csv_out, "--plot": plot}, warn, across_seeds)
    rows = [summarize(r) for r in records]
    if len(ci_levels(rows)) > 1:
        warn(
            f"these rows' CIs were computed at different CI levels ({', '.join(map(pct, ci_levels(rows)))}); "
            "each row's level is in the 'CI level' column"
        )
    best = (SORT_KEYS[metric], select_rule) if best_per_run else None
    rows, summaries = arrange(rows, SORT_KEYS[sort], best_per_run=best, all_epochs=all_epochs, say=warn)  # type: ignore[arg-type]
    datasets = sorted({str(r.get("dataset")) for r in rows + summaries})
    for option, lock in locks.items():
        lock.check_unchanged(force, option)
    if csv_out is not None:
        write_csv(csv_out, rows + summaries)  # what the table shows
    if plot is not None:
        from faapkit.compare.plot import plot_gaps

        plot_gaps(plot, rows)
    sets = seed_sets(rows)
    if json_:
        print_json(
            {"rows": rows, "datasets": datasets, "log_only": [log_only(s) for s in summaries], "across_seeds": sets}
        )
        return
    from faapkit.cli.compare_output import print_rows, print_seed_sets

    piped = format_ == "tsv" or (format_ == "auto" and not sys.stdout.isatty())
    if across_seeds:
        if not sets:
            raise FaapError("--across-seeds: no two runs here differ in train.seed alone (and are evaluated alike)")
        print_seed_sets(sets, out_console, tsv_out=piped)
        return
    print_rows(rows, summaries, mix_datasets, piped)
    if sets and not piped:
        print_seed_sets(sets, out_console, tsv_out=False)
