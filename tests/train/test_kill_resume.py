"""SIGKILL in the middle of an epoch, then --resume: bit-identical to an uninterrupted run (weights,
logs, metrics.csv and evaluation)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.conftest import run_cli, run_here

EVAL_SAME = ["--limit-images", "40", "--bootstrap", "0", "--json", "--no-cache"]
ARGS = [
    "--version",
    "4th",
    "--set",
    "train.batch_size=4",
    "--set",
    "data.limit_images=60",
    "--set",
    "train.epochs=3",
    "--set",
    "train.steps_per_epoch=4",
    "--set",
    "train.log_every=1",  # a metrics.csv row every step: the kill leaves rows past the last checkpoint
    "--set",
    "train.val_limit_images=16",  # the last epoch's validation, in the logs compared: run, not measured
    "--quiet",
]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "epoch_0002.pt", weights_only=True)["generator"]


def _log(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("images_per_s")
    return rows


def _train(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "faapkit", "train", *ARGS, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


def test_sigkill_mid_epoch_then_resume_is_exact(tmp_path, synth_root):
    # the uninterrupted run trains alongside the one to be killed: one interpreter and torch start
    # overlaps the other's, and a slower epoch only puts the kill further inside it
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight_proc, proc = _train(straight), _train(killed)
    first = killed / "checkpoints" / "epoch_0000.pt"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert first.exists(), "no checkpoint was written"
    time.sleep(1.0)  # well inside epoch 1 (an epoch takes several seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "checkpoints" / "epoch_0002.pt").exists(), "the run finished before the kill"
    _, err = straight_proc.communicate(timeout=600)
    assert straight_proc.returncode == 0, err.decode()
    leftovers = [p.name for p in (killed / "checkpoints").iterdir() if not p.name.endswith(".pt")]
    assert not leftovers or all(name.startswith(".") for name in leftovers)
    for p in (killed / "checkpoints").glob("*.pt"):
        torch.load(p, weights_only=True)  # every checkpoint left behind is complete

    code, _, err = run_cli("train", "--resume", str(killed), "--quiet")
    assert code == 0, err
    assert not list(killed.rglob(".*.tmp"))
    for key, value in _weights(straight).items():
        assert torch.equal(value, _weights(killed)[key]), key
    assert _log(killed) == _log(straight)
    assert [r["epoch"] for r in _log(killed)] == [0, 1, 2]
    assert (killed / "metrics.csv").read_text() == (straight / "metrics.csv").read_text()

    # both evaluated in this one process at the last epoch (the run may choose none): only the runs differ
    metrics = []
    for run in (straight, killed):
        code, out, err = run_here("eval", str(run), "--epoch", "2", *EVAL_SAME)
        assert code == 0, err
        metrics.append(json.loads(out)["metrics"])
    assert metrics[0] == metrics[1]
