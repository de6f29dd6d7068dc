"""No result lost or mislabelled: every command's output path goes through one guard
(``faapkit.artifacts.outputs.check_output``), bad options are one line naming the option before
any work, and config files are read as written or refused by name. Runs ``faap`` in-process on a
one-step run (``tests.conftest.one_step_4th_run``), so every refusal below costs milliseconds."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from faapkit.artifacts.outputs import check_output
from tests.cli.test_bad_inputs import tree_digest
from tests.conftest import faap_in_process, one_error, one_step_4th_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A real run folder (run.json, train_log.jsonl, metrics.csv, a checkpoint) and saved
    detections beside it, the files no --force may replace."""
    path = one_step_4th_run(tmp_path_factory.mktemp("guards"))
    (path / "eval").mkdir(exist_ok=True)
    (path / "eval" / "x.baseline.dets.json.gz").write_bytes(b"detections")
    return path


def ckpt(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("*.pt"))[0]


# each command that writes a result: its arguments for an output path, and the option naming it
WRITERS = {
    "probe headroom": (lambda run, out: ["probe", "headroom", "--out", out], "--out"),
    "detector pretrain": (lambda run, out: ["detector", "pretrain", "--out", out], "--out"),
    "eval": (lambda run, out: ["eval", str(run), "--device", "cpu", "--out", out], "--out"),
    "compare --csv": (lambda run, out: ["compare", str(run), "--csv", out], "--csv"),
    "compare --plot": (lambda run, out: ["compare", str(run), "--plot", out], "--plot"),
    "inspect perturbation": (lambda run, out: ["inspect", "perturbation", str(ckpt(run)), "--out", out], "--out"),
}
RUN_FILES = ["run.json", "train_log.jsonl", "metrics.csv", "checkpoints/CKPT", "eval/x.baseline.dets.json.gz"]


@pytest.mark.parametrize("target", RUN_FILES)
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_force_never_replaces_a_run_s_files(run, capsys, command, target):
    """``--out RUN/run.json --force`` used to replace the manifest with a probe report."""
    path = run / target.replace("CKPT", ckpt(run).name)
    args, option = WRITERS[command]
    before = tree_digest(run)
    code, _, err = faap_in_process(capsys, *args(run, str(path)), "--force")
    one_error(err, 1, code, f"{option} {path}")
    assert "never" in err or "run folder" in err, err
    assert tree_digest(run) == before


FS_CASES = {
    "folder": (lambda tmp: tmp, "is a folder"),
    "missing folder": (lambda tmp: tmp / "nowhere" / "x.png", "does not exist"),
    "under a file": (lambda tmp: tmp / "file.txt" / "x.png", "is a file, not a folder"),
    "existing, no --force": (lambda tmp: tmp / "old.png", "exists; pass --force to replace it"),
}


@pytest.mark.parametrize("case", sorted(FS_CASES))
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_unwritable_outputs_are_one_line_before_any_work(run, capsys, tmp_path, command, case):
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "old.png").write_text("mine")
    make, says = FS_CASES[case]
    args, option = WRITERS[command]
    code, _, err = faap_in_process(capsys, *args(run, str(make(tmp_path))))
    one_error(err, 1, code, says)
    assert option in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "old.png"]


def test_a_folder_that_takes_no_file_is_said_before_any_work(run, capsys):
    """A read-only folder, tried with a real file: /sys refuses new files even to root, for whom
    permission bits do not count."""
    try:
        check_output(Path("/sys/faap-probe.json"), "--out", force=False)
    except Exception as exc:
        assert "cannot write in /sys" in str(exc)
    else:
        pytest.skip("/sys takes new files here")
    code, _, err = faap_in_process(capsys, "probe", "headroom", "--out", "/sys/faap-probe.json")
    one_error(err, 1, code, "--out /sys/faap-probe.json: cannot write in /sys")


