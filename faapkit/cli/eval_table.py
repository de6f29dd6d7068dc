"""``faap eval``'s stdout: one row per (metric, group | overall | gap | ratio), one column per
setting plus the change, each cell a value and its CI on one line.

On a terminal the table fits 80 columns (CI bounds lose their leading zero when it would not); a
number is never folded over two lines. When stdout is not a terminal it is TSV with every value,
CI bound and significance in its own column, for scripts (``--json`` has everything).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

SHOWN = ("AP", "AP50", "AR")


def _rows(result: dict[str, Any]) -> Iterator[tuple[str, str, str, list[Any]]]:
    """(metric, row label, row kind, cells); a cell is (value, [lo, hi] | None, significant | None)."""
    boot = result.get("bootstrap") or {}
    settings = list(result["metrics"])
    paired = "perturbed" in result["metrics"]
    for m in (m for m in SHOWN if m in result.get("gaps", {})):
        for g in result["groups"]:
            cells = [(result["metrics"][s][g][m], _get(boot, "groups", s, g, m), None) for s in settings]
            if paired:
                cells.append((result["deltas"][g][m], _get(boot, "deltas", g, m), None))
            yield m, g, "value", cells
        if "overall" in result:
            cells = [(result["overall"][s][m], _get(boot, "overall", s, m), None) for s in settings]
            if paired:
                cells.append((result["overall_deltas"][m], _get(boot, "overall_deltas", m), None))
            yield m, "overall", "value", cells
        for kind in ("gaps", "ratios"):
            if m not in result.get(kind, {}):
                continue
            entry, cis = result[kind][m], (boot.get(kind) or {}).get(m) or {}
            cells = [(entry[s], cis.get(s), None) for s in settings]
            if paired:
                cells.append((entry["change"], cis.get("change"), cis.get("significant")))
            yield m, kind[:-1], "signed" if kind == "gaps" else "value", cells


def _get(node: Any, *keys: str) -> Any:
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


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
    heads = _heads(result)
    for compact in (False, True):
        t = _table(result, compact, heads)
        if _width(t) <= width:
            return [t]
    return [_table(result, True, [h]) for h in heads]


def _width(t: Table) -> int:
    return Console(width=1000).measure(t).maximum


def _heads(result: dict[str, Any]) -> list[str]:
    return list(result["metrics"]) + (["change"] if "perturbed" in result["metrics"] else [])


def _table(result: dict[str, Any], compact: bool, heads: list[str]) -> Table:
    columns = _heads(result)
    t = Table(title=title(result), caption=caption(result), box=None, padding=(0, 1, 0, 0), pad_edge=False)
    t.add_column("", no_wrap=True, overflow="ellipsis")
    for h in heads:
        t.add_column(h, justify="right", no_wrap=True)
    current = None
    for metric, label, kind, cells in _rows(result):
        if metric != current:
            t.add_row(f"[bold]{metric}[/]", *([""] * len(heads)))
            current = metric
        texts = [_cell(c, kind == "signed" or h == "change", compact) for h, c in zip(columns, cells, strict=True)]
        t.add_row(f" {label}", *(text for h, text in zip(columns, texts, strict=True) if h in heads))
    return t


def write_tsv(result: dict[str, Any], stream: TextIO) -> None:
    """Tab-separated: metric, row, then value / CI bounds per setting and for the change."""
    heads = _heads(result)
    cols = ["metric", "row"] + [f"{h}{suffix}" for h in heads for suffix in ("", "_ci_low", "_ci_high")]
    if "perturbed" in result["metrics"]:
        cols.append("change_significant")
    stream.write("\t".join(cols) + "\n")

    def fmt(v: Any) -> str:
        return "" if v is None else f"{v:.6g}"

    for metric, label, _, cells in _rows(result):
        fields = [metric, label]
        for value, ci, _sig in cells:
            fields += [fmt(value), fmt(ci[0] if ci else None), fmt(ci[1] if ci else None)]
        if "perturbed" in result["metrics"]:
            sig = cells[-1][2]
            fields.append("" if sig is None else str(bool(sig)).lower())
        stream.write("\t".join(fields) + "\n")


def show(result: dict[str, Any], console: Console) -> None:
    """The table on a terminal, else TSV (never a number folded by the terminal's width)."""
    if console.is_terminal:
        for t in tables(result, console.width):
            console.print(t)
    else:
        write_tsv(result, sys.stdout)
        sys.stdout.flush()
