"""Which of ``faap compare``'s columns a table shows at a terminal width, Rich-free.

A number is never folded across lines nor cut: a number column is as wide as its widest cell (or
header word; a header wraps between words), and when the table is wider than the terminal the
least needed columns are left out, a priority's columns together, until it fits. Only text (the
run name) may wrap, never below ``RUN_MIN``. A column whose value is the same on every row moves
into the title, and an empty one is left out: neither costs width.
"""

from __future__ import annotations

from typing import Any

from faapkit.compare.columns import Col, columns

RUN_MIN = 20  # the run name wraps below its length, never below this


def column_widths(rows: list[dict[str, Any]], cols: list[Col]) -> list[tuple[int, int]]:
    """``(least, widest)`` width of each column: a text column wraps down to ``RUN_MIN``, a
    number column is fixed at the width of its widest cell or header word."""
    spans = []
    for c in cols:
        cells = [len(c.cell(r)) for r in rows]
        if c.text:
            full = max([len(c.header), *cells])
            spans.append((min(full, RUN_MIN), full))
        else:
            natural = max([len(w) for w in c.header.split()] + cells)
            spans.append((natural, natural))
    return spans


def needed_width(spans: list[tuple[int, int]]) -> int:
    """The width a table of these columns needs, two spaces between columns."""
    return 2 * (len(spans) - 1) + sum(least for least, _ in spans)


def fit(rows: list[dict[str, Any]], title: str, width: int) -> tuple[str, list[Col], list[str]]:
    """The table's title (its row count and the values every row shares), the columns that fit
    ``width``, and the headers left out. When even the essential columns are too wide, they are
    all kept: drawn wider than the terminal (which then wraps lines) rather than cut."""
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
    while needed_width(column_widths(rows, cols)) > width and any(c.priority for c in cols):
        worst = max(c.priority for c in cols)  # a priority's columns go together (every group's AP)
        dropped += [c.header for c in cols if c.priority == worst]
        cols = [c for c in cols if c.priority != worst]
    return title, cols, dropped


# the across-seeds table: the columns left out first when it is too wide (higher goes first)
SEED_SET_PRIORITY = {
    "advantaged_change": 6,
    "share_predict": 5,
    "version": 4,
    "checkpoint": 4,
    "split": 3,
    "AP_gap_baseline": 2,
    "share_closed": 1,
}


def token_span(header: str, cells: list[str], text: bool) -> tuple[int, int]:
    """``(least, widest)`` of a column whose cells may wrap between their space-separated tokens
    (``-0.0148 [-0.0464,+0.0760]`` as two lines) but never inside one: ``least`` is the longest
    token or header word (a text column: down to ``RUN_MIN``, it may fold)."""
    full = max([len(header), *map(len, cells)])
    if text:
        return min(full, RUN_MIN), full
    return max(len(t) for x in [header, *cells] for t in x.split() or [""]), full


def fit_seed_sets(
    cells: list[dict[str, str]], columns: list[tuple[str, str]], width: int
) -> tuple[list[str], list[str]]:
    """The across-seeds columns (keys) that fit ``width`` with every number whole, and the headers
    left out (by :data:`SEED_SET_PRIORITY`, a priority's columns together)."""
    keys = [k for k, _ in columns]
    header = dict(columns)

    def needed(kept: list[str]) -> int:
        spans = [token_span(header[k], [c[k] for c in cells], k == "run") for k in kept]
        return needed_width(spans)

    dropped: list[str] = []
    while needed(keys) > width and any(k in SEED_SET_PRIORITY for k in keys):
        worst = max(SEED_SET_PRIORITY.get(k, 0) for k in keys)
        dropped += [header[k] for k in keys if SEED_SET_PRIORITY.get(k, 0) == worst]
        keys = [k for k in keys if SEED_SET_PRIORITY.get(k, 0) != worst]
    return keys, dropped
