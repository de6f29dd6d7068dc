"""``faap eval`` and ``--rescore`` guarded: one writer per metrics file (a lock taken
before any inference), a ``best.pt`` checked against the sha256 its ``selection.json``
recorded, metrics that record their run id and the hash of their numbers, and one-line errors
for an output folder that cannot take the file, before any inference. Runs ``faap`` in-process
on a one-step run, except the race, which starts two real processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from faapkit.artifacts.integrity import file_sha256, numbers_sha256
from faapkit.artifacts.output_lock import lock_path
from tests.cli.test_output_lock import dead_pid
from tests.conftest import faap_in_process, one_error, one_step_4th_run

EVAL = ["--limit-images", "2", "--bootstrap", "0", "--device", "cpu", "--quiet"]
NAME = "test_gender_epoch_0000_first2.json"  # what `faap eval RUN *EVAL` writes (no best.pt)
BEST_NAME = "test_gender_best_first2.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return one_step_4th_run(tmp_path_factory.mktemp("eval-guards"))


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A fresh copy of the one-step run for each test (the tests write into it)."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("eval"))
    return copy


def with_best(run: Path, *, record_hash: bool = True) -> Path:
    """``run`` with a ``best.pt`` (its epoch-0 checkpoint) and the ``selection.json`` a val rule
    that chose epoch 0 writes (``record_hash``: as today, else as before the hash was recorded)."""
    best = run / "checkpoints" / "best.pt"
    shutil.copy(run / "checkpoints" / "epoch_0000.pt", best)
    selection = {"rule": "guarded_parity", "description": "test", "split": "val", "epoch": 0}
    if record_hash:
        selection["checkpoint_sha256"] = file_sha256(best)
    (run / "selection.json").write_text(json.dumps(selection))
    return best


# --- item 1: one writer per output ------------------------------------------------------------


def test_two_evals_started_together_give_one_success_and_one_clear_refusal(run):
    cmd = [sys.executable, "-m", "faapkit", "eval", str(run), *EVAL]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    _, _, err = next(r for r in results if r[0] == 1)
    out = run / "eval" / NAME
    refusals = ("is being written by another faap process", "already holds an evaluation")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(out) in lines[0], err
    assert any(r in lines[0] for r in refusals), err
    if refusals[0] in lines[0]:  # refused at the lock: it names the holder
        winner = next(p for p, r in zip(procs, results, strict=True) if r[0] == 0)
        assert f"pid {winner.pid}" in lines[0]
    assert json.loads(out.read_text())["run_id"] and not lock_path(out).exists()


def test_a_live_lock_refuses_before_any_inference_naming_output_and_holder(run, capsys, monkeypatch):
    out = run / "eval" / NAME
    out.parent.mkdir()
    holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    lock_path(out).write_text(holder)
    monkeypatch.setattr("faapkit.evaluate.evaluator.evaluate_with_detections", _no_inference)
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL)
    one_error(err, 1, code, f"{out} is being written by another faap process (pid {os.getpid()}")
    assert not out.exists() and lock_path(out).read_text() == holder


def test_a_stale_lock_of_a_killed_eval_is_taken_over_with_a_note(run, capsys):
    out = run / "eval" / NAME
    out.parent.mkdir()
    pid = dead_pid()
    lock_path(out).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL)
    assert code == 0, err
    assert f"took over the stale lock {lock_path(out)} of pid {pid}" in " ".join(err.split())
    assert out.is_file() and not lock_path(out).exists()


def test_a_rescore_takes_the_lock_of_its_output_too(run, capsys, monkeypatch):
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL)
    assert code == 0, err
    source = run / "eval" / NAME
    target = source.with_name(source.stem + "_rescored_seed3.json")
    lock_path(target).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(source), "--seed", "3")
    one_error(err, 1, code, f"{target} is being written by another faap process (pid {os.getpid()}")
    lock_path(target).unlink()
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(source), "--seed", "3")
    assert code == 0, err
    rescored = json.loads(target.read_text())
    # item 3: a rescore records the run it evaluated and the hash of its own numbers
    assert rescored["run_id"] == json.loads((run / "run.json").read_text())["run_id"]
    assert rescored["numbers_sha256"] == numbers_sha256(rescored)


def _no_inference(*_: object, **__: object) -> None:
    raise AssertionError("inference ran although the command had to refuse before it")


# --- item 2: best.pt against selection.json ---------------------------------------------------


def _replace_best(best: Path) -> None:
    """best.pt replaced by another file (here: the same weights saved again with a changed step)."""
    from faapkit.io import load_checkpoint, save_checkpoint

    save_checkpoint(best, {**load_checkpoint(best), "global_step": 7})


def _edit_recorded_hash(value: object) -> Callable[[Path], None]:
    """selection.json's checkpoint_sha256 edited by hand: it was read as 'a run from before the
    hash was recorded' and best.pt evaluated unverified, with a note that said so."""

    def edit(best: Path) -> None:
        path = best.parents[1] / "selection.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "checkpoint_sha256": value}))

    return edit


