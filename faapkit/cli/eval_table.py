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

from faapkit.cli._console import info

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
        if paired and "share_closed" in result["gaps"].get(m, {}):
            yield m, *_share_row(result["gaps"][m], (boot.get("gaps") or {}).get(m) or {}, len(settings))


def _share_row(entry: dict[str, Any], cis: dict[str, Any], n_settings: int) -> tuple[str, str, list[Any]]:
    """``share closed`` = 1 - |gap after| / |gap before| in the change column (a reversal counts by
    its size, and says ``overshoot``); significant when its CI excludes 0."""
    ci = cis.get("share_closed")
    sig = None if not ci else bool(ci[0] > 0 or ci[1] < 0)
    label = "share closed" + (" (overshoot)" if entry.get("overshoot") else "")
    return label, "signed", [(None, None, None)] * n_settings + [(entry["share_closed"], ci, sig)]


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


def seeds_summary(summary: dict[str, Any]) -> list[str]:
    """The across-seed lines under ``faap eval SEEDSET``'s table."""
    n = len(summary["seeds"])
    level = f"{summary['confidence']:.0%}"
    lines = []
    for key, what in (("share_closed", "share of the AP gap closed"), ("change", "AP gap change")):
        s = summary[key]
        if not s["n"]:
            continue
        ci = (
            f", mean {s['mean']:+.3f} [{s['ci'][0]:+.3f}, {s['ci'][1]:+.3f}] ({level} t-CI across seeds)"
            if s["ci"]
            else ""
        )
        lines.append(f"{what}: median {s['median']:+.3f}, range {s['min']:+.3f} .. {s['max']:+.3f}{ci}")
        if s.get("predict"):
            lo, hi = s["predict"]
            lines.append(
                f"  one more run (another seed or machine) is expected in [{lo:+.3f}, {hi:+.3f}] "
                f"({level} prediction interval)"
            )
    adv = summary["advantaged_change"]
    if adv["n"]:
        lines.append(
            f"advantaged group's AP change: median {adv['median']:+.4f}, range {adv['min']:+.4f} .. {adv['max']:+.4f}"
        )
    lines.append(
        f"{summary['significant_closing']} of {n} seeds close the gap significantly "
        f"(their own {level} CI of the change)"
        + (f"; {summary['overshoot']} overshoot (the gap reversed)" if summary["overshoot"] else "")
    )
    return lines


SEED_COLUMNS = ("seed", "epoch", "gap_before", "gap_after", "change", "share_closed", "advantaged_change")


def show_seeds(rows: list[dict[str, Any]], summary: dict[str, Any] | None, console: Console) -> None:
    """One line per seed and the across-seed summary; TSV (per seed) off a terminal."""
    if not console.is_terminal:
        cols = [*SEED_COLUMNS, "change_ci_low", "change_ci_high", "share_ci_low", "share_ci_high", "overshoot"]
        sys.stdout.write("\t".join(cols) + "\n")
        for r in rows:
            ci, sci = r.get("change_ci") or [None, None], r.get("share_closed_ci") or [None, None]
            values = [r.get(c) for c in SEED_COLUMNS] + [*ci, *sci, r.get("overshoot")]
            sys.stdout.write(
                "\t".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in values) + "\n"
            )
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
