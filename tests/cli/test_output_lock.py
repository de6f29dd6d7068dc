"""One writer per result file: ``faapkit.artifacts.output_lock``. Two writers started
together, as threads or as real processes, give exactly one holder and one refusal that names
the output and the holder's pid; a lock left by a killed process is taken over with a note.
Torch-free and fast: no inference here (``tests/eval/test_eval_guards.py`` races ``faap eval``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from faapkit.artifacts.output_lock import OutputLock, lock_path
from faapkit.errors import FaapError
from tests.conftest import faap_in_process, one_error


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("writers", [2, 4])
def test_threads_racing_for_one_output_give_one_holder(tmp_path, writers):
    out = tmp_path / "test_gender_best.json"
    barrier = threading.Barrier(writers)
    won: list[OutputLock] = []
    refused: list[str] = []

    def race() -> None:
        lock = OutputLock(out)
        barrier.wait()
        try:
            won.append(lock.acquire())
        except FaapError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=race) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == writers - 1
    for message in refused:
        assert str(out) in message and f"pid {os.getpid()}" in message and "\n" not in message
    assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    won[0].release()
    assert not lock_path(out).exists()


# a child process that takes the lock of argv[1] and says "ok", or prints the refusal and exits 1
ACQUIRE = """
import sys, time
from faapkit.artifacts.output_lock import OutputLock
from faapkit.errors import FaapError
try:
    lock = OutputLock(sys.argv[1]).acquire()
except FaapError as exc:
    print("error: " + str(exc))
    sys.exit(1)
