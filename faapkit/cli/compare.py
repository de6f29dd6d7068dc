"""``faap compare DIR...``: runs side by side (faapkit runs and the research scripts' folders)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from faapkit.cli._console import out_console, print_json, warn
from faapkit.cli._context import state
from faapkit.cli._options import JsonOpt
from faapkit.errors import FaapError

SORT_KEYS = {
    "ap_gap": "AP_gap",
    "ar_gap": "AR_gap",
    "ap_change": "AP_gap_change",
    "ar_change": "AR_gap_change",
    "epoch": "epoch",
    "run": "run",
}


def compare(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="run folders, folders of runs, or metrics files")],
    sort: Annotated[str, typer.Option(help=f"sort by one of: {', '.join(SORT_KEYS)}")] = "run",
    best_per_run: Annotated[
        bool,
        typer.Option(help="each run at its epoch chosen on val (smallest --metric, guarded), on other splits"),
    ] = False,
    metric: Annotated[str, typer.Option(help="metric for --best-per-run: ap_gap or ar_gap")] = "ap_gap",
    evaluated_only: Annotated[bool, typer.Option(help="hide epochs that have a train log but no evaluation")] = False,
    mix_datasets: Annotated[bool, typer.Option(help="put runs of different datasets in one table")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="also write the rows as CSV")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="draw gap and per-group AP across epochs (needs matplotlib)")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Put many runs side by side: per-group AP/AR, gaps with CIs, change vs baseline, significance."""
    from faapkit.runs import discover, fill_baselines, summarize

    if sort not in SORT_KEYS or metric not in ("ap_gap", "ar_gap"):
        raise FaapError(f"--sort must be one of {', '.join(SORT_KEYS)} and --metric ap_gap or ar_gap")
    records, unreadable = discover(paths, state(ctx).pm)
    for u in unreadable:
        warn(f"not a run or metrics file any plugin reads: {u}")
    if not records:
        raise FaapError("no runs found under " + ", ".join(str(p) for p in paths))
    fill_baselines(records)
    rows = [summarize(r) for r in records]
    if evaluated_only:
        rows = [r for r in rows if r["setting"] != "train only"]
    if best_per_run:
        from faapkit.runs import select_on_val

        rows, notes = select_on_val(rows, SORT_KEYS[metric])
        for note in notes:
            warn(note)
        if not rows:
            raise FaapError("--best-per-run: no run has an epoch chosen on val and evaluated on another split")
    skey = SORT_KEYS[sort]
    rows.sort(
        key=lambda r: (
            r.get(skey) is None,
            r.get(skey) if r.get(skey) is not None else 0,
            str(r.get("run")),
            r.get("epoch") if r.get("epoch") is not None else -1,
        )
    )
    datasets = sorted({str(r.get("dataset")) for r in rows})
    if csv_out is not None:
        _write_csv(csv_out, rows)
    if plot is not None:
        _plot(plot, rows)
    if json_:
        print_json({"rows": rows, "datasets": datasets})
        return
    if len(datasets) > 1 and not mix_datasets:
        warn(
            f"these runs use {len(datasets)} different datasets ({', '.join(datasets)}); their numbers are not "
            "comparable, so each dataset gets its own table (pass --mix-datasets to merge)"
        )
        for ds in datasets:
            out_console.print(_table([r for r in rows if str(r.get("dataset")) == ds], f"dataset {ds}"))
    else:
        out_console.print(_table(rows, "runs"))


def _fmt(v: Any, signed: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:+.4f}" if signed else f"{v:.4f}"
    return str(v)


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    groups = sorted(
        {
            k[3:]
            for r in rows
            for k in r
            if k.startswith("AP_")
            and k not in ("AP_gap", "AP_gap_baseline", "AP_gap_change", "AP_gap_ci", "AP_change_ci", "AP_significant")
        }
    )
    table = Table(title=f"{title} ({len(rows)} rows)")
    cols = (
        ["run", "version", "epoch", "split", "setting"]
        + [f"AP {g}" for g in groups]
        + [f"AR {g}" for g in groups]
        + ["AP gap", "AR gap", "AP gap change", "signif."]
    )
    for c in cols:
        table.add_column(c, justify="left" if c in ("run", "version", "split", "setting") else "right", overflow="fold")
    for r in rows:
        ci = r.get("AP_gap_ci")
        gap = _fmt(r.get("AP_gap"), True) + (f" [{ci[0]:+.3f},{ci[1]:+.3f}]" if ci else "")
        cci = r.get("AP_change_ci")
        change = _fmt(r.get("AP_gap_change"), True) + (f" [{cci[0]:+.3f},{cci[1]:+.3f}]" if cci else "")
        sig = r.get("AP_significant")
        table.add_row(
            str(r.get("run")),
            _fmt(r.get("version")),
            _fmt(r.get("epoch")),
            _fmt(r.get("split")),
            r["setting"],
            *[_fmt(r.get(f"AP_{g}")) for g in groups],
            *[_fmt(r.get(f"AR_{g}")) for g in groups],
            gap,
            _fmt(r.get("AR_gap"), True),
            change,
            "-" if sig is None else ("yes" if sig else "no"),
        )
    return table


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    from faapkit.io import atomic_write_text

    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (v if not isinstance(v, list) else " ".join(map(str, v))) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def _plot(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FaapError("--plot needs matplotlib: pip install 'faapkit[plot]'") from None
    fig, (ax_gap, ax_ap) = plt.subplots(1, 2, figsize=(11, 4))
    for run in sorted({r["run"] for r in rows}):
        pts = sorted(
            (r for r in rows if r["run"] == run and r.get("epoch") is not None and r.get("AP_gap") is not None),
            key=lambda r: r["epoch"],
        )
        if not pts:
            continue
        epochs = [p["epoch"] for p in pts]
        ax_gap.plot(epochs, [p["AP_gap"] for p in pts], marker="o", label=run)
        for g in sorted(
            {
                k[3:]
                for p in pts
                for k in p
                if k.startswith("AP_")
                and "gap" not in k
                and "ci" not in k
                and "significant" not in k
                and "change" not in k
            }
        ):
            ax_ap.plot(epochs, [p.get(f"AP_{g}") for p in pts], marker=".", label=f"{run} {g}")
    ax_gap.set(title="AP gap by epoch", xlabel="epoch", ylabel="AP gap")
    ax_ap.set(title="AP per group", xlabel="epoch", ylabel="AP")
    ax_gap.legend(fontsize=6)
    ax_ap.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
