"""A run whose selection chose no epoch (no validated epoch narrowed the val gap within the guard)
has no best.pt: ``faap eval RUN`` refuses in one line, before any inference; a checkpoint asked
for explicitly (``--epoch N``, ``checkpoints/last.pt``) is evaluated and labelled as not chosen.
Runs ``faap`` in-process on a one-step run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faapkit.evaluate.command.checkpoint_choice import resolve_target
from faapkit.train.best import selection_record
from tests.conftest import faap_in_process, one_error, one_step_4th_run
from tests.train.test_selection_narrows import BASELINE, _row

EVAL = ["--limit-images", "2", "--bootstrap", "0", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return one_step_4th_run(tmp_path_factory.mktemp("unchosen"))


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """The one-step run as training leaves it when its one validated epoch widened the val gap."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("eval"))
    shutil.copy(copy / "checkpoints" / "epoch_0000.pt", copy / "checkpoints" / "last.pt")
    record = selection_record([_row(0, 0.213)], BASELINE, 0.005, "parity", "val")
    (copy / "selection.json").write_text(json.dumps({**record, "checkpoint_sha256": None}))
    return copy


def _no_inference(*_: object, **__: object) -> None:
    raise AssertionError("inference ran although the command had to refuse before it")


def test_eval_of_a_run_that_chose_nothing_refuses_in_one_line(run, capsys, monkeypatch):
    monkeypatch.setattr("faapkit.evaluate.evaluator.evaluate_with_detections", _no_inference)
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL)
    one_error(err, 1, code, f"{run} has no best.pt: no validated epoch narrowed the val gap within the guard")
    assert "--epoch N" in err and "last.pt" in err
    assert not (run / "eval").exists()


def test_an_epoch_or_last_pt_asked_for_is_labelled_as_not_chosen(run):
    by_epoch = resolve_target(run, 0)
    assert by_epoch.chosen_by == "--epoch 0 (asked for; not chosen: the run's selection chose no epoch)"
    assert by_epoch.chosen_on is None
    last = resolve_target(run / "checkpoints" / "last.pt", None)
    assert last.chosen_by == "given (asked for; not chosen: the run's selection chose no epoch)"


def test_the_label_reaches_the_metrics_file(run, capsys):
    code, _, err = faap_in_process(capsys, "eval", str(run), "--epoch", "0", *EVAL)
    assert code == 0, err
    (written,) = (run / "eval").glob("*.json")
    metrics = json.loads(written.read_text())
    assert metrics["checkpoint_choice"].startswith("--epoch 0 (asked for; not chosen")


def test_an_epoch_the_run_chose_is_labelled_so(run):
    record = selection_record([_row(0, 0.1)], BASELINE, 0.005, "parity", "val")
    (run / "selection.json").write_text(json.dumps(record))
    assert resolve_target(run, 0).chosen_by == "--epoch 0 (the epoch selection.json chose on val)"


def test_a_best_pt_chosen_by_the_former_rule_without_narrowing_is_labelled_so(run, capsys):
    """A selection.json from before eligibility asked for a narrower val gap (no ``eligible_if``)."""
    from faapkit.artifacts.integrity import file_sha256

    best = run / "checkpoints" / "best.pt"
    shutil.copy(run / "checkpoints" / "epoch_0000.pt", best)
    former = {"rule": "guarded_parity", "description": "test", "split": "val", "epoch": 0}
    former |= {"val": _row(0, 0.213)["val"], "val_baseline": BASELINE, "checkpoint_sha256": file_sha256(best)}
    (run / "selection.json").write_text(json.dumps(former))
    target = resolve_target(run, None)
    assert target.chosen_by.startswith("best.pt (chosen on val by the former rule; its epoch's val AP gap +0.2130")
    former["val"] = _row(0, 0.1)["val"]
    (run / "selection.json").write_text(json.dumps(former))
    assert resolve_target(run, None).chosen_by == "best.pt (chosen on val)"


def test_an_epoch_file_holding_another_epoch_is_refused_naming_both(run, capsys, monkeypatch):
    from faapkit.io import load_checkpoint, save_checkpoint

    path = run / "checkpoints" / "epoch_0003.pt"
    ckpt = load_checkpoint(run / "checkpoints" / "epoch_0000.pt")
    save_checkpoint(path, ckpt)  # epoch 0's state under epoch 3's name
    monkeypatch.setattr("faapkit.evaluate.evaluator.evaluate_with_detections", _no_inference)
    code, _, err = faap_in_process(capsys, "eval", str(run), "--epoch", "3", *EVAL)
    one_error(err, 1, code, f"{path} holds epoch 0, not epoch 3 as its name says")
    assert not (run / "eval").exists()