REFUSED_BEST = {
    "replaced": (_replace_best, "best.pt has sha256"),
    "missing": (lambda best: best.unlink(), "best.pt is missing though"),
    "hash edited to a number": (_edit_recorded_hash(12), "records checkpoint_sha256 12 for epoch 0, not a sha256"),
    "hash edited to null": (_edit_recorded_hash(None), "records checkpoint_sha256 null for epoch 0, not a sha256"),
    "hash edited to a short text": (_edit_recorded_hash("abc"), 'records checkpoint_sha256 "abc" for epoch 0'),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BEST))
def test_a_best_pt_that_is_not_the_chosen_one_is_refused_before_any_inference(run, capsys, monkeypatch, case):
    best = with_best(run)
    change, says = REFUSED_BEST[case]
    change(best)
    monkeypatch.setattr("faapkit.evaluate.evaluator.evaluate_with_detections", _no_inference)
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL)
    one_error(err, 1, code, says)
    assert str(run / "selection.json") in err and "no validated epoch met" not in err
    if case == "missing":
        assert "chose epoch 0; evaluate that epoch's checkpoint with --epoch 0" in err
    else:
        assert "--accept-changed-best" in err and str(best) in err
    assert not (run / "eval").exists()


BEST_CASES = {
    # case: (record the hash, replace best.pt, extra options, choice label, check, stderr says)
    "verified": (True, False, [], "best.pt (chosen on val)", "sha256 matches selection.json", None),
    "older selection without the hash": (
        False,
        False,
        [],
        "best.pt (chosen on val)",
        "unverified (selection.json records no sha256)",
        "records no checkpoint_sha256",
    ),
    "replaced, --accept-changed-best": (
        True,
        True,
        ["--accept-changed-best"],
        "best.pt (not the checkpoint selection.json chose on val: --accept-changed-best)",
        "differs from selection.json",
        "labelled as not the checkpoint chosen on val",
    ),
}


@pytest.mark.parametrize("case", sorted(BEST_CASES))
def test_best_pt_is_evaluated_and_labelled_as_what_it_is(run, capsys, case):
    record, replace, extra, choice, check, says = BEST_CASES[case]
    best = with_best(run, record_hash=record)
    if replace:
        _replace_best(best)
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL, *extra)
    assert code == 0, err
    metrics = json.loads((run / "eval" / BEST_NAME).read_text())
    assert metrics["checkpoint_choice"] == choice and metrics["checkpoint_check"] == check
    if says:
        assert says in " ".join(err.split())
    if replace:  # the checkpoint's own record of a selection is not presented as the run's
        assert "selection" not in metrics


def test_eval_metrics_record_the_run_and_the_hash_of_their_numbers(run, capsys):
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL)
    assert code == 0, err
    metrics = json.loads((run / "eval" / NAME).read_text())
    assert metrics["run_id"] == json.loads((run / "run.json").read_text())["run_id"]
    assert metrics["numbers_sha256"] == numbers_sha256(metrics)


# --- item 4: an output folder that cannot take the file ----------------------------------------


def _eval_is_a_file(run: Path) -> Path:
    (run / "eval").write_text("not a folder")
    return run / "eval"


def _eval_is_read_only(run: Path) -> Path:
    """``RUN/eval`` on a file system that takes no new file even from root (sysfs)."""
    (run / "eval").symlink_to("/sys/kernel")
    return run / "eval"


