"""Per-epoch schedules as pure functions ``f(epoch, total_epochs, **options) -> float``.

``epoch`` is 0-based. ``legacy=True`` keeps the research code's quirks (P15) so published runs
can be reproduced; the golden table is in docs/research-defaults.md.
"""

from __future__ import annotations

import math


def constant(epoch: int, total: int, *, value: float) -> float:
    return value


def linear(epoch: int, total: int, *, start: float, end: float) -> float:
    """beta(e) = start + (end - start) * min(e / max(1, T - 1), 1); ``start`` when T <= 1."""
    if total <= 1:
        return start
    return start + (end - start) * min(epoch / max(1, total - 1), 1.0)


def three_phase(
    epoch: int,
    total: int,
    *,
    start: float,
    peak: float,
    final: float,
    warmup: int,
    hold: int,
    cooldown: int,
    legacy: bool = True,
) -> float:
    """E1: linear warmup, hold at ``peak``, linear cooldown over ``cooldown`` epochs to ``final``.
    Legacy: the peak is reached at epoch ``warmup - 1``."""
    ramp_end = (warmup - 1 if warmup > 1 else 0) if legacy else warmup
    if epoch <= ramp_end:
        return start + (peak - start) * min(epoch / max(1, ramp_end), 1.0)
    if epoch <= ramp_end + max(0, hold):
        return peak
    if cooldown <= 0:
        return peak
    r = (epoch - (ramp_end + hold)) / max(1, cooldown)
    return final if r >= 1 else peak + (final - peak) * r


def three_phase_to_end(
    epoch: int, total: int, *, start: float, peak: float, final: float, warmup: int, hold: int, legacy: bool = True
) -> float:
    """E4: warmup over ``warmup`` epochs, hold, then cool down over the remaining epochs.
    Legacy: the cooldown divides by ``T - (W + H)`` so ``final`` is never reached."""
    if epoch < warmup:
        return start + (peak - start) * epoch / max(1, warmup)
    if epoch < warmup + hold:
        return peak
    remaining = total - (warmup + hold) - (0 if legacy else 1)
    if remaining <= 0:
        return final
    return peak + (final - peak) * min((epoch - warmup - hold) / remaining, 1.0)


def linear_warmup(epoch: int, total: int, *, epochs: int) -> float:
    """(e + 1) / (W + 1) for e < W, then 1 (4th contrastive weight)."""
    return (epoch + 1) / (epochs + 1) if epoch < epochs else 1.0


def warmup_cosine(epoch: int, total: int, *, warmup: int, min_factor: float) -> float:
    """LR factor of the 4th: linear warmup, then cosine from 1 to ``min_factor``."""
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / max(1, total - warmup)
    return min_factor + 0.5 * (1 - min_factor) * (1 + math.cos(math.pi * progress))
