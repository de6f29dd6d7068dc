"""``faap compare DIR...``: runs side by side (faapkit runs and the research scripts' folders).

Every run folder and loose metrics file under the paths is found (``faapkit.runs.discover``).
Epochs with a train log but no evaluation are one summary row per run unless ``--all-epochs``.
Tables go to stdout only when it is a terminal; in a pipe the rows are TSV (``compare_output``).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from faapkit.cli._console import out_console, print_json, warn
from faapkit.cli._context import state
from faapkit.cli._options import JsonOpt

if TYPE_CHECKING:
    from faapkit.run_records import RunRecord
from faapkit.errors import ConfigError, FaapError

SORT_KEYS = {
    "ap_gap": "AP_gap",
    "ar_gap": "AR_gap",
    "ap_change": "AP_gap_change",
    "ar_change": "AR_gap_change",
    "epoch": "epoch",
    "run": "run",
}
LOG_ONLY = "not evaluated"
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
    from faapkit.runs import summarize

    _check_options((sort, metric, select_rule), format_, all_epochs, evaluated_only, csv_out, plot, force)
    rows = [summarize(r) for r in _records(paths, state(ctx).pm, {"--csv": csv_out, "--plot": plot})]
    from faapkit.cli.compare_output import ci_levels, pct

    if len(ci_levels(rows)) > 1:
        warn(
            f"these rows' CIs were computed at different CI levels ({', '.join(map(pct, ci_levels(rows)))}); "
            "each row's level is in the 'CI level' column"
        )
    logged = [r for r in rows if r["setting"] == "train only"]
    rows = [r for r in rows if r["setting"] != "train only"]
    if best_per_run:
        rows = _best_per_run(rows, SORT_KEYS[metric], select_rule)
    elif all_epochs:
        rows += logged
    summaries = [] if best_per_run or all_epochs else _log_summaries(logged)
    _sort(rows, SORT_KEYS[sort])
    datasets = sorted({str(r.get("dataset")) for r in rows + summaries})
    if csv_out is not None:
        _write_csv(csv_out, rows + summaries)  # what the table shows
    if plot is not None:
        from faapkit.cli.compare_plot import plot_gaps

        plot_gaps(plot, rows)
    from faapkit.cli.compare_output import ci_levels as levels
    from faapkit.evaluate.across_seeds import seed_groups

    seed_sets = seed_groups(rows, (levels(rows) or [0.95])[0])
    if json_:
        print_json(
            {"rows": rows, "datasets": datasets, "log_only": [_plain(s) for s in summaries], "across_seeds": seed_sets}
        )
        return
    if across_seeds:
        if not seed_sets:
            raise FaapError("--across-seeds: no two runs here differ in train.seed alone (and are evaluated alike)")
        from faapkit.cli.compare_output import print_seed_sets

        print_seed_sets(
            seed_sets, out_console, tsv_out=format_ == "tsv" or (format_ == "auto" and not sys.stdout.isatty())
        )
        return
    _print(rows, summaries, mix_datasets, format_)
    if seed_sets and (format_ == "table" or (format_ == "auto" and sys.stdout.isatty())):
        from faapkit.cli.compare_output import print_seed_sets

        print_seed_sets(seed_sets, out_console, tsv_out=False)


def _best_per_run(rows: list[dict[str, Any]], metric: str, rule: str) -> list[dict[str, Any]]:
    """Each run at its epoch chosen on val by ``rule``, reported on the other splits."""
    from faapkit.runs import select_on_val

    rows, notes = select_on_val(rows, metric, rule=rule)  # type: ignore[arg-type]
    for note in notes:
        warn(note)
    if not rows:
        raise FaapError("--best-per-run: no run has an epoch chosen on val and evaluated on another split")
    return rows


def _check_options(
    choices: tuple[str, str, str],
    format_: str,
    all_epochs: bool,
    evaluated_only: bool,
    csv_out: Path | None,
    plot: Path | None,
    force: bool,
) -> None:
    """Refuse contradictory options and unwritable outputs before any run is read (``choices``:
    ``--sort``, ``--metric``, ``--select-rule``)."""
    sort, metric, rule = choices
    # option values: configuration errors (exit 2), like every other command's
    if rule not in ("parity", "largest_lift"):
        raise ConfigError(f"--select-rule must be parity or largest_lift, not {rule!r}")
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

    if csv_out is not None:
        check_output(csv_out, "--csv", force=force, replaceable=_run_artefact)
    if plot is not None:
        from faapkit.cli.compare_plot import plot_formats

        formats = plot_formats()  # also says a missing matplotlib before any work
        check_output(plot, "--plot", force=force, replaceable=_run_artefact, suffixes=formats, what="a figure")


def _records(paths: list[Path], pm: Any, outputs: dict[str, Path | None]) -> list[RunRecord]:
    """Every record under the paths (a rescore beside its evaluation, or of changed detections,
    left out; copies merged), each assigned its dataset and baseline; what is unreadable or left
    out is said on stderr. ``outputs`` (``--csv``/``--plot``) may not name a file being read."""
    from faapkit.run_datasets import assign_datasets
    from faapkit.runs import LeftOut, discover, drop_rescores, fill_baselines, merge_copies

    records, unreadable = discover(paths, pm)
    for u in unreadable:
        warn(u if isinstance(u, LeftOut) else f"not a run or metrics file any plugin reads: {u}")
    for r in records:
        if r.flag_note:  # one line per flagged file; the row's flags column names the flags
            warn(f"{r.path}: flagged {r.flag_note}")
    if not records:
        raise FaapError("no runs found under " + ", ".join(str(p) for p in paths))
    read = {Path(str(r.path)).absolute() for r in records if r.path}
    for option, target in outputs.items():
        if target is not None and target.absolute() in read:
            raise FaapError(f"{option} {target} is a metrics file being compared: never replaced; name another file")
    records, rescores = drop_rescores(records)
    for note in rescores:
        warn(note)
    records, copies = merge_copies(records)
    for note in copies:
        warn(note)
    for note in assign_datasets(records):
        warn(note)
    fill_baselines(records)
    return records


def _print(rows: list[dict[str, Any]], summaries: list[dict[str, Any]], mix: bool, format_: str) -> None:
    """One table per dataset, each followed by its runs' epochs never evaluated; runs never
    evaluated at all in a table of their own; or all of it as TSV."""
    from faapkit.cli.compare_output import fitted_table, print_table, summary_table, tsv

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


def _log_summaries(logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (run, dataset) for its epochs with a train log and no evaluation."""
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in logged:
        by_run.setdefault((str(r.get("run")), str(r.get("dataset"))), []).append(r)
    out = []
    for (run, _), mine in sorted(by_run.items()):
        epochs = sorted(int(r["epoch"]) for r in mine if r.get("epoch") is not None)
        out.append(
            {
                "run": run,
                "version": mine[0].get("version"),
                "epoch": _ranges(epochs) if epochs else None,
                "split": None,
                "setting": LOG_ONLY,
                "dataset": mine[0].get("dataset"),
                "source": mine[0].get("source"),
                "epochs_logged": epochs,
            }
        )
    return out


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("run", "version", "dataset", "source", "epochs_logged")}


