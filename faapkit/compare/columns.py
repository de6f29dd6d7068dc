"""What ``faap compare``'s rows become as text, torch- and Rich-free: the columns (key, header,
cell text, priority on a narrow terminal), the TSV and CSV of the rows, the across-seeds cells,
and which table each row goes to. ``faapkit.cli.compare_output`` lays the columns out as tables.

A CI is one cell, ``[lo,hi]`` with no space inside, so neither a terminal nor ``column -t`` breaks
it; in TSV and CSV the CI columns are named with their level (``AP_gap_ci90``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.compare.rows import ci_levels

NOT_GROUPS = frozenset(
    {
        "gap",
        "gap_baseline",
        "gap_change",
        "gap_ci",
        "change_ci",
        "significant",
        "advantaged_change",
        "share_closed",
        "share_ci",
        "overshoot",
    }
)


@dataclass(frozen=True)
class Col:
    """One column: its TSV key, its table header, how a row renders in it, and its priority (0 =
    always shown; higher = left out sooner on a narrow terminal, all columns of one priority at once)."""

    key: str
    header: str
    cell: Callable[[dict[str, Any]], str]
    priority: int = 0
    text: bool = False  # text may wrap (run names); numbers never do


def fmt(v: Any, signed: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:+.4f}" if signed else f"{v:.4f}"
    return str(v)


def fmt_ci(ci: Any) -> str:
    """``[+0.0120,+0.0310]``: no space inside, so neither a terminal nor ``column -t`` breaks it."""
    if not ci or len(ci) != 2 or any(not isinstance(v, int | float) for v in ci):
        return "-"
    return f"[{ci[0]:+.4f},{ci[1]:+.4f}]"


def groups_of(rows: list[dict[str, Any]]) -> list[str]:
    """The group names in the rows' ``AP_<group>`` keys (``AP_gap`` and friends are not groups)."""
    return sorted({k[3:] for r in rows for k in r if k.startswith("AP_") and k[3:] not in NOT_GROUPS})


def pct(level: Any) -> str:
    """``0.9`` -> ``90%``, ``0.975`` -> ``97.5%``."""
    return f"{100 * level:.10g}%" if isinstance(level, int | float) else "-"


def ci_names(rows: list[dict[str, Any]]) -> dict[str, str]:
    """TSV/CSV names of the CI columns: ``AP_gap_ci90`` when every CI is at 90%; the plain
    names, beside a ``ci_level`` column, when the rows' levels differ (no name says one level for
    all)."""
    levels = ci_levels(rows)
    suffix = pct(levels[0]).rstrip("%") if len(levels) == 1 else ""
    return {k: k + suffix for k in CI_KEYS}


CI_KEYS = ("AP_gap_ci", "AP_change_ci", "AR_gap_ci", "AR_change_ci", "AP_share_ci")


def columns(rows: list[dict[str, Any]]) -> list[Col]:
    """Every column the rows can fill, in table order: the CI headers name the level the CIs were
    computed at (a ``CI level`` column when the rows' levels differ)."""
    groups = groups_of(rows)
    levels = ci_levels(rows)
    # the level the CIs were computed at, never an assumed 95%; rows at several levels each say theirs
    level = f"{pct(levels[0])} " if len(levels) == 1 else ""
    names = ci_names(rows)
    return [
        Col("run", "run", lambda r: str(r.get("run")), text=True),
        Col("version", "version", _value("version"), 6),
        Col("epoch", "epoch", _value("epoch")),
        Col("split", "split", _value("split")),
        # one run evaluated at two epsilons is two rows that only this column tells apart
        *([Col("epsilon", "eps", _value("epsilon"), 2)] if len(_evaluated_epsilons(rows)) > 1 else []),
        Col("setting", "setting", lambda r: str(r.get("setting")), 2),
        # a run evaluated after an image codec (faap eval --codec) is another row of the same run
        *([Col("codec", "codec", _value("codec"), 2)] if any(r.get("codec") for r in rows) else []),
        *[Col(f"AP_{g}", f"AP {g}", _value(f"AP_{g}"), 1) for g in groups],
        *[Col(f"AR_{g}", f"AR {g}", _value(f"AR_{g}"), 4) for g in groups],
        Col("AP_gap", "AP gap", _value("AP_gap", True)),
        Col(names["AP_gap_ci"], f"AP gap {level}CI", lambda r: fmt_ci(r.get("AP_gap_ci")), 3),
        Col("AP_gap_change", "AP gap change", _value("AP_gap_change", True)),
        Col(names["AP_change_ci"], f"change {level}CI", lambda r: fmt_ci(r.get("AP_change_ci"))),
        *([Col("ci_level", "CI level", lambda r: pct(r.get("ci_level")))] if len(levels) > 1 else []),
        Col("AP_significant", "sig.", _value("AP_significant")),
        Col("AP_share_closed", "share closed", _share, 1),
        Col(names["AP_share_ci"], f"share {level}CI", lambda r: fmt_ci(r.get("AP_share_ci")), 5),
        Col("AR_gap", "AR gap", _value("AR_gap", True), 3),
        # what faap compare's checks found in a row's metrics file (each file's is also one line
        # on stderr, so a narrow terminal may leave the column out with the settings)
        *([Col("flags", "flags", _flags, 2)] if any(r.get("flags") for r in rows) else []),
        *(feature_columns() if any(r.get("setting") == "features" for r in rows) else []),
    ]


