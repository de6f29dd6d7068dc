"""The fairness rules, one home for each: which pair a gap compares, the gap, the ratio, the
share of the gap closed, and when a bootstrap CI of one of them exists.

Torch- and numpy-free, so ``faap eval`` (``evaluate/scoring.py``: its point estimates and every
bootstrap resample), the validation during training and ``faap compare`` (``faapkit/compare/``)
compute every gap, ratio and share with the same code: a change of rule changes an estimate and
its CI together.

* gap (difference): ``advantaged - disadvantaged`` for a reference pair, else ``max - min``;
* ratio: ``disadvantaged / advantaged`` for a reference pair, else ``min / max``; ``None`` when
  the denominator is not positive;
* share closed: ``1 - |gap after| / |gap before|``; ``None`` without a gap before;
* a CI over bootstrap resamples: only when the rule is defined in every resample
  (:func:`defined_in_every_resample`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from faapkit.errors import DataError


def reference_groups(groups: list[str], disadvantaged: str | None, advantaged: str | None) -> tuple[str, str] | None:
    """The (disadvantaged, advantaged) pair of the gap: both named, or the two groups there are;
    None (gap = max - min) for more than two groups without a named pair."""
    named = disadvantaged is not None and advantaged is not None and disadvantaged != advantaged
    if named and disadvantaged in groups and advantaged in groups:
        return disadvantaged, advantaged  # type: ignore[return-value]
    if len(groups) == 2:
        d = disadvantaged if disadvantaged in groups else None
        a = advantaged if advantaged in groups else None
        if d is None or a is None:
            if disadvantaged in groups or advantaged in groups:
                d = d or next(g for g in groups if g != a)
                a = a or next(g for g in groups if g != d)
            else:
                d, a = groups[0], groups[1]
        return d, a
    return None


def default_applies(group: str, groups: list[str], defaults: tuple[str | None, str | None]) -> bool:
    """Whether a built-in default group (``data.disadvantaged``/``advantaged``, where no run or
    option names the pair) takes its role in the gap of a split with ``groups``: when the split
    holds both defaults, whatever other groups it holds too (one box of a third group must not
    turn the pair's difference into ``max - min``; the others are stated beside the gap, see
    :func:`outside_pair`), or holds this one and one other group."""
    if group not in groups:
        return False
    return len(groups) == 2 or all(d in groups for d in defaults)


def outside_pair(groups: Iterable[str], ref: tuple[str, str] | None) -> list[str]:
    """The groups a reference pair's gap leaves out (their AP/AR are reported on their own rows)."""
    return [] if ref is None else [g for g in groups if g not in ref]


def gap(values: Mapping[str, float | None], ref: tuple[str, str] | None) -> float:
    """``advantaged - disadvantaged`` for a reference pair, else ``max - min`` over the groups."""
    known = {g: v for g, v in values.items() if v is not None}
    if len(known) < len(values):
        missing = sorted(set(values) - set(known))
        raise DataError(f"group(s) {', '.join(missing)} have no ground-truth boxes: no AP/AR to compare")
    if ref is not None:
        return known[ref[1]] - known[ref[0]]
    return max(known.values()) - min(known.values())


def gap_if_known(values: Mapping[str, float | None], ref: tuple[str, str] | None) -> float | None:
    """The gap of records read from disk (``faap compare``): ``None`` when a group of the rule has no
    value, never a gap of other groups in its place."""
    if ref is not None:
        pair = (values.get(ref[0]), values.get(ref[1]))
        return None if pair[0] is None or pair[1] is None else pair[1] - pair[0]
    if len(values) < 2 or any(v is None for v in values.values()):
        return None
    return gap(values, None)


def ratio(values: Mapping[str, float | None], ref: tuple[str, str] | None) -> float | None:
    """``disadvantaged / advantaged`` for a reference pair, else ``min / max``; None if the
    denominator is not positive (0; or a bootstrap resample's -1, no ground truth drawn)."""
    known = {g: v for g, v in values.items() if v is not None}
    if len(known) < len(values):
        gap(values, ref)  # the same refusal, naming the groups
    num, den = (known[ref[0]], known[ref[1]]) if ref is not None else (min(known.values()), max(known.values()))
    return None if den <= 0 else num / den


def share_closed(before: float | None, after: float | None) -> float | None:
    """The share of the gap closed, ``1 - |after| / |before|``: 1 at parity, 0 when unchanged,
    negative when the gap widened. A reversal counts by its size, never as closing: a gap of +0.10
    turned into -0.10 closed 0%, not 200%. ``None`` without a gap to close (``before`` 0 or unknown)."""
    if before is None or after is None or before == 0:
        return None
    return 1.0 - abs(after) / abs(before)


def narrows(after: float, before: float | None) -> bool:
    """Whether a gap is strictly smaller in size than ``before`` (a share closed above 0): a gap of
    +0.10 turned into -0.10 has not narrowed; never without a gap to narrow or one known. The
    checkpoint-selection rule asks it of every candidate epoch's val gap."""
    return before is not None and abs(after) < abs(before)


def former_choice_without_narrowing(selection: Mapping[str, Any]) -> str | None:
    """For a ``selection.json`` written before eligibility asked for a narrower val gap (no
    ``eligible_if``): why its chosen epoch is no choice by today's rule (its val gap did not narrow
    the unperturbed one), else ``None``."""
    if "eligible_if" in selection:
        return None
    try:
        gap, base = float(selection["val"]["gap_AP"]), float(selection["val_baseline"]["gap_AP"])
    except (KeyError, TypeError, ValueError):
        return None
    if narrows(gap, base):
        return None
    return f"its epoch's val AP gap {gap:+.4f} does not narrow the unperturbed {base:+.4f}, so it is no choice today"


def defined_in_every_resample(values: Iterable[float | None]) -> list[float] | None:
    """A rule's value in each paired bootstrap resample, or ``None`` when some resample has none (a
    share closed where that resample's gap before is 0, a ratio over an advantaged AP of 0): a
    percentile CI of only the resamples where the rule is defined would be conditioned on the draw,
    so none is given rather than a narrower one."""
    kept: list[float] = []
    for v in values:
        if v is None:
            return None
        kept.append(v)
    return kept


def overshoot(before: float | None, after: float | None) -> bool | None:
    """Whether the gap changed sign (the perturbation favours the other group now); ``None`` if unknown."""
    if before is None or after is None:
        return None
    return before * after < 0
