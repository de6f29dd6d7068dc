"""Real torchrun DDP on CPU (gloo): two processes train the tiny setup; generators must agree."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("version", ["4th", "7th"])
def test_two_gloo_processes_keep_generators_identical(tmp_path, synth_root, version):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(Path(__file__).with_name("ddp_worker.py")),
        str(tmp_path),
        version,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2 and r0["pid"] != r1["pid"]
    for key, value in r0["final"].items():
        assert torch.equal(value, r1["final"][key]), key
    changed = [k for k, v in r0["final"].items() if v.is_floating_point() and not torch.equal(v, r0["init"][k])]
    assert changed, "the generator did not change"
    log = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 1  # only rank 0 writes
    with (tmp_path / "run" / "metrics.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    keys = [(r["step"], r["name"]) for r in rows]
    assert len(keys) == len(set(keys)) and {r["step"] for r in rows} == {"1", "2", "3"}  # rank 0 alone writes
    # each row is the mean over both processes' step (synchronised skips: both count the same steps)
    logged = [float(r["value"]) for r in rows if r["name"] == "loss_det"]
    expected = (r0["means"]["loss_det"] + r1["means"]["loss_det"]) / 2
    assert sum(logged) / len(logged) == pytest.approx(expected, rel=1e-6)
    assert r0["means"]["loss_det"] != pytest.approx(r1["means"]["loss_det"], rel=1e-6)  # the processes differ


def test_more_processes_than_gpus_is_a_config_error(monkeypatch):
    from faapkit.distributed import DistInfo, select_device
    from faapkit.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert select_device("cuda", DistInfo(rank=0, world_size=2, local_rank=0)) == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="process 1 of 2 has no GPU: this machine has 1"):
        select_device("cuda", DistInfo(rank=1, world_size=2, local_rank=1))