# the size of an output lock's record here (pid, host, time), so a limit can let it through
LOCK_RECORD = len(
    json.dumps({"pid": 4194304, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+0000"}) + "\n"
)


@pytest.mark.parametrize(
    ("limit", "says"),
    [(LOCK_RECORD + 16, "File too large"), (16, "the lock was written in part")],
    ids=["the-export-fails", "the-lock-fails"],
)
def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_old_one(run, tmp_path, limit, says):
    """A write that fails midway (the file-size limit stands in for a full disk: the same
    failing write) is one line naming the file; the file it would replace is untouched, and no
    lock is left behind. With room for the output's lock but not the export, the export fails;
    with none, the lock (taken before any run is read) fails."""
    out = tmp_path / "rows.csv"
    out.write_text("the earlier export\n")

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "faapkit", "compare", str(run), "--csv", str(out), "--force", "--format", "tsv"],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=small_files,
        timeout=300,
    )
    one_error(proc.stderr, 1, proc.returncode, f"cannot write {out}: ")
    assert says in proc.stderr
    assert out.read_text() == "the earlier export\n" and [p.name for p in tmp_path.iterdir()] == ["rows.csv"]


def test_force_replaces_an_earlier_result_of_the_same_kind_only(tmp_path):
    from faapkit.evaluate.command.probe import HEADROOM_SCHEMA
    from faapkit.evaluate.command.probe import not_a_report as _not_a_report
    from faapkit.evaluate.headroom import SCHEMA
    from faapkit.train.pretrain_checks import check_pretrain_out as _check_pretrain_out

    assert HEADROOM_SCHEMA == SCHEMA
    report, other = tmp_path / "h.json", tmp_path / "notes.json"
    report.write_text(json.dumps({"schema": SCHEMA}))
    other.write_text('{"mine": 1}')
    assert check_output(report, "--out", force=True, replaceable=_not_a_report) == report
    with pytest.raises(Exception, match="is no faap probe headroom report: never replaced"):
        check_output(other, "--out", force=True, replaceable=_not_a_report)
    import torch

    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "det.pth")
    (tmp_path / "det.json").write_text(json.dumps({"detector": "d", "preset": {}, "command": "faap ..."}))
    _check_pretrain_out(tmp_path / "det.pth", force=True)  # earlier weights and their report: replaced
    torch.save({"generator": {}}, tmp_path / "gen.pth")
    with pytest.raises(Exception, match="is a generator checkpoint"):
        _check_pretrain_out(tmp_path / "gen.pth", force=True)


