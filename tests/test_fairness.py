"""The one gap/ratio/share rule used by eval (point estimates and bootstrap resamples), validation
and compare."""

from __future__ import annotations

import pytest

from faapkit.compare.rows import _gap
from faapkit.errors import DataError
from faapkit.fairness import defined_in_every_resample, gap, gap_if_known, ratio, reference_groups, share_closed


def test_named_pair_gap_and_ratio():
    values = {"female": 0.5, "male": 0.6, "other": 0.9}
    ref = reference_groups(list(values), "female", "male")
    assert ref == ("female", "male")
    assert gap(values, ref) == pytest.approx(0.1)
    assert ratio(values, ref) == pytest.approx(0.5 / 0.6)


def test_without_a_pair_max_minus_min():
    values = {"a": 0.2, "b": 0.7, "c": 0.4}
    assert reference_groups(list(values), None, None) is None
    assert gap(values, None) == pytest.approx(0.5)
    assert ratio(values, None) == pytest.approx(0.2 / 0.7)


def test_a_group_without_ground_truth_is_an_error_in_eval_and_none_in_compare():
    values = {"female": None, "male": 0.6}
    with pytest.raises(DataError, match="female"):
        gap(values, ("female", "male"))
    assert gap_if_known(values, ("female", "male")) is None
    assert gap_if_known({"a": 0.1}, None) is None


def test_compare_never_puts_another_pair_in_place_of_the_named_one():
    # the named disadvantaged group has no AP in this record: the old rule silently reported
    # max - min of the other two groups as the female/male gap
    setting = {"female": {}, "male": {"AP": 0.6}, "other": {"AP": 0.9}}
    assert _gap(setting, "AP", "male", "female") is None
    setting["female"]["AP"] = 0.5
    assert _gap(setting, "AP", "male", "female") == pytest.approx(0.1)
    assert _gap(setting, "AP", None, None) == pytest.approx(0.4)


def test_a_ratio_over_a_non_positive_denominator_is_none():
    ref = ("female", "male")
    assert ratio({"female": 0.3, "male": 0.0}, ref) is None
    assert ratio({"female": 0.3, "male": -1.0}, ref) is None  # a resample that drew no ground truth
    assert ratio({"female": 0.0, "male": 0.4}, ref) == 0.0


def test_a_bootstrap_ci_needs_the_rule_in_every_resample():
    shares = [share_closed(before, after) for before, after in ((0.1, 0.05), (0.2, 0.1))]
    assert defined_in_every_resample(shares) == [0.5, 0.5]
    assert defined_in_every_resample(share_closed(b, 0.01) for b in (0.1, 0.0)) is None  # a resample with no gap
    assert defined_in_every_resample([]) == []
