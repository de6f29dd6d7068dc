"""Choosing a run's checkpoint on the validation split, by a rule stated in advance.

Every rule is guarded and asks for a narrower gap: only validated epochs where the advantaged
group's val AP fell by at most ``max_advantaged_drop`` from the unperturbed val AP (closing a gap
by harming the better-served group is not the goal) *and* whose val gap is strictly smaller in size
than the unperturbed val gap are eligible (:func:`narrows`; a reversal counts by its size, as in
:func:`faapkit.fairness.share_closed`). An epoch that leaves the gap as wide, or wider, is never
"chosen": where no epoch is eligible, nothing is. Among the eligible:

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

from faapkit.fairness import narrows

SelectRule = Literal["parity", "largest_lift"]
DEFAULT_RULE: SelectRule = "parity"
# the name a selection record carries
RECORDED = {"parity": "guarded_parity", "largest_lift": "guarded_largest_lift"}
NONE_ELIGIBLE = "no validated epoch narrowed the val gap within the guard"


def describe_rule(max_advantaged_drop: float, rule: SelectRule = DEFAULT_RULE) -> str:
    what = {
        "parity": "smallest |val AP gap| (nearest parity)",
        "largest_lift": "smallest signed val AP gap (largest lift of the disadvantaged group, "
        "over-correction included)",
    }[rule]
    return f"{what} among {eligibility(max_advantaged_drop)}; earliest on ties"


def eligibility(max_advantaged_drop: float, baseline_gap: float | None = None) -> str:
    """Which epochs may be chosen, in words (with the unperturbed gap when it is known)."""
    size = "" if baseline_gap is None else f" ({abs(baseline_gap):.4f})"
    return (
        f"epochs whose advantaged-group val AP is at most {max_advantaged_drop:g} below the unperturbed "
        f"val AP and whose |val AP gap| is below the |unperturbed val AP gap|{size} (a reversal counts by its size)"
    )


def rank(gap: float, rule: SelectRule) -> float:
    """What the rule minimises for an epoch of val gap ``gap``."""
    return abs(gap) if rule == "parity" else gap


def choose(candidates: Iterable[tuple[int, float, float | None]], rule: SelectRule = DEFAULT_RULE) -> int | None:
    """The chosen epoch among guarded ``(epoch, val gap, unperturbed val gap)`` candidates: of
    those that narrow the gap, the rule's best, earliest on ties; ``None`` when none narrows."""
    ranked = sorted((rank(g, rule), e) for e, g, base in candidates if narrows(g, base))
    return ranked[0][1] if ranked else None


def select_epoch(
    rows: Sequence[Mapping[str, Any]],
    baseline_advantaged_ap: float,
    max_advantaged_drop: float,
    rule: SelectRule = DEFAULT_RULE,
    *,
    baseline_gap: float,
) -> dict[str, Any] | None:
    """The chosen row among train-log ``rows`` that carry ``val`` results, or None if none is
    eligible (guarded and narrowing the unperturbed val gap ``baseline_gap``).

    A row's ``val`` is ``{"AP": {group: ap}, "gap_AP": float, "advantaged": str, ...}``."""
    by_epoch = {int(r["epoch"]): r for r in reversed(guarded(rows, baseline_advantaged_ap, max_advantaged_drop))}
    epoch = choose(((e, float(r["val"]["gap_AP"]), baseline_gap) for e, r in by_epoch.items()), rule)
    return None if epoch is None else dict(by_epoch[epoch])


def guarded(
    rows: Sequence[Mapping[str, Any]], baseline_advantaged_ap: float, max_advantaged_drop: float
) -> list[Mapping[str, Any]]:
    """The validated rows whose advantaged group lost at most ``max_advantaged_drop`` val AP."""
    floor = baseline_advantaged_ap - max_advantaged_drop
    return [r for r in rows if r.get("val") and r["val"]["AP"][r["val"]["advantaged"]] >= floor]
