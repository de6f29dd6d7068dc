"""Choosing a run's checkpoint on the validation split, by a rule stated in advance.

Every rule is guarded: only validated epochs where the advantaged group's val AP fell by at most
``max_advantaged_drop`` from the unperturbed val AP are candidates (closing a gap by harming the
better-served group is not the goal). Among them:

* ``parity`` (the default, recorded as ``guarded_parity``): the smallest |val AP gap|, the epoch
  nearest val parity. A reversed gap is as far from parity as the same gap unreversed, so an epoch
  that over-corrects val is not preferred to one that closes it;
* ``largest_lift`` (recorded as ``guarded_largest_lift``): the smallest *signed* val gap
  (advantaged - disadvantaged), i.e. the largest lift of the disadvantaged group relative to the
  advantaged one, over-correction included.

Ties go to the earlier epoch. The chosen epoch is then reported on test, never on val. This module
is the one home of the rules: training (``best.pt``) and ``faap compare`` both call :func:`choose`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

SelectRule = Literal["parity", "largest_lift"]
DEFAULT_RULE: SelectRule = "parity"
# the name a selection record carries
RECORDED = {"parity": "guarded_parity", "largest_lift": "guarded_largest_lift"}


def describe_rule(max_advantaged_drop: float, rule: SelectRule = DEFAULT_RULE) -> str:
    what = {
        "parity": "smallest |val AP gap| (nearest parity)",
        "largest_lift": "smallest signed val AP gap (largest lift of the disadvantaged group, "
        "over-correction included)",
    }[rule]
    return (
        f"{what} among epochs whose advantaged-group val AP is at most "
        f"{max_advantaged_drop:g} below the unperturbed val AP; earliest on ties"
    )


def rank(gap: float, rule: SelectRule) -> float:
    """What the rule minimises for an epoch of val gap ``gap``."""
    return abs(gap) if rule == "parity" else gap


def choose(candidates: Iterable[tuple[int, float]], rule: SelectRule = DEFAULT_RULE) -> int | None:
    """The chosen epoch among guarded ``(epoch, val gap)`` candidates; earliest on ties."""
    ranked = sorted((rank(g, rule), e) for e, g in candidates)
    return ranked[0][1] if ranked else None


def select_epoch(
    rows: Sequence[Mapping[str, Any]],
    baseline_advantaged_ap: float,
    max_advantaged_drop: float,
    rule: SelectRule = DEFAULT_RULE,
) -> dict[str, Any] | None:
    """The chosen row among train-log ``rows`` that carry ``val`` results, or None if none qualifies.

    A row's ``val`` is ``{"AP": {group: ap}, "gap_AP": float, "advantaged": str, ...}``."""
    by_epoch: dict[int, Mapping[str, Any]] = {}
    for row in rows:
        val = row.get("val")
        if not val or val["AP"][val["advantaged"]] < baseline_advantaged_ap - max_advantaged_drop:
            continue
        by_epoch.setdefault(int(row["epoch"]), row)
    epoch = choose(((e, float(r["val"]["gap_AP"])) for e, r in by_epoch.items()), rule)
    return None if epoch is None else dict(by_epoch[epoch])
