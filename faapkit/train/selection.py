"""Choosing a run's checkpoint on the validation split, by a rule stated in advance.

The rule (``guarded_min_gap``): among the validated epochs where the advantaged group's val AP
fell by at most ``max_advantaged_drop`` from the unperturbed val AP, take the smallest val AP gap
(advantaged - disadvantaged); ties go to the earlier epoch. An epoch that makes the detector worse
for the advantaged group cannot be chosen however small its gap: closing a gap by harming the
better-served group is not the goal. The chosen epoch is then reported on test, never on val.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RULE = "guarded_min_gap"


def describe_rule(max_advantaged_drop: float) -> str:
    return (
        f"smallest val AP gap among epochs whose advantaged-group val AP is at most "
        f"{max_advantaged_drop:g} below the unperturbed val AP; earliest on ties"
    )


def select_epoch(
    rows: Sequence[Mapping[str, Any]], baseline_advantaged_ap: float, max_advantaged_drop: float
) -> dict[str, Any] | None:
    """The chosen row among train-log ``rows`` that carry ``val`` results, or None if none qualifies.

    A row's ``val`` is ``{"AP": {group: ap}, "gap_AP": float, "advantaged": str, ...}``."""
    best: dict[str, Any] | None = None
    for row in rows:
        val = row.get("val")
        if not val:
            continue
        adv_ap = val["AP"][val["advantaged"]]
        if adv_ap < baseline_advantaged_ap - max_advantaged_drop:
            continue
        if best is None or val["gap_AP"] < best["val"]["gap_AP"]:
            best = dict(row)
    return best
