"""``faap compare DIR...``: runs side by side (faapkit runs and the research scripts' folders).

Every run folder and loose metrics file under the paths is found (``faapkit.compare.discover``).
Epochs with a train log but no evaluation are one summary row per run unless ``--all-epochs``.
Tables go to stdout only when it is a terminal; in a pipe the rows are TSV (``compare_output``).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from faapkit.cli._console import out_console, print_json, warn
from faapkit.cli._context import lock_output, state
from faapkit.cli._options import JsonOpt
from faapkit.errors import ConfigError, FaapError

SORT_KEYS = {
    "ap_gap": "AP_gap",
    "ar_gap": "AR_gap",
    "ap_change": "AP_gap_change",
    "ar_change": "AR_gap_change",
    "epoch": "epoch",
    "run": "run",
}
FORMATS = ("auto", "table", "tsv")


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

    _check_options((sort, metric, select_rule), format_, all_epochs, evaluated_only, csv_out, plot, force, ctx)
    locks = {option: lock_output(ctx, path) for option, path in (("--csv", csv_out), ("--plot", plot)) if path}
    records = gather(paths, state(ctx).pm, {"--csv": csv_out, "--plot": plot}, warn)
    rows = [summarize(r) for r in records]
    from faapkit.cli.compare_output import pct

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
        _write_csv(csv_out, rows + summaries)  # what the table shows
    if plot is not None:
        from faapkit.cli.compare_plot import plot_gaps

        plot_gaps(plot, rows)
    sets = seed_sets(rows)
    if json_:
        print_json(
            {"rows": rows, "datasets": datasets, "log_only": [_plain(s) for s in summaries], "across_seeds": sets}
        )
        return
    if across_seeds:
        if not sets:
            raise FaapError("--across-seeds: no two runs here differ in train.seed alone (and are evaluated alike)")
        from faapkit.cli.compare_output import print_seed_sets

        print_seed_sets(sets, out_console, tsv_out=format_ == "tsv" or (format_ == "auto" and not sys.stdout.isatty()))
        return
    _print(rows, summaries, mix_datasets, format_)
    if sets and (format_ == "table" or (format_ == "auto" and sys.stdout.isatty())):
        from faapkit.cli.compare_output import print_seed_sets

        print_seed_sets(sets, out_console, tsv_out=False)


def _check_options(
    choices: tuple[str, str, str],
    format_: str,
    all_epochs: bool,
    evaluated_only: bool,
    csv_out: Path | None,
    plot: Path | None,
    force: bool,
    ctx: typer.Context,
) -> None:
    """Refuse contradictory options and unwritable outputs before any run is read (``choices``:
    ``--sort``, ``--metric``, ``--select-rule``)."""
    sort, metric, rule = choices
    from typing import get_args

    from faapkit.train.selection import SelectRule

    # option values: configuration errors (exit 2), like every other command's
    if rule not in get_args(SelectRule):
        raise ConfigError(f"--select-rule must be {' or '.join(get_args(SelectRule))}, not {rule!r}")
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
    if metric not in ("ap_gap", "ar_gap"):
        raise ConfigError(f"--metric must be ap_gap or ar_gap, not {metric!r}")
    if format_ not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {format_!r}")
    if all_epochs and evaluated_only:
        raise ConfigError("--all-epochs and --evaluated-only contradict each other: give one")
    if csv_out is not None and plot is not None and csv_out.absolute().resolve() == plot.absolute().resolve():
        raise FaapError(f"--csv and --plot both name {csv_out}: the plot would replace the CSV; give two files")
    from faapkit.artifacts.outputs import check_output

    def _run_artefact(target: Path) -> str | None:
        from faapkit.compare import run_artefact

        return run_artefact(target, state(ctx).pm)  # the plugins are loaded only if a file is there

    if csv_out is not None:
        check_output(csv_out, "--csv", force=force, replaceable=_run_artefact)
    if plot is not None:
        from faapkit.cli.compare_plot import plot_formats

        formats = plot_formats()  # also says a missing matplotlib before any work
        check_output(plot, "--plot", force=force, replaceable=_run_artefact, suffixes=formats, what="a figure")


def _print(rows: list[dict[str, Any]], summaries: list[dict[str, Any]], mix: bool, format_: str) -> None:
    """One table per dataset, each followed by its runs' epochs never evaluated; runs never
    evaluated at all in a table of their own; or all of it as TSV."""
    from faapkit.cli.compare_output import fitted_table, print_table, summary_table, tsv
    from faapkit.compare import LOG_ONLY

    measured = sorted({str(r.get("dataset")) for r in rows})
    if len(measured) > 1 and not mix:
        warn(
            f"these runs use {len(measured)} different datasets ({', '.join(measured)}); their numbers are not "
            "comparable, so each dataset gets its own table (pass --mix-datasets to merge)"
        )
    if format_ == "tsv" or (format_ == "auto" and not sys.stdout.isatty()):
        sys.stdout.write(tsv(rows + summaries, with_dataset=True))
        return
    one = mix or len(measured) <= 1
    groups = [("runs", rows, summaries)] if one else []
    groups = groups or [
        (
            f"dataset {ds}",
            [r for r in rows if str(r.get("dataset")) == ds],
            [s for s in summaries if s["dataset"] == ds],
        )
        for ds in measured
    ]
    if not one:
        groups.append(("runs", [], [s for s in summaries if str(s.get("dataset")) not in measured]))
    left_out: list[str] = []
    for title, part, logged in groups:
        if part:
            table, dropped, needed = fitted_table(part, title, out_console)
            print_table(out_console, table, needed)
            left_out += [d for d in dropped if d not in left_out]
        if logged:
            out_console.print(summary_table(logged, f"{title}: {LOG_ONLY} (train log only; --all-epochs lists them)"))
    if left_out:
        warn(
            f"left out at {out_console.width} columns: {', '.join(left_out)} "
            "(a wider terminal, a pipe (TSV) or --json shows them)"
        )


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("run", "version", "dataset", "source", "epochs_logged")}


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """The rows as CSV; the CI columns are named with their level as in the TSV (``AP_gap_ci90``)."""
    from faapkit.cli.compare_output import ci_names
    from faapkit.io import atomic_write_text

    names = ci_names(rows)
    rows = [{names.get(k, k): v for k, v in r.items()} for r in rows]
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (v if not isinstance(v, list) else " ".join(map(str, v))) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())
