"""How ``faap compare`` prints its rows: Rich tables that fit the terminal, or TSV in a pipe.

The columns and the TSV are ``faapkit.compare.columns``; which columns fit a width, and how wide
each is, ``faapkit.compare.layout``: a number is never folded across lines nor cut, only the run
name may wrap, and the columns left out are named on stderr.
"""

from __future__ import annotations

import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from faapkit.cli._console import out_console, warn
from faapkit.compare.columns import (
    SEED_SET_COLUMNS,
    Col,
    fmt,
    pct,
    seed_cells,
    seed_set_tsv,
    tables,
    tsv,
)
from faapkit.compare.layout import column_widths, fit, fit_seed_sets, needed_width, token_span


def print_rows(rows: list[dict[str, Any]], summaries: list[dict[str, Any]], mix: bool, piped: bool) -> None:
    """One table per dataset, each followed by its runs' epochs never evaluated; runs never
    evaluated at all in a table of their own; or, ``piped``, all of it as TSV."""
    from faapkit.compare import LOG_ONLY

    measured = sorted({str(r.get("dataset")) for r in rows})
    if len(measured) > 1 and not mix:
        warn(
            f"these runs use {len(measured)} different datasets ({', '.join(measured)}); their numbers are not "
            "comparable, so each dataset gets its own table (pass --mix-datasets to merge)"
        )
    if piped:
        sys.stdout.write(tsv(rows + summaries, with_dataset=True))
        return
    left_out: list[str] = []
    for title, part, logged in tables(rows, summaries, mix):
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


def fitted_table(rows: list[dict[str, Any]], title: str, console: Console) -> tuple[Table, list[str], int]:
    """The table with as many columns as fit ``console.width`` (``faapkit.compare.layout.fit``);
    returns it, the headers left out and the width it needs."""
    title, cols, dropped = fit(rows, title, console.width)
    table, needed = _table(rows, title, cols)
    return table, dropped, needed


def _table(rows: list[dict[str, Any]], title: str, cols: list[Col]) -> tuple[Table, int]:
    """The table, and the width it needs with the run name wrapped as far as it may.

    Number columns get a fixed width, so Rich can never shrink one below its numbers; only the
    run column flexes."""
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False, title_justify="left"
    )
    spans = column_widths(rows, cols)
    for c, (least, widest) in zip(cols, spans, strict=True):
        if c.text:
            table.add_column(c.header, overflow="fold", min_width=least, max_width=widest)
        else:
            # the header wraps between its words; the cells never wrap
            header = Text(c.header, no_wrap=False, overflow="fold", justify="right")
            table.add_column(header, justify="right", no_wrap=True, width=least)
    for r in rows:
        table.add_row(*(c.cell(r) for c in cols))
    return table, needed_width(spans)


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


def print_seed_sets(sets: list[dict[str, Any]], console: Console, *, tsv_out: bool) -> None:
    """Runs that differ only in ``train.seed``, one row per configuration (``faapkit.evaluate.across_seeds``):
    the AP gap change and the share closed as median [min,max] over seeds, the mean's t-CI across
    seeds, and how many seeds' own CI says the gap closed."""
    if tsv_out:
        sys.stdout.write(seed_set_tsv(sets))
        return
    level = pct(sets[0].get("confidence"))
    table = Table(
        title=f"across seeds (AP; change mean CI: {level} Student-t over seeds; "
        "sig. seeds: the seed's own CI says the gap closed)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
        pad_edge=False,
        title_justify="left",
    )
    # the seed list wraps between seeds, never inside one
    cells = [{**c, "seeds": c["seeds"].replace(",", ", ")} for c in map(seed_cells, sets)]
    keys, dropped = fit_seed_sets(cells, list(SEED_SET_COLUMNS), console.width)
    header = dict(SEED_SET_COLUMNS)
    spans = [token_span(header[k], [c[k] for c in cells], k == "run") for k in keys]
    spare = console.width - needed_width(spans)
    for k, (least, widest) in zip(keys, spans, strict=True):
        grown = min(widest, least + max(0, spare))  # each column as wide as the width left allows
        spare -= grown - least
        table.add_column(header[k], overflow="fold", width=grown)
    for c in cells:
        table.add_row(*(c[k] for k in keys))
    width = console.width
    try:  # the title wraps too: a soft-wrapping console would leave it one long line
        console.width = max(width, needed_width(spans))
        console.print(table, soft_wrap=False)
    finally:
        console.width = width
    if dropped:
        warn(
            f"across seeds: left out at {console.width} columns: {', '.join(dropped)} "
            "(a wider terminal, a pipe (TSV) or --json shows them)"
        )