FOLDER_CASES = {
    "RUN/eval is a file": (_eval_is_a_file, [], "is a file, not a folder"),
    "RUN/eval is read-only": (_eval_is_read_only, [], "cannot write in"),
    "--out under a file": (lambda run: run / "notes.txt", ["--out", "OUT/m.json"], "is a file, not a folder"),
}


@pytest.mark.parametrize("case", sorted(FOLDER_CASES))
def test_an_output_folder_that_cannot_take_the_file_is_one_line_before_any_inference(run, capsys, monkeypatch, case):
    make, extra, says = FOLDER_CASES[case]
    if case == "--out under a file":
        (run / "notes.txt").write_text("mine")
    where = make(run)
    if case == "RUN/eval is read-only":
        probe = Path("/sys/kernel/.faap-probe")
        try:
            probe.write_text("")
            probe.unlink()
            pytest.skip("/sys takes new files here")
        except OSError:
            pass
    monkeypatch.setattr("faapkit.evaluate.evaluator.evaluate_with_detections", _no_inference)
    args = [a.replace("OUT", str(where)) for a in extra]
    code, _, err = faap_in_process(capsys, "eval", str(run), *EVAL, *args)
    one_error(err, 1, code, says)
    assert str(where) in err


def test_a_failed_write_leaves_no_detections_without_their_metrics(tmp_path, monkeypatch):
    from faapkit.errors import FaapError
    from faapkit.evaluate.command import outputs
    from faapkit.evaluate.command.host import Silent

    def full_disk(path: Path, metrics: object) -> None:
        raise FaapError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr("faapkit.artifacts.records.write_metrics_file", full_disk)
    path = tmp_path / "m.json"
    dets = [tmp_path / "m.baseline.dets.json.gz"]
    result = {"metrics": {"baseline": {"a": {"AP": 0.5}}}}
    with pytest.raises(FaapError, match="No space left"):
        outputs.write(path, result, ["baseline"], dets, {"baseline": []}, force=False, say=Silent())
    assert list(tmp_path.iterdir()) == []


def _edit_checkpoint(path: Path, **changes: object) -> None:
    import torch

    ckpt = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is _DROP:
            ckpt.pop(key)
        else:
            ckpt[key] = value
    torch.save(ckpt, path)


_DROP = object()
BAD_CHECKPOINTS = {
    "epsilon NaN": ({"epsilon": float("nan")}, "'epsilon'"),
    "epsilon above 1": ({"epsilon": 5.0}, "'epsilon'"),
    "epsilon negative": ({"epsilon": -0.05}, "'epsilon'"),
    "another format": ({"format": "faapkit.checkpoint/9"}, "format"),
    "no format": ({"format": _DROP}, "format"),
    "no optimizer": ({"optimizer": _DROP}, "optimizer"),
    "global_step a word": ({"global_step": "four"}, "global_step"),
    "negative epoch": ({"epoch": -3}, "epoch"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_a_run_checkpoint_that_is_not_whole_is_refused_before_any_inference(run, capsys, monkeypatch, case):
    """A checkpoint in a run folder is a training checkpoint: every key and its type is checked
    (an epsilon out of (0, 1] or NaN would give numbers of no perturbation that was trained)."""
    changes, says = BAD_CHECKPOINTS[case]
    ckpt = run / "checkpoints" / "epoch_0000.pt"
    _edit_checkpoint(ckpt, **changes)
    monkeypatch.setattr("faapkit.evaluate.evaluator.evaluate_with_detections", _no_inference)
    code, _, err = faap_in_process(capsys, "eval", str(run), "--epoch", "0", *EVAL)
    one_error(err, 1, code, says)
    assert str(ckpt) in err
    assert not (run / "eval").exists()


def test_a_loose_checkpoint_with_a_nan_epsilon_is_refused_by_name(run, tmp_path):
    import torch

    from faapkit.errors import CheckpointError
    from faapkit.evaluate.evaluator import load_generator

    loose = tmp_path / "gen.pt"
    ckpt = torch.load(run / "checkpoints" / "epoch_0000.pt", weights_only=True)
    torch.save({"generator": ckpt["generator"], "epsilon": float("nan")}, loose)  # no training keys
    with pytest.raises(CheckpointError, match=r"gen.pt: its 'epsilon' is nan, not a bound in \(0, 1\]"):
        load_generator(loose, None, torch.device("cpu"))
