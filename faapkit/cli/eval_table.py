"""``faap eval``'s stdout: one row per (metric, group | overall | gap | ratio), one column per
setting plus the change, each cell a value and its CI on one line.

On a terminal the table fits 80 columns (CI bounds lose their leading zero when it would not); a
number is never folded over two lines. When stdout is not a terminal it is TSV with every value,
CI bound and significance in its own column, for scripts (``--json`` has everything).
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from faapkit.cli._console import info
from faapkit.evaluate.command.result_rows import headings, rows, seed_tsv_lines, seeds_summary, tsv_lines


def _num(v: float, signed: bool, compact: bool) -> str:
    text = f"{v:+.3f}" if signed else f"{v:.3f}"
    return text.replace("0.", ".", 1) if compact and abs(v) < 1 else text


def _cell(cell: tuple[Any, Any, Any], signed: bool, compact: bool) -> str:
    value, ci, sig = cell
    if value is None:
        return "-"
    text = _num(value, signed, False)
    if ci:
        text += f" [{_num(ci[0], signed, compact)},{_num(ci[1], signed, compact)}]"
    return text + ("*" if sig else "")


def caption(result: dict[str, Any]) -> str:
    ref = result.get("reference") or {}
    boot = result.get("bootstrap")
    parts = [", ".join(f"{g} {v['images']} images" for g, v in result["groups"].items())]
    if ref.get("advantaged"):
        parts.append(
            f"gap = {ref['advantaged']} - {ref['disadvantaged']}, ratio = {ref['disadvantaged']} / {ref['advantaged']}"
        )
        if ref.get("other_groups"):
            parts.append(f"{', '.join(ref['other_groups'])} outside the gap (own rows)")
    else:
        parts.append("gap = max - min, ratio = min / max over groups")
    if boot:
        parts.append(f"{boot['confidence']:.0%} CIs of {boot['resamples']} paired bootstrap resamples")
        if "perturbed" in result["metrics"]:
            parts.append("* the change's CI excludes 0")
    else:
        parts.append("no CIs (--bootstrap 0)")
    return "; ".join(parts)


def title(result: dict[str, Any]) -> str:
    text = f"{result['split']} split by {result['split_by']}"
    if result.get("epsilon") is not None:
        text += f" - epsilon {result['epsilon']:.4f}"
    if result.get("rescored_from"):
        text += " - rescored"
    return text


def tables(result: dict[str, Any], width: int = 80) -> list[Table]:
    """The terminal table; with compact CI bounds if the full ones would not fit ``width``, and
    one table per column if even those would not (numbers are never cut or folded)."""
    heads = headings(result)
    for compact in (False, True):
        t = _table(result, compact, heads)
        if _width(t) <= width:
            return [t]
    return [_table(result, True, [h]) for h in heads]


def _width(t: Table) -> int:
    return Console(width=1000).measure(t).maximum


def _table(result: dict[str, Any], compact: bool, heads: list[str]) -> Table:
    columns = headings(result)
    t = Table(title=title(result), caption=caption(result), box=None, padding=(0, 1, 0, 0), pad_edge=False)
    t.add_column("", no_wrap=True, overflow="ellipsis")
    for h in heads:
        t.add_column(h, justify="right", no_wrap=True)
    current = None
    for metric, label, kind, cells in rows(result):
        if metric != current:
            t.add_row(f"[bold]{metric}[/]", *([""] * len(heads)))
            current = metric
        texts = [_cell(c, kind == "signed" or h == "change", compact) for h, c in zip(columns, cells, strict=True)]
        t.add_row(f" {label}", *(text for h, text in zip(columns, texts, strict=True) if h in heads))
    return t


def show(result: dict[str, Any], console: Console) -> None:
    """The table on a terminal, else TSV (never a number folded by the terminal's width)."""
    if console.is_terminal:
        for t in tables(result, console.width):
            console.print(t)
    else:
        sys.stdout.write("".join(line + "\n" for line in tsv_lines(result)))
        sys.stdout.flush()


def show_seeds(rows: list[dict[str, Any]], summary: dict[str, Any] | None, console: Console) -> None:
    """One line per seed and the across-seed summary; TSV (per seed) off a terminal."""
    if not console.is_terminal:
        sys.stdout.write("".join(line + "\n" for line in seed_tsv_lines(rows)))
        sys.stdout.flush()
        for line in seeds_summary(summary) if summary else []:  # the spread: on stderr, the TSV stays rows
            info(line)
        return
    t = Table(title="AP gap per seed (test)", box=None, padding=(0, 1, 0, 0), pad_edge=False)
    for h in ("seed", "epoch", "gap before", "gap after", "change [CI]", "share closed [CI]", "adv. change"):
        t.add_column(h, justify="right", no_wrap=True)
    for r in rows:
        change = _cell((r["change"], r.get("change_ci"), r.get("significant")), True, True)
        share = _cell((r.get("share_closed"), r.get("share_closed_ci"), None), True, True)
        t.add_row(
            str(r["seed"]),
            "-" if r.get("epoch") is None else str(r["epoch"]),
            f"{r['gap_before']:+.3f}",
            f"{r['gap_after']:+.3f}",
            change,
            share + (" overshoot" if r.get("overshoot") else ""),
            "-" if r.get("advantaged_change") is None else f"{r['advantaged_change']:+.4f}",
        )
    console.print(t)
    for line in seeds_summary(summary) if summary else []:
        console.print(line, markup=False, highlight=False)