def _ranges(epochs: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``0-2,5,7-8``."""
    parts: list[str] = []
    start = prev = epochs[0]
    for e in [*epochs[1:], None]:
        if e is not None and e == prev + 1:
            prev = e
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if e is not None:
            start = prev = e
    return ",".join(parts)


def _sort(rows: list[dict[str, Any]], key: str) -> None:
    rows.sort(
        key=lambda r: (
            r.get(key) is None,
            r.get(key) if r.get(key) is not None else 0,
            str(r.get("run")),
            r.get("epoch") if isinstance(r.get("epoch"), int) else -1,
        )
    )


def _run_artefact(target: Path) -> str | None:
    """Why an existing ``target`` is part of a run or an evaluation, which a --csv or --plot must
    never replace, else ``None``."""
    from faapkit.artifacts.outputs import protected_kind, run_folder_of

    if not target.is_file():
        return None
    kind = protected_kind(target)
    if kind is not None:
        return f"is {kind}"
    folder = run_folder_of(target)
    if folder is not None:
        return f"is a file of the run {folder}"
    if target.suffix == ".json":
        from faapkit.legacy import read_eval_file
        from faapkit.runs import read_metrics_file

        if read_metrics_file(target)[0] is not None or read_eval_file(target) is not None:
            return "is a metrics file"
    return None


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
