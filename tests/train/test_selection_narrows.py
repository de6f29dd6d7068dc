"""An epoch is eligible only if it keeps the guard *and* narrows the val gap: |val gap| strictly
below |unperturbed val gap|, a reversal counted by its size (as ``faapkit.fairness.share_closed``).
Where no epoch is eligible nothing is chosen: no best.pt, said in ``selection.json``; ``faap
compare --best-per-run`` applies the same rule."""

from __future__ import annotations

import pytest

from faapkit.compare import select_on_val
from faapkit.train.best import selection_record
from faapkit.train.selection import choose, select_epoch

BASE_GAP = 0.200  # unperturbed val gap: male 0.60, female 0.40


def _row(epoch: int, gap: float, male: float = 0.6) -> dict:
    val = {"AP": {"male": male, "female": male - gap}, "gap_AP": gap, "advantaged": "male", "disadvantaged": "female"}
    return {"epoch": epoch, "val": val}


BASELINE = _row(-1, BASE_GAP)["val"]


@pytest.mark.parametrize("rule", ["parity", "largest_lift"])
def test_guarded_epochs_that_all_widen_the_val_gap_choose_nothing(rule):
    rows = [_row(0, 0.213), _row(1, 0.250), _row(2, -0.30)]  # the short run: 0.213 against 0.200
    assert select_epoch(rows, 0.6, 0.005, rule, baseline_gap=BASE_GAP) is None


@pytest.mark.parametrize("rule", ["parity", "largest_lift"])
def test_of_a_mix_only_the_narrowing_epoch_can_be_chosen(rule):
    rows = [_row(0, 0.213), _row(1, 0.150), _row(2, -0.25)]  # epoch 2: reversed, larger in size
    assert select_epoch(rows, 0.6, 0.005, rule, baseline_gap=BASE_GAP)["epoch"] == 1


def test_an_unchanged_gap_does_not_narrow_and_a_smaller_reversal_does():
    assert choose([(0, 0.2, BASE_GAP)]) is None  # strictly narrower only
    assert choose([(0, -0.2, BASE_GAP)]) is None  # the same gap reversed: closed 0%
    assert choose([(0, 0.2, BASE_GAP), (1, -0.1, BASE_GAP)]) == 1
    assert choose([(0, 0.0, 0.0)]) is None  # no gap to narrow
    assert choose([(0, 0.1, None)]) is None  # no unperturbed gap known: narrowing unshown


def test_selection_json_records_the_rule_and_why_nothing_was_chosen():
    record = selection_record([_row(0, 0.213), _row(1, 0.25, male=0.5)], BASELINE, 0.005, "parity", "val")
    assert record["epoch"] is None and record["eligible_epochs"] == []
    assert "|unperturbed val AP gap|" in record["eligible_if"] and "0.005" in record["eligible_if"]
    assert record["outcome"].startswith("none: no validated epoch narrowed the val gap within the guard")
    record = selection_record([_row(0, 0.213), _row(1, 0.1)], BASELINE, 0.005, "parity", "val")
    assert record["epoch"] == 1 and record["eligible_epochs"] == [1]
    assert record["outcome"].startswith("epoch 1")


def test_compare_leaves_out_a_run_whose_val_epochs_never_narrow_the_val_gap():
    rows = []
    for run, gaps in (("widens", (0.213, 0.25)), ("mixed", (0.213, 0.15))):
        for epoch, val_gap in enumerate(gaps):
            common = {"run": run, "epoch": epoch, "AP_advantaged_change": 0.0, "AP_gap_baseline": BASE_GAP}
            rows.append({**common, "split": "val", "AP_gap": val_gap})
            rows.append({**common, "split": "test", "AP_gap": 0.1})
    kept, notes = select_on_val(rows, "AP_gap")
    assert [(r["run"], r["epoch"]) for r in kept] == [("mixed", 1)]
    assert notes == ["widens: no val epoch narrowed the val gap within the guard; left out"]


def test_a_run_that_chose_nothing_ends_with_one_line_saying_why():
    from faapkit.train.best import no_best_line

    record = selection_record([_row(0, 0.213)], BASELINE, 0.005, "parity", "val")
    line = no_best_line(record)
    assert line is not None and "\n" not in line
    assert line.startswith("no best.pt: no validated epoch narrowed the val gap within the guard")
    assert "--epoch N" in line
    chosen = selection_record([_row(0, 0.1)], BASELINE, 0.005, "parity", "val")
    assert no_best_line(chosen) is None and no_best_line(None) is None


@pytest.mark.parametrize(("val_gap", "selected"), [(0.0654, 1), (0.0800, None)])
def test_compare_shows_a_former_choice_as_chosen_only_if_it_narrowed_the_val_gap(tmp_path, capsys, val_gap, selected):
    """The fixture's selection.json predates the eligibility record; its unperturbed val gap is 0.0739."""
    import json
    import shutil

    from tests.conftest import faap_in_process, fixture_path

    run = tmp_path / "run"
    shutil.copytree(fixture_path("native_runs", "level-up-tiny"), run)
    selection = json.loads((run / "selection.json").read_text())
    selection["val"]["gap_AP"] = val_gap
    (run / "selection.json").write_text(json.dumps(selection))
    code, out, err = faap_in_process(capsys, "compare", str(run), "--json")
    assert code == 0, err
    assert {r["selected_epoch"] for r in json.loads(out)["rows"]} == {selected}