print("ok")
sys.stdout.flush()
"""
HOLD = ACQUIRE + "time.sleep(float(sys.argv[2]))\nlock.release()\n"


def test_two_processes_racing_for_one_output_give_one_success_and_one_clear_refusal(tmp_path):
    out = tmp_path / "test_gender_best.json"
    go = [sys.executable, "-c", HOLD, str(out), "3"]
    procs = [subprocess.Popen(go, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=60), p.stdout.read().strip()) for p in procs if p.stdout]
    assert sorted(code for code, _ in results) == [0, 1], results
    winner = next(p for p, (code, _) in zip(procs, results, strict=True) if code == 0)
    (_, refusal) = next(r for r in results if r[0] == 1)
    assert refusal.startswith("error: ") and len(refusal.splitlines()) == 1
    assert str(out) in refusal and f"pid {winner.pid}" in refusal
    assert not lock_path(out).exists()  # released by the winner


def _holder(case: str) -> dict[str, object] | str:
    host = socket.gethostname()
    return {
        "dead pid, this host": {"pid": dead_pid(), "host": host},
        "live pid, this host": {"pid": os.getpid(), "host": host},
        "dead pid, another host": {"pid": dead_pid(), "host": host + "-elsewhere"},
        "unreadable, just written": "",
    }[case]


LOCK_CASES = {
    "dead pid, this host": True,  # a writer killed with -9: taken over, with a note
    "live pid, this host": False,
    "dead pid, another host": False,  # its pid says nothing here: never guessed about
    "unreadable, just written": False,  # a writer between creating and filling its lock
}


@pytest.mark.parametrize("case", sorted(LOCK_CASES))
def test_a_stale_lock_is_taken_over_with_a_note_and_a_live_one_refuses(tmp_path, case):
    out = tmp_path / "m.json"
    holder = _holder(case)
    lock_path(out).write_text(holder if isinstance(holder, str) else json.dumps(holder))
    notes: list[str] = []
    lock = OutputLock(out, note=notes.append)
    if LOCK_CASES[case]:
        with lock:
            assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
        assert len(notes) == 1 and "took over the stale lock" in notes[0]
        assert f"pid {holder['pid']}" in notes[0]  # type: ignore[index]
        assert not lock_path(out).exists()
    else:
        with pytest.raises(FaapError, match="is being written by another faap process") as err:
            lock.acquire()
        assert str(out) in str(err.value) and notes == []
        assert lock_path(out).read_text() == (holder if isinstance(holder, str) else json.dumps(holder))


def test_an_old_unreadable_lock_is_stale(tmp_path):
    out = tmp_path / "m.json"
    lock_path(out).write_text("")
    os.utime(lock_path(out), (1, 1))  # written long ago and never filled
    notes: list[str] = []
    with OutputLock(out, note=notes.append):
        pass
    assert not lock_path(out).exists()
    # it said 'of pid None (no such process on HOST: killed while writing?)'
    assert len(notes) == 1 and "unreadable and untouched for over a minute" in notes[0] and "None" not in notes[0]


@pytest.mark.parametrize("force", [False, True])
def test_a_result_written_meanwhile_is_not_replaced_without_force(tmp_path, force):
    out = tmp_path / "m.json"
    with OutputLock(out) as lock:
        out.write_text("written by a process that ignored the lock")
        if force:
            lock.check_unchanged(True)
        else:
            with pytest.raises(FaapError, match="was written by another process while this one worked"):
                lock.check_unchanged(False)


def test_release_never_removes_a_lock_another_process_holds(tmp_path):
    out = tmp_path / "m.json"
    lock = OutputLock(out).acquire()
    lock_path(out).write_text(json.dumps({"pid": os.getpid() + 1, "host": "x"}))  # taken over meanwhile
    lock.release()
    assert lock_path(out).exists()


def test_a_folder_that_takes_no_lock_is_one_line(tmp_path):
    missing = tmp_path / "nowhere" / "m.json"
    with pytest.raises(FaapError, match=f"cannot write {missing}: cannot create m.json.lock"):
        OutputLock(missing).acquire()


def test_the_lock_is_torch_free():
    code = "import sys, faapkit.artifacts.output_lock, faapkit.artifacts.integrity; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})


def test_probe_headroom_into_a_report_being_written_is_refused_before_any_work(tmp_path, capsys):
    from tests.conftest import faap_in_process, one_error

    out = tmp_path / "headroom.json"
    lock_path(out).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    # a --data that is not there would be said later: the lock is taken before any data is read
    code, _, err = faap_in_process(capsys, "probe", "headroom", "--out", str(out), "--data", str(tmp_path / "none"))
    one_error(err, 1, code, f"{out} is being written by another faap process (pid {os.getpid()}")
    assert not out.exists()


STALE_RACE = ACQUIRE + "sys.stdin.read()  # held until the test closes stdin\nlock.release()\n"


@pytest.mark.parametrize("writers", [2, 3])
def test_processes_finding_one_stale_lock_never_both_take_it_over(tmp_path, writers):
    out = tmp_path / "m.json"
    lock_path(out).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
    cmd = [sys.executable, "-c", STALE_RACE, str(out)]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(writers)]
    lines = [p.stdout.readline().strip() for p in procs if p.stdout]
    for p in procs:
        p.communicate("", timeout=60)
    assert lines.count("ok") == 1, lines
    assert all("is being written by another faap process" in line for line in lines if line != "ok"), lines


def test_a_folder_held_by_faap_train_does_not_block_the_lock(tmp_path):
    """``faap train`` holds a flock on its run folder for hours: a lock in that folder (a stale
    one too) never waits for it."""
    import fcntl

    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        out = tmp_path / "m.json"
        lock_path(out).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
        with OutputLock(out):
            pass
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "command",
    [
        ("compare", "{runs}", "--csv", "{out}"),
        ("compare", "{runs}", "--plot", "{out}"),
        ("inspect", "perturbation", "{runs}/g.pt", "--out", "{out}"),
        ("detector", "pretrain", "--epochs", "1", "--device", "cpu", "--out", "{out}"),
        ("data", "synth", "{out}"),
    ],
    ids=["compare-csv", "compare-plot", "inspect-perturbation", "pretrain", "synth"],
)
def test_every_result_writer_is_refused_while_another_holds_its_output(command, capsys, tmp_path):
    """The output lock guards every command's result, not eval's alone: a live holder is named and
    nothing is read, trained or written."""
    suffix = {"compare-csv": ".csv", "compare-plot": ".png", "inspect": ".png", "detector": ".pth", "data": ""}
    kind = command[0] if command[0] != "compare" else f"compare-{command[2][2:]}"
    out = tmp_path / f"result{suffix[kind]}"
    (tmp_path / "runs").mkdir()
    lock_path(out).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    args = [a.format(runs=tmp_path / "runs", out=out) for a in command]
    code, _, err = faap_in_process(capsys, *args)
    one_error(err, 1, code, f"{out} is being written by another faap process (pid {os.getpid()}")
    assert not out.exists() and lock_path(out).exists()
