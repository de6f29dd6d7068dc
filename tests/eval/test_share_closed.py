"""The share of the gap closed, 1 - |after| / |before|: a reversal counts by its size and is named
overshoot; its paired-bootstrap CI is computed on the same resamples as the change."""

from __future__ import annotations

import numpy as np
import pytest

from faapkit.evaluate.scoring import _gap_entry, _percentile_ci
from faapkit.fairness import overshoot, share_closed


@pytest.mark.parametrize(
    ("before", "after", "share", "over"),
    [
        (0.10, 0.05, 0.5, False),
        (0.10, 0.0, 1.0, False),
        (0.10, -0.10, 0.0, True),  # fully reversed: nothing closed, not 200%
        (0.10, -0.02, 0.8, True),
        (0.10, 0.15, -0.5, False),  # widened
        (-0.08, -0.02, 0.75, False),  # a negative baseline gap closes towards 0 too
    ],
)
def test_share_closed_and_overshoot(before, after, share, over):
    assert share_closed(before, after) == pytest.approx(share)
    assert overshoot(before, after) is over


def test_no_share_without_a_gap_to_close():
    assert share_closed(0.0, 0.01) is None and share_closed(None, 0.01) is None
    assert overshoot(None, 0.1) is None


def test_the_share_ci_is_taken_over_the_paired_resamples():
    rng = np.random.default_rng(0)
    before = 0.10 + rng.normal(0, 0.01, 400)
    after = before * 0.4 + rng.normal(0, 0.005, 400)  # 60% closed, paired with before
    entry = _gap_entry({"baseline": before, "perturbed": after}, _percentile_ci(0.95))
    lo, hi = entry["share_closed"]
    assert 0.5 < lo < 0.6 < hi < 0.7
    expected = np.percentile(1 - np.abs(after) / np.abs(before), [2.5, 97.5])
    assert [lo, hi] == pytest.approx(expected.tolist())
    assert entry["significant"] and entry["change"][1] < 0


def test_an_overshooting_resample_counts_by_its_size():
    before = np.full(10, 0.1)
    after = np.array([-0.1] * 5 + [0.0] * 5)
    entry = _gap_entry({"baseline": before, "perturbed": after}, _percentile_ci(0.9))
    assert entry["share_closed"][0] == pytest.approx(0.0) and entry["share_closed"][1] == pytest.approx(1.0)


def test_a_resample_without_a_baseline_gap_leaves_no_share_ci():
    entry = _gap_entry({"baseline": np.array([0.1, 0.0]), "perturbed": np.array([0.0, 0.0])}, _percentile_ci(0.9))
    assert entry["share_closed"] is None and "change" in entry
