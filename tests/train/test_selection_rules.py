"""The checkpoint-selection rules (``faapkit.train.selection``): parity by default, the signed
largest-lift rule by name, ties, reversed gaps and the guard; compare chooses with the same code."""

from __future__ import annotations

import pytest

from faapkit.compare import select_on_val
from faapkit.train.selection import RECORDED, choose, describe_rule, select_epoch


def _row(epoch: int, gap: float, male: float = 0.6) -> dict:
    return {"epoch": epoch, "val": {"AP": {"male": male, "female": male - gap}, "gap_AP": gap, "advantaged": "male"}}


def test_parity_takes_the_epoch_nearest_zero_not_the_most_reversed():
    rows = [_row(3, 0.010), _row(7, -0.0025), _row(11, -0.0216)]
    assert select_epoch(rows, 0.6, 0.005, baseline_gap=0.05)["epoch"] == 7
    # over-correction rewarded, while it narrows the gap
    assert select_epoch(rows, 0.6, 0.005, "largest_lift", baseline_gap=0.05)["epoch"] == 11


def test_a_reversed_gap_is_as_far_from_parity_as_the_same_gap_unreversed():
    assert choose([(1, 0.02, 0.05), (2, -0.02, 0.05)], "parity") == 1  # a tie goes to the earlier epoch
    assert choose([(2, -0.02, 0.05), (1, 0.02, 0.05)], "parity") == 1
    assert choose([(1, 0.03, 0.05), (2, -0.02, 0.05)], "parity") == 2
    assert choose([(1, 0.02, 0.05), (2, -0.02, 0.05)], "largest_lift") == 2


def test_ties_go_to_the_earlier_epoch_under_both_rules():
    for rule in ("parity", "largest_lift"):
        assert choose([(9, 0.01, 0.05), (4, 0.01, 0.05), (6, 0.05, 0.05)], rule) == 4  # type: ignore[arg-type]
    assert choose([], "parity") is None


def test_the_guard_comes_before_either_rule():
    rows = [_row(0, 0.0, male=0.58), _row(1, 0.03, male=0.6)]  # epoch 0 is at parity but costs male 0.02 AP
    assert select_epoch(rows, 0.6, 0.005, baseline_gap=0.05)["epoch"] == 1
    assert select_epoch(rows, 0.6, 0.005, "largest_lift", baseline_gap=0.05)["epoch"] == 1
    assert select_epoch([_row(0, 0.0, male=0.5)], 0.6, 0.005, baseline_gap=0.05) is None


def test_recorded_names_say_the_rule():
    assert RECORDED == {"parity": "guarded_parity", "largest_lift": "guarded_largest_lift"}
    assert "|val AP gap|" in describe_rule(0.005) and "signed" in describe_rule(0.005, "largest_lift")


@pytest.mark.parametrize(("rule", "expected"), [("parity", 2), ("largest_lift", 3)])
def test_compare_chooses_on_val_with_the_same_rule(rule, expected):
    rows = []
    for epoch, val_gap in ((1, 0.05), (2, 0.004), (3, -0.03)):
        common = {"run": "r", "epoch": epoch, "AP_advantaged_change": 0.0}
        rows.append({**common, "split": "val", "AP_gap": val_gap, "AP_gap_baseline": 0.06})
        rows.append({**common, "split": "test", "AP_gap": 0.1, "AP_gap_baseline": 0.12})
    kept, notes = select_on_val(rows, "AP_gap", rule=rule)
    assert not notes and [(r["epoch"], r["split"]) for r in kept] == [(expected, "test")]


def test_compare_rows_carry_the_share_closed_of_a_010_metrics_file_and_refuse_an_unknown_rule(capsys):
    """A metrics file written before shares existed gets its share from its own gaps."""
    import json

    from tests.conftest import faap_in_process, fixture_path, one_error

    run = fixture_path("native_runs", "level-up-tiny")
    code, out, err = faap_in_process(capsys, "compare", str(run), "--json")
    assert code == 0, err
    (row,) = [r for r in json.loads(out)["rows"] if r["split"] == "test"]
    before, after = row["AP_gap_baseline"], row["AP_gap"]
    assert row["AP_share_closed"] == pytest.approx(1 - abs(after) / abs(before))
    assert row["AP_overshoot"] == (before * after < 0)
    code, out, err = faap_in_process(capsys, "compare", str(run), "--best-per-run", "--select-rule", "nearest")
    one_error(err, 2, code, "--select-rule must be parity or largest_lift")
