"""The val selection rule: smallest val gap, advantaged group guarded, earliest on ties (every
epoch here narrows the unperturbed val gap of 0.1)."""

from __future__ import annotations

from faapkit.train.selection import select_epoch


def _row(epoch: int, dis: float, adv: float) -> dict:
    return {"epoch": epoch, "val": {"AP": {"f": dis, "m": adv}, "gap_AP": adv - dis, "advantaged": "m"}}


def test_smallest_gap_wins():
    rows = [_row(0, 0.50, 0.56), _row(1, 0.53, 0.56), _row(2, 0.52, 0.56)]
    assert select_epoch(rows, baseline_advantaged_ap=0.56, max_advantaged_drop=0.005, baseline_gap=0.1)["epoch"] == 1


def test_epoch_that_harms_the_advantaged_group_is_never_chosen():
    rows = [_row(0, 0.52, 0.56), _row(1, 0.55, 0.55)]  # epoch 1: gap 0, but male lost 0.01
    assert select_epoch(rows, baseline_advantaged_ap=0.56, max_advantaged_drop=0.005, baseline_gap=0.1)["epoch"] == 0


def test_ties_go_to_the_earlier_epoch_and_rows_without_val_are_ignored():
    rows = [{"epoch": 0}, _row(1, 0.52, 0.56), {"epoch": 2}, _row(3, 0.52, 0.56)]
    assert select_epoch(rows, baseline_advantaged_ap=0.56, max_advantaged_drop=0.0, baseline_gap=0.1)["epoch"] == 1


def test_no_qualifying_epoch_gives_none():
    rows = [_row(0, 0.55, 0.50)]
    assert select_epoch(rows, baseline_advantaged_ap=0.56, max_advantaged_drop=0.005, baseline_gap=0.1) is None
    assert select_epoch([], baseline_advantaged_ap=0.56, max_advantaged_drop=0.005, baseline_gap=0.1) is None
