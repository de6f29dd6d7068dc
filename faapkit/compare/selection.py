"""``faap compare --best-per-run``: each run at the epoch chosen on its val rows by the trainer's
rule (``faapkit.train.selection.choose``, the one home of the rules), reported on the other splits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faapkit.config.defaults import DEFAULT_MAX_ADVANTAGED_DROP
from faapkit.errors import FaapError
from faapkit.train.selection import DEFAULT_RULE, SelectRule, choose


def select_on_val(
    rows: list[dict[str, Any]],
    metric: str = "AP_gap",
    max_advantaged_drop: float = DEFAULT_MAX_ADVANTAGED_DROP,
    rule: SelectRule = DEFAULT_RULE,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each run's rows at the epoch chosen on its **val** rows, reported on every other split.

    The rule is the trainer's (``faapkit.train.selection.choose``): among epochs whose advantaged
    group lost at most ``max_advantaged_drop`` val AP and whose |val gap| is below the row's
    |unperturbed val gap| (``{metric}_baseline``), the smallest |val gap| (``parity``) or signed
    val gap (``largest_lift``); without val evaluations, the epoch the run itself chose on val during
    training (``selection.json``). A run with neither, or whose chosen epoch has no evaluation on
    another split, is left out with a note: choosing on the split that is reported would overstate
    the effect."""
    kept: list[dict[str, Any]] = []
    notes: list[str] = []
    # AP at other IoU thresholds is another metric: chosen and reported apart from COCO's
    for run, iou in sorted({(str(r["run"]), _iou_label(r)) for r in rows}):
        mine = [r for r in rows if str(r["run"]) == run and _iou_label(r) == iou]
        run = f"{run} ({iou})" if iou else run
        val = [
            r
            for r in mine
            if r.get("split") == "val"
            and r.get(metric) is not None
            and r.get("epoch") is not None
            and (r.get("AP_advantaged_change") is None or r["AP_advantaged_change"] >= -max_advantaged_drop)
        ]
        if val:
            epoch = choose(((r["epoch"], r[metric], r.get(f"{metric}_baseline")) for r in val), rule)
        else:
            epoch = next((r["selected_epoch"] for r in mine if r.get("selected_epoch") is not None), None)
        if epoch is None:
            validated = any(r.get("split") == "val" and r.get(metric) is not None for r in mine)
            why = (
                "no val epoch narrowed the val gap within the guard" if validated else "no val evaluation to select on"
            )
            notes.append(f"{run}: {why}; left out")
            continue
        reported = [r for r in mine if r.get("epoch") == epoch and r.get("split") not in (None, "val")]
        if not reported:
            notes.append(f"{run}: epoch {epoch} was chosen on val but has no evaluation on another split; left out")
        kept += [{**r, "selected_on": "val"} for r in reported]
    return kept, notes


def _iou_label(row: dict[str, Any]) -> str:
    """``IoU 0.5-0.75`` for other IoU thresholds than COCO's, else empty."""
    thresholds = row.get("iou_thresholds")
    return "IoU " + "-".join(f"{t:g}" for t in thresholds) if thresholds else ""


def best_on_val(
    rows: list[dict[str, Any]], metric: str, rule: SelectRule, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Each run at its epoch chosen on val by ``rule``, reported on the other splits; a note per
    run left out goes to ``say``; none left is an error."""
    rows, notes = select_on_val(rows, metric, rule=rule)
    for note in notes:
        say(note)
    if not rows:
        raise FaapError("--best-per-run: no run has an epoch chosen on val and evaluated on another split")
    return rows
