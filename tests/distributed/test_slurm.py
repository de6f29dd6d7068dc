"""``--launcher slurm`` (``faapkit.distributed.slurm``) without a job: SLURM's placement as the
torchrun variables, the options refused up front, the command every task runs, and the one-line
error when submitit is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from faapkit.distributed.slurm import PORT_BASE, PORT_SPAN, SlurmOptions, rank_env, slurm_options, train_argv
from faapkit.errors import ConfigError, FaapError
from tests.conftest import faap_in_process, one_error

NO_SLURM = {"nodes": None, "gpus_per_node": None, "tasks_per_node": None, "partition": None, "folder": None}


def test_one_node_job_listens_on_loopback_with_each_tasks_ranks():
    envs = [
        rank_env(global_rank=r, local_rank=r, num_tasks=2, num_nodes=1, hostnames=["node7"], job_id="4242")
        for r in range(2)
    ]
    assert [e["RANK"] for e in envs] == ["0", "1"] and [e["LOCAL_RANK"] for e in envs] == ["0", "1"]
    assert {e["WORLD_SIZE"] for e in envs} == {"2"} and {e["MASTER_ADDR"] for e in envs} == {"127.0.0.1"}
    assert len({e["MASTER_PORT"] for e in envs}) == 1  # every task agrees without talking
    assert PORT_BASE <= int(envs[0]["MASTER_PORT"]) < PORT_BASE + PORT_SPAN


def test_multi_node_job_meets_on_its_first_host():
    hosts = ["gpu-a01", "gpu-a02"]
    env = rank_env(global_rank=5, local_rank=1, num_tasks=8, num_nodes=2, hostnames=hosts, job_id="77_3")
    assert env == {
        "MASTER_ADDR": "gpu-a01",
        "MASTER_PORT": env["MASTER_PORT"],
        "RANK": "5",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "8",
        "LOCAL_WORLD_SIZE": "4",
    }
    other = rank_env(global_rank=0, local_rank=0, num_tasks=8, num_nodes=2, hostnames=hosts, job_id="78")
    assert other["MASTER_PORT"] != env["MASTER_PORT"]  # another job on the node: another port
    with pytest.raises(FaapError, match="does not fit a job of 8 tasks"):
        rank_env(global_rank=8, local_rank=0, num_tasks=8, num_nodes=2, hostnames=hosts, job_id="1")


@pytest.mark.parametrize(
    ("launcher", "changes", "says"),
    [
        ("local", {"nodes": 2}, "--nodes is an option of --launcher slurm"),
        ("local", {"folder": Path("x")}, "--slurm-folder is an option of --launcher slurm"),
        ("pbs", {}, "--launcher must be one of local, slurm, got 'pbs'"),
        ("slurm", {}, "--launcher slurm needs --timeout MINUTES"),
        ("slurm", {"timeout_min": 60, "nproc": 2}, "give --tasks-per-node, not --nproc"),
        ("slurm", {"timeout_min": 60, "nodes": 0}, "--nodes must be at least 1, got 0"),
        ("slurm", {"timeout_min": 60, "gpus_per_node": 0, "tasks_per_node": 0}, "--tasks-per-node must be at least"),
    ],
)
def test_options_that_make_no_job_are_refused(launcher, changes, says):
    given = {**NO_SLURM, "nproc": 1, "jobs": 1, "timeout_min": None, **changes}
    with pytest.raises(ConfigError, match=says):
        slurm_options(launcher, **given)


def test_the_job_asks_one_task_per_gpu_unless_told():
    assert slurm_options("local", nproc=4, jobs=1, timeout_min=None, **NO_SLURM) is None
    options = slurm_options("slurm", nproc=1, jobs=1, timeout_min=30, **{**NO_SLURM, "gpus_per_node": 4})
    assert options == SlurmOptions(nodes=1, gpus_per_node=4, timeout_min=30) and options.tasks() == 4
    cpu = slurm_options("slurm", nproc=1, jobs=1, timeout_min=30, **{**NO_SLURM, "gpus_per_node": 0})
    assert cpu is not None and cpu.tasks() == 1


def test_every_task_runs_the_run_with_resume_auto(tmp_path):
    argv = train_argv(
        tmp_path / "run", auto=True, version="4th", config=Path("c.toml"), overrides=["a.b=1"], blocked=["x"]
    )
    assert argv == [
        "--disable-plugin", "x", "train", "--out", str(tmp_path / "run"), "--resume", "auto", "--quiet",
        "--version", "4th", "--config", str(Path("c.toml").absolute()), "--set", "a.b=1",
    ]  # fmt: skip
    kept = train_argv(tmp_path / "run", auto=False, version=None, config=None, overrides=[], blocked=[])
    assert kept == ["train", "--resume", str(tmp_path / "run"), "--quiet"]


def test_without_submitit_the_extra_is_named_in_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed: importing it fails
    code, _, err = faap_in_process(
        capsys, "train", "--launcher", "slurm", "--timeout", "5", "--out", str(tmp_path / "r"), "--max-steps", "1"
    )
    one_error(err, 2, code, "--launcher slurm needs submitit: pip install 'faapkit[slurm]'")
    assert not (tmp_path / "r").exists()


def test_each_task_gets_its_share_of_the_cores(monkeypatch):
    from faapkit.distributed.slurm import task_threads

    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert task_threads({"SLURM_CPUS_PER_TASK": "6"}, 4) == "6"  # what SLURM allotted each task
    assert task_threads({}, 4) == "4" and task_threads({"SLURM_CPUS_PER_TASK": ""}, 32) == "1"


def test_without_slurm_the_job_is_refused_not_run_here(monkeypatch, tmp_path):
    """Where there is no srun and FAAP_SUBMITIT_CLUSTER is unset, submitit's AutoExecutor would
    fall back to its local executor and train in the background of this machine: refused."""
    pytest.importorskip("submitit", reason="the slurm extra is not installed")
    from faapkit.distributed.slurm import submit

    monkeypatch.delenv("FAAP_SUBMITIT_CLUSTER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no srun, sbatch, or anything else
    options = SlurmOptions(nodes=1, gpus_per_node=0, timeout_min=5)
    with pytest.raises(FaapError, match=r"no SLURM here \(no srun; FAAP_SUBMITIT_CLUSTER=local tries it\)"):
        submit(["train"], print, options, tmp_path / "run")
    assert sorted(tmp_path.iterdir()) == []  # neither the run nor its RUN.slurm folder


def test_local_executor_refuses_nodes_before_making_its_folder(monkeypatch, tmp_path):
    pytest.importorskip("submitit", reason="the slurm extra is not installed")
    from faapkit.distributed.slurm import submit

    monkeypatch.setenv("FAAP_SUBMITIT_CLUSTER", "local")
    with pytest.raises(ConfigError, match="--nodes 2: submitit's local executor runs one node"):
        submit(["train"], print, SlurmOptions(nodes=2, gpus_per_node=0, timeout_min=5), tmp_path / "run")
    assert sorted(tmp_path.iterdir()) == []