OPTIONS = {
    "pretrain --epochs -1": (["detector", "pretrain", "--epochs", "-1"], "--epochs must be at least 1"),
    "pretrain --epochs 0": (["detector", "pretrain", "--epochs", "0"], "--epochs must be at least 1"),
    "pretrain --stop-after 0": (["detector", "pretrain", "--stop-after", "0"], "--stop-after must be at least 1"),
    "pretrain stop past the end": (
        ["detector", "pretrain", "--epochs", "2", "--stop-after", "5"],
        "--stop-after 5 is past the end of the schedule (--epochs 2)",
    ),
    "pretrain stop before a continued schedule": (
        ["detector", "pretrain", "--preset", "synth-tiny-v3", "--stop-after", "100"],
        "continues its schedule from epoch 150",
    ),
    "pretrain --device banana": (["detector", "pretrain", "--device", "banana"], "invalid --device 'banana'"),
    "pretrain --device cuda:99": (["detector", "pretrain", "--device", "cuda:99"], "--device is 'cuda:99' but"),
    "pretrain --workers -1": (["detector", "pretrain", "--workers", "-1"], "--workers must be at least 0"),
    "pretrain --out x.json": (["detector", "pretrain", "--out", "x.json"], "must end in one of .pth, .pt"),
    "probe --device banana": (["probe", "headroom", "--device", "banana"], "invalid --device 'banana'"),
    "probe --device cuda:99": (["probe", "headroom", "--device", "cuda:99"], "--device is 'cuda:99' but"),
    "probe --epsilon 5": (["probe", "headroom", "--epsilon", "5"], "--epsilon must be in (0, 1]"),
    "probe --steps 0": (["probe", "headroom", "--steps", "0"], "--steps must be at least 1"),
    "probe --step-size 1": (["probe", "headroom", "--step-size", "1"], "--step-size must be in (0, --epsilon"),
    "perturbation --images 0": (["inspect", "perturbation", "CKPT", "--images", "0"], "--images must be at least 1"),
    "perturbation --epsilon 5": (["inspect", "perturbation", "CKPT", "--epsilon", "5"], "--epsilon must be in (0, 1]"),
    "perturbation --epsilon 0": (["inspect", "perturbation", "CKPT", "--epsilon", "0"], "--epsilon must be in (0, 1]"),
    "perturbation --amplify 0": (
        ["inspect", "perturbation", "CKPT", "--amplify", "0"],
        "--amplify must be a positive number",
    ),
    "perturbation --out x.xyz": (["inspect", "perturbation", "CKPT", "--out", "OUT/x.xyz"], "must end in one of .png"),
    "compare --plot x.xyz": (["compare", "RUN", "--plot", "OUT/x.xyz"], "a figure must end in one of"),
    "compare --plot without suffix": (["compare", "RUN", "--plot", "OUT/x"], "(it has none)"),
    # compare's option values exited 1, and one message named --sort for a wrong --metric
    "compare --metric bogus": (
        ["compare", "RUN", "--metric", "bogus"],
        "--metric must be ap_gap or ar_gap, not 'bogus'",
    ),
    "compare --sort bogus": (["compare", "RUN", "--sort", "bogus"], "--sort must be one of ap_gap"),
    "compare --format bogus": (["compare", "RUN", "--format", "bogus"], "--format must be one of auto"),
    "compare --select-rule bogus": (["compare", "RUN", "--select-rule", "bogus"], "--select-rule must be parity"),
    "data synth --seed -1": (["data", "synth", "OUT/s", "--seed", "-1"], "--seed must be at least 0, got -1"),
    # a --bias no benchmark has was refused after the folders above OUT were made
    "data synth --bias v9": (["data", "synth", "OUT/new/s", "--bias", "v9"], "--bias v9: unknown benchmark bias"),
    "data synth --mixed --bias v4": (
        ["data", "synth", "OUT/new/s", "--mixed", "--bias", "v4"],
        "--bias v4: the mixed benchmark has no bias v4",
    ),
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_bad_options_are_refused_by_name_before_any_work(run, capsys, tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)  # a pretrain that was not refused would write here, and fail the test
    args, says = OPTIONS[case]
    swap = {"CKPT": str(ckpt(run)), "RUN": str(run)}
    args = [swap.get(a, a.replace("OUT", str(tmp_path))) for a in args]
    code, _, err = faap_in_process(capsys, *args)
    one_error(err, 2, code, says)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_an_output_named_like_a_lock_is_refused(run, capsys, tmp_path, command):
    """``--out x.json.lock`` was written: a later writer of x.json then took that result for a
    lock held 'by pid ? on ?' and refused for ever."""
    args, option = WRITERS[command]
    out = tmp_path / "x.json.lock"
    code, _, err = faap_in_process(capsys, *args(run, str(out)))
    one_error(err, 1, code, f"{option} {out} names a writer's lock file")
    assert not out.exists()


WRONG_KIND = {
    # a folder given for the metrics file said 'not found: FOLDER'
    "--rescore of a folder": (lambda run, tmp: ["eval", "--rescore", str(run)], "is a folder; name the metrics JSON"),
    # a file given as the benchmark's folder said 'NotADirectoryError ... (unexpected)'
    "data synth onto a file": (
        lambda run, tmp: ["data", "synth", str(run / "run.json")],
        "run.json is a file; give a folder",
    ),
}


@pytest.mark.parametrize("case", sorted(WRONG_KIND))
def test_a_path_of_the_wrong_kind_is_named_as_such(run, capsys, tmp_path, case):
    args, says = WRONG_KIND[case]
    before = (run / "run.json").read_bytes()
    code, _, err = faap_in_process(capsys, *args(run, tmp_path))
    one_error(err, 1, code, says)
    assert (run / "run.json").read_bytes() == before
