"""What ``faap eval`` shows of a result, as data: the rows of its table (one per metric and
group | overall | gap | ratio | share closed, a cell per setting and the change), the same as
tab-separated lines for scripts, and the across-seed summary lines of ``faap eval SEEDSET``.
The CLI draws them (``faapkit/cli/eval_table.py``); nothing here imports torch or rich."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SHOWN = ("AP", "AP50", "AR")


def rows(result: dict[str, Any]) -> Iterator[tuple[str, str, str, list[Any]]]:
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
            yield m, *share_row(result["gaps"][m], (boot.get("gaps") or {}).get(m) or {}, len(settings))


def share_row(entry: dict[str, Any], cis: dict[str, Any], n_settings: int) -> tuple[str, str, list[Any]]:
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


def tsv_lines(result: dict[str, Any]) -> Iterator[str]:
    """Tab-separated lines: metric, row, then value / CI bounds per setting and for the change."""
    heads = headings(result)
    cols = ["metric", "row"] + [f"{h}{suffix}" for h in heads for suffix in ("", "_ci_low", "_ci_high")]
    if "perturbed" in result["metrics"]:
        cols.append("change_significant")
    yield "\t".join(cols)
    for metric, label, _, cells in rows(result):
        fields = [metric, label]
        for value, ci, _sig in cells:
            fields += [_tsv(value), _tsv(ci[0] if ci else None), _tsv(ci[1] if ci else None)]
        if "perturbed" in result["metrics"]:
            sig = cells[-1][2]
            fields.append("" if sig is None else str(bool(sig)).lower())
        yield "\t".join(fields)


def _tsv(v: Any) -> str:
    return "" if v is None else f"{v:.6g}"


def headings(result: dict[str, Any]) -> list[str]:
    """The columns: one per setting, then ``change`` when the result is paired."""
    return list(result["metrics"]) + (["change"] if "perturbed" in result["metrics"] else [])


def seeds_summary(summary: dict[str, Any]) -> list[str]:
    """The across-seed lines under ``faap eval SEEDSET``'s table."""
    n = len(summary["seeds"])
    level = f"{summary['confidence']:.0%}"
    lines = [counted_seeds(summary)]
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


def counted_seeds(summary: dict[str, Any]) -> str:
    """Which seeds the spread is over: ``n of N`` and each seed left out with why."""
    n, of = len(summary["seeds"]), summary.get("of", len(summary["seeds"]))
    left = summary.get("left_out") or []
    return f"over {n} of {of} seeds" + (f"; left out: {'; '.join(left)}" if left else "")


SEED_COLUMNS = ("seed", "epoch", "gap_before", "gap_after", "change", "share_closed", "advantaged_change")


def seed_tsv_lines(seed_rows: list[dict[str, Any]]) -> Iterator[str]:
    """``faap eval SEEDSET`` off a terminal: a header and one tab-separated line per seed."""
    cols = [*SEED_COLUMNS, "change_ci_low", "change_ci_high", "share_ci_low", "share_ci_high", "overshoot"]
    yield "\t".join(cols)
    for r in seed_rows:
        ci, sci = r.get("change_ci") or [None, None], r.get("share_closed_ci") or [None, None]
        values = [r.get(c) for c in SEED_COLUMNS] + [*ci, *sci, r.get("overshoot")]
        yield "\t".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in values)