# a tsne_compare file's decoder-feature fields (faapkit.evaluate.features): the displacement ratio of
# the disadvantaged to the advantaged group and how the group centres' distance and cosine moved
def feature_columns() -> list[Col]:
    return [
        Col("disp_ratio", "disp ratio", _value("disp_ratio"), 1),
        Col("center_dist_delta", "centre dist change", _value("center_dist_delta", True), 1),
        Col("cos_sim_delta", "centre cos change", _value("cos_sim_delta", True), 1),
    ]


def _flags(r: dict[str, Any]) -> str:
    flags = r.get("flags")
    return ",".join(map(str, flags)) if isinstance(flags, list) and flags else "-"


def _evaluated_epsilons(rows: list[dict[str, Any]]) -> set[Any]:
    """The epsilons the rows' perturbed evaluations applied (a training-log row's is its schedule's)."""
    return {r["epsilon"] for r in rows if r.get("setting") != "train only" and r.get("epsilon") is not None}


def _share(r: dict[str, Any]) -> str:
    """1 - |gap after| / |gap before|; a reversed gap says so (it never counts as closing)."""
    text = fmt(r.get("AP_share_closed"), True)
    return text + " overshoot" if r.get("AP_overshoot") else text


def _value(key: str, signed: bool = False) -> Callable[[dict[str, Any]], str]:
    return lambda r: fmt(r.get(key), signed)


def tsv(rows: list[dict[str, Any]], with_dataset: bool) -> str:
    """Every column, one line per row; tabs and newlines inside a value become spaces."""
    cols = columns(rows)
    keys = (["dataset"] if with_dataset else []) + [c.key for c in cols]
    lines = ["\t".join(keys)]
    for r in rows:
        cells = ([fmt(r.get("dataset"))] if with_dataset else []) + [c.cell(r) for c in cols]
        lines.append("\t".join(" ".join(c.split()) for c in cells))
    return "\n".join(lines) + "\n"


SEED_SET_COLUMNS = (
    ("run", "run"),
    ("version", "version"),
    ("split", "split"),
    ("checkpoint", "checkpoint"),
    ("seeds", "seeds"),
    ("AP_gap_baseline", "gap before"),
    ("change", "change median [range]"),
    ("change_ci", "change mean CI"),
    ("share_closed", "share closed median [range]"),
    ("share_predict", "next run PI"),
    ("significant_closing", "sig. seeds"),
    ("advantaged_change", "adv. change median"),
)


def seed_cells(s: dict[str, Any]) -> dict[str, str]:
    """One across-seeds row (``faapkit.evaluate.across_seeds``) as the text of each column."""

    def med_range(x: dict[str, Any]) -> str:
        if not x["n"]:
            return "-"
        return f"{x['median']:+.4f} [{x['min']:+.4f},{x['max']:+.4f}]"

    n, of, left = len(s["seeds"]), s.get("of", len(s["seeds"])), s.get("left_out") or []
    counted = f"{n}{'' if n == of else f' of {of}'} ({','.join(map(str, s['seeds']))})"
    return {
        "run": str(s["run"]),
        "version": fmt(s.get("version")),
        "split": fmt(s.get("split")),
        "checkpoint": str(s["checkpoint"]) + (f", {s['through']}" if s.get("through") else ""),
        "seeds": counted + (f"; left out: {'; '.join(left)}" if left else ""),
        "AP_gap_baseline": fmt(s.get("AP_gap_baseline"), True),
        "change": med_range(s["change"]),
        "change_ci": fmt_ci(s["change"]["ci"]),
        "share_closed": med_range(s["share_closed"]) + (f" ({s['overshoot']} overshoot)" if s.get("overshoot") else ""),
        "share_predict": fmt_ci(s["share_closed"].get("predict")),
        "significant_closing": f"{s['significant_closing']}/{n}",
        "advantaged_change": fmt(s["advantaged_change"]["median"], True),
    }


def seed_set_tsv(sets: list[dict[str, Any]]) -> str:
    """The across-seeds rows as TSV: a header line, one line per configuration."""
    lines = ["\t".join(k for k, _ in SEED_SET_COLUMNS)]
    for s in sets:
        cells = seed_cells(s)
        lines.append("\t".join(cells[k] for k, _ in SEED_SET_COLUMNS))
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """The rows as CSV; the CI columns are named with their level as in the TSV (``AP_gap_ci90``)."""
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


TableRows = tuple[str, list[dict[str, Any]], list[dict[str, Any]]]  # title, rows, train-log-only summaries


def tables(rows: list[dict[str, Any]], summaries: list[dict[str, Any]], mix: bool) -> list[TableRows]:
    """Which table each row goes to: one per dataset (numbers of two datasets are not comparable)
    unless ``mix``, then the runs never evaluated at all in a table of their own."""
    measured = sorted({str(r.get("dataset")) for r in rows})
    if mix or len(measured) <= 1:
        return [("runs", rows, summaries)]
    found: list[TableRows] = [
        (
            f"dataset {ds}",
            [r for r in rows if str(r.get("dataset")) == ds],
            [s for s in summaries if s["dataset"] == ds],
        )
        for ds in measured
    ]
    return [*found, ("runs", [], [s for s in summaries if str(s.get("dataset")) not in measured])]


def log_only(summary: dict[str, Any]) -> dict[str, Any]:
    """What ``--json`` says of a run's epochs with a train log and no evaluation."""
    return {k: summary[k] for k in ("run", "version", "dataset", "source", "epochs_logged")}
