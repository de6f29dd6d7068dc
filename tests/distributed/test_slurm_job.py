"""The Done-when of ``--launcher slurm``: a real two-process job through submitit's local executor
(``FAAP_SUBMITIT_CLUSTER=local``: the same job, tasks as processes of this machine, gloo on CPU)
trains the embedded benchmark, is preempted after its first checkpoint (the ``USR2`` SLURM sends
before it ends a job), requeues itself through ``TrainJob.checkpoint`` and continues with
``--resume auto`` from that checkpoint to the end of the schedule."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit", reason="the slurm extra is not installed")
pytestmark = [
    pytest.mark.slow,  # two attempts of a two-process job: about 50 s on two busy cores
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's tasks through /proc"),
]

EPOCHS = 4
QUICK = ["train.batch_size=4", "data.limit_images=40", f"train.epochs={EPOCHS}", "train.steps_per_epoch=2"]
QUICK += ["train.val_every=0", "generator.base_channels=8"]


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the job's tasks under submitit's local controller)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:  # ended meanwhile
            continue
    return found


def _wait_for(condition, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_preempted_two_process_job_requeues_and_continues_from_its_checkpoint(tmp_path, synth_root):
    run = tmp_path / "run"
    env = {**os.environ, "FAAP_SUBMITIT_CLUSTER": "local", "OMP_NUM_THREADS": "1"}
    sets = [arg for key in QUICK for arg in ("--set", key)]
    command = [sys.executable, "-m", "faapkit", "train", "--version", "4th", "--launcher", "slurm", "--timeout", "10"]
    command += ["--gpus-per-node", "0", "--tasks-per-node", "2", "--device", "cpu", "--out", str(run), *sets, "--json"]
    # stdout to a file, not a pipe: the local job outlives the command and would hold a pipe open
    with (tmp_path / "submit.json").open("w") as out, (tmp_path / "submit.err").open("w") as err:
        code = subprocess.run(command, stdout=out, stderr=err, env=env, timeout=300).returncode
    assert code == 0, (tmp_path / "submit.err").read_text()
    job = json.loads((tmp_path / "submit.json").read_text())
    assert job["cluster"] == "local" and job["run"] == str(run)
    logs, controller = Path(job["logs"]), int(job["job_id"])

    try:
        _preempt_and_finish(run, logs, controller)
    finally:  # a failed check leaves no job running: the controller stops its tasks on SIGINT
        with contextlib.suppress(OSError):  # ended (its id then maybe another process's: checked)
            if b"submitit.local._local" in Path(f"/proc/{controller}/cmdline").read_bytes():
                os.kill(controller, signal.SIGINT)


def _preempt_and_finish(run: Path, logs: Path, controller: int) -> None:
    first = run / "checkpoints" / "epoch_0000.pt"
    _wait_for(first.exists, "the first checkpoint")
    tasks = _children(controller)
    assert len(tasks) == 2, tasks
    written = first.stat().st_mtime_ns
    for pid in tasks:
        os.kill(pid, signal.SIGUSR2)  # what SLURM sends a job it is about to preempt or time out

    last = run / "checkpoints" / f"epoch_{EPOCHS - 1:04d}.pt"
    results = [logs / f"{controller}_{rank}_result.pkl" for rank in (0, 1)]
    _wait_for(lambda: last.exists() and all(r.exists() for r in results), "the requeued job to finish")
    _wait_for(lambda: not _children(controller), "the job's tasks to end", timeout=60)

    rank0 = (logs / f"{controller}_0_log.out").read_text()
    assert "Calling checkpoint method" in rank0 and f"Requeued job {controller}" in rank0, rank0
    assert rank0.count("Job completed successfully") == 1
    said = (logs / f"{controller}_0_log.err").read_text()
    assert said.count("world size 2") == 2, said  # two attempts, each of two processes
    second = said[said.rindex("world size 2") :]
    epochs = [line.split(":")[0] for line in second.splitlines() if line.startswith("epoch ")]
    assert epochs == [f"epoch {e}" for e in range(1, EPOCHS)], said  # resumed after epoch 0's checkpoint
    assert first.stat().st_mtime_ns == written  # epoch 0 was not trained again

    manifest = json.loads((run / "run.json").read_text())
    assert manifest["world_size"] == 2 and manifest["config"]["train"]["epochs"] == EPOCHS
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(EPOCHS))
    assert [r["steps"] for r in rows] == [2] * EPOCHS  # every epoch whole: none cut short or run twice
    assert all(r["total"] == r["total"] and r["nonfinite"] == 0 for r in rows)  # finite losses throughout
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch_*.pt")) == [
        f"epoch_{e:04d}.pt" for e in range(EPOCHS)
    ]
