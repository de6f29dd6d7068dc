"""Through the real CLI in subprocesses: a second ``faap train`` into a folder in use is refused
without touching it, and Ctrl-C ends with one line naming what was kept and how to continue."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRAIN = ["train", "--quiet", "--limit-images", "40", "--set", "train.batch_size=4", "--epochs", "50"]


def _start(out: Path) -> subprocess.Popen[str]:
    """``faap train`` that runs for minutes, with SIGINT delivered as a terminal's Ctrl-C would."""
    return subprocess.Popen(
        [sys.executable, "-m", "faapkit", *TRAIN, "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # background jobs ignore it
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.slow
def test_second_train_into_a_busy_folder_is_refused_and_ctrl_c_says_how_to_continue(tmp_path, synth_root):
    out = tmp_path / "run"
    first = _start(out)
    try:
        _wait_for(out / "run.json", first)
        second = subprocess.run(
            [sys.executable, "-m", "faapkit", *TRAIN, "--out", str(out)], capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 1 and "in use by another faap process" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        _wait_for(out / "checkpoints" / "epoch_0000.pt", first)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert first.returncode == 130, err
    assert len(lines) == 1 and "the last checkpoint is" in lines[0], err
    assert re.search(r"interrupted at epoch \d+, step \d+ of \d+ \(global step \d+\):", lines[0]), err
    assert f"faap train --resume {out}" in lines[0]


@pytest.mark.parametrize("where", ["exit 130 after it", "KeyboardInterrupt"])
def test_ctrl_c_anywhere_in_a_command_says_so_and_exits_130(monkeypatch, where):
    """Typer turns a KeyboardInterrupt into a silent exit 130; the CLI still says what happened."""
    import faapkit.evaluate.command as command
    from tests.conftest import run_here

    def interrupted(*_: object) -> None:
        if where == "KeyboardInterrupt":
            raise KeyboardInterrupt
        raise SystemExit(130) from KeyboardInterrupt()

    monkeypatch.setattr(command, "run_eval", interrupted)
    code, _, err = run_here("eval", "--bootstrap", "0")
    assert code == 130 and err.strip() == "error: interrupted", err
