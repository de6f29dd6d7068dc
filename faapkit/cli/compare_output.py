"""How ``faap compare`` prints its rows: a table that fits the terminal, or TSV in a pipe.

A number is never folded across lines nor cut: number columns do not wrap, and when the table
is wider than the terminal the least needed columns are left out (and named on stderr) until it
fits; only the run name, which is text, may wrap. A CI is one cell, ``[lo,hi]``, on one line.
When stdout is not a terminal the rows are TSV: one line per row, every column, a header line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


RUN_MIN = 20  # the run name wraps below its length, never below this


def fitted_table(rows: list[dict[str, Any]], title: str, console: Console) -> tuple[Table, list[str], int]:
    """The table with as many columns as fit ``console.width``; returns it, the headers left out
    and the width it needs.

    A text column whose value is the same on every row (all ``test``, all ``perturbed``) moves
    into the title, which costs no width."""
    cols = columns(rows)
    same = []
    measured = [r for r in rows if r.get("setting") != "not evaluated"]  # whose "-" says nothing
    for c in [c for c in cols if c.key in ("version", "split", "setting")]:
        # a summary row's "-" split says nothing, its setting says it was never evaluated
        values = {c.cell(r) for r in (rows if c.key == "setting" else measured)}
        if len(values) == 1 and len(rows) > 1:
            cols.remove(c)
            value = values.pop()
            if value != "-":
                same.append(f"{c.header} {value}")
    cols = [c for c in cols if c.text or any(c.cell(r) != "-" for r in rows)]  # an empty column says nothing
    title = f"{title} ({len(rows)} rows{'; ' + ', '.join(same) if same else ''})"
    dropped: list[str] = []
    while True:
        table, needed = _table(rows, title, cols)
        optional = [c for c in cols if c.priority]
        if needed <= console.width or not optional:
            # too wide even with the essential columns only: drawn wider than the terminal
            # (which then wraps lines) rather than squeezed into cut numbers
            return table, dropped, needed
        worst = max(c.priority for c in optional)  # a priority's columns go together (every group's AP)
        dropped += [c.header for c in cols if c.priority == worst]
        cols = [c for c in cols if c.priority != worst]


def _table(rows: list[dict[str, Any]], title: str, cols: list[Col]) -> tuple[Table, int]:
    """The table, and the width it needs with the run name wrapped at ``RUN_MIN``.

    Number columns have a fixed width (their widest cell or header word; a header wraps between
    words), so Rich can never shrink one below its numbers; only the run column flexes."""
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False, title_justify="left"
    )
    cells = [[c.cell(r) for c in cols] for r in rows]
    needed = 2 * (len(cols) - 1)  # two spaces between columns
    for i, c in enumerate(cols):
        if c.text:
            full = max([len(c.header)] + [len(row[i]) for row in cells])
            needed += min(full, RUN_MIN)
            table.add_column(c.header, overflow="fold", min_width=min(full, RUN_MIN), max_width=full)
        else:
            natural = max([len(w) for w in c.header.split()] + [len(row[i]) for row in cells])
            needed += natural
            # the header wraps between its words; the cells never wrap
            header = Text(c.header, no_wrap=False, overflow="fold", justify="right")
            table.add_column(header, justify="right", no_wrap=True, width=natural)
    for row in cells:
        table.add_row(*row)
    return table, needed


def summary_table(summaries: list[dict[str, Any]], title: str) -> Table:
    """Runs' epochs with a train log and no evaluation: the run (wraps), its epochs (never wrap)."""
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False, title_justify="left"
    )
    table.add_column("run", overflow="fold", ratio=1)
    table.add_column("epochs logged", no_wrap=True)
    table.add_column("source", overflow="fold")
    for s in summaries:
        table.add_row(str(s["run"]), fmt(s.get("epoch")), fmt(s.get("source")))
    return table


def print_table(console: Console, table: Table, needed: int) -> None:
    """Print at the console's width, or wider when the essential columns need it (Rich's own
    ``print(width=)`` never exceeds the console's, and would squeeze the numbers)."""
    width = console.width
    try:
        console.width = max(width, needed)
        console.print(table)
    finally:
        console.width = width


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


def _seed_cells(s: dict[str, Any]) -> dict[str, str]:
    def med_range(x: dict[str, Any]) -> str:
        if not x["n"]:
            return "-"
        return f"{x['median']:+.4f} [{x['min']:+.4f},{x['max']:+.4f}]"

    n = len(s["seeds"])
    return {
        "run": str(s["run"]),
        "version": fmt(s.get("version")),
        "split": fmt(s.get("split")),
        "checkpoint": str(s["checkpoint"]),
        "seeds": f"{n} ({','.join(map(str, s['seeds']))})",
        "AP_gap_baseline": fmt(s.get("AP_gap_baseline"), True),
        "change": med_range(s["change"]),
        "change_ci": fmt_ci(s["change"]["ci"]),
        "share_closed": med_range(s["share_closed"]) + (f" ({s['overshoot']} overshoot)" if s.get("overshoot") else ""),
        "share_predict": fmt_ci(s["share_closed"].get("predict")),
        "significant_closing": f"{s['significant_closing']}/{n}",
        "advantaged_change": fmt(s["advantaged_change"]["median"], True),
    }


def print_seed_sets(sets: list[dict[str, Any]], console: Console, *, tsv_out: bool) -> None:
    """Runs that differ only in ``train.seed``, one row per configuration (``faapkit.evaluate.across_seeds``):
    the AP gap change and the share closed as median [min,max] over seeds, the mean's t-CI across
    seeds, and how many seeds' own CI says the gap closed."""
    import sys

    level = pct(sets[0].get("confidence"))
    if tsv_out:
        sys.stdout.write("\t".join(k for k, _ in SEED_SET_COLUMNS) + "\n")
        for s in sets:
            cells = _seed_cells(s)
            sys.stdout.write("\t".join(cells[k] for k, _ in SEED_SET_COLUMNS) + "\n")
        return
    table = Table(
        title=f"across seeds (AP; change mean CI: {level} Student-t over seeds; "
        "sig. seeds: the seed's own CI says the gap closed)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
        pad_edge=False,
        title_justify="left",
    )
    for key, header in SEED_SET_COLUMNS:
        table.add_column(header, overflow="fold" if key == "run" else "ellipsis", no_wrap=key != "run")
    for s in sets:
        cells = _seed_cells(s)
        table.add_row(*(cells[k] for k, _ in SEED_SET_COLUMNS))
    console.print(table)
