"""``faap train --nproc 2`` and ``faap eval --nproc 2`` through torchrun (gloo on CPU).

Sharded evaluation must give the same metrics as one process: every image runs in the same
shape bucket whichever rank takes it, and rank 0 gathers all detections before pycocotools."""

import json

import pytest
import torch

from tests.conftest import run_cli, run_here

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # same kernels in every process, and no oversubscription


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("nproc") / "run"
    code, out, err = run_cli(
        "train",
        "--nproc",
        "2",
        "--out",
        str(run),
        "--max-steps",
        "2",
        "--limit-images",
        "40",
        "--set",
        "train.batch_size=4",
        "--quiet",
        env=ONE_THREAD,
    )
    assert code == 0, err[-3000:]
    return run


def test_train_nproc_launches_two_ranks_and_one_writer(ddp_run):
    manifest = json.loads((ddp_run / "run.json").read_text())
    assert manifest["world_size"] == 2
    checkpoints = sorted(p.name for p in (ddp_run / "checkpoints").iterdir())
    assert checkpoints and not [n for n in checkpoints if n.endswith(".tmp")]


def test_eval_nproc_shards_inference_and_matches_one_process(ddp_run, tmp_path):
    common = ["eval", str(ddp_run), "--limit-images", "60", "--bootstrap", "0", "--no-cache"]
    code, _, err = run_cli(*common, "--nproc", "2", "--out", str(tmp_path / "two.json"), env=ONE_THREAD)
    assert code == 0, err[-3000:]
    # one process needs no launcher: in this process, on one thread as each rank ran
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, _, err = run_here(*common, "--out", str(tmp_path / "one.json"), env=ONE_THREAD)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())
    one = json.loads((tmp_path / "one.json").read_text())
    assert two["eval"]["world_size"] == 2 and one["eval"]["world_size"] == 1
    assert two["eval"]["settings_inferred"] == ["baseline", "perturbed"]
    for setting, per_group in one["metrics"].items():
        for group, stats in per_group.items():
            for key, value in stats.items():
                assert two["metrics"][setting][group][key] == pytest.approx(value, abs=1e-9), (setting, group, key)
    assert one["metrics"]["baseline"]["male"]["AP"] > 0.1  # the shipped detector, not noise


def test_a_failing_launch_is_one_error_line(tmp_path):
    """Every rank fails the same way: one line (rank 0's), its exit status, no torchrun report."""
    code, out, err = run_cli(
        "train", "--nproc", "2", "--device", "cuda", "--max-steps", "1", "--out", str(tmp_path / "r"), env=ONE_THREAD
    )
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: train.device is 'cuda' but CUDA is not available (use cpu or auto)"], err
    assert "Traceback" not in err and "ChildFailedError" not in err


def test_rank0_stopped_by_another_rank_prints_that_ranks_error(monkeypatch, capsys):
    """torchrun itself replaced: rank 1 fails (status 2) and rank 0 is stopped by a signal."""
    import os
    import sys
    from pathlib import Path

    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from faapkit.cli._launch import launch_torchrun
    from faapkit.distributed.launch import LAUNCH_DIR_ENV

    def fake_run(args):
        assert args.nproc_per_node == "2" and args.training_script == "faapkit"
        (Path(os.environ[LAUNCH_DIR_ENV]) / "error-rank1.txt").write_text("2 error: rank one's problem\n")
        failures = {
            0: ProcessFailure(local_rank=0, pid=10, exitcode=-15, error_file="<N/A>"),
            1: ProcessFailure(local_rank=1, pid=11, exitcode=2, error_file="<N/A>"),
        }
        raise ChildFailedError("faapkit", failures)

    monkeypatch.setattr(torchrun, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["faap", "train", "--nproc", "2", "--max-steps", "1"])
    with pytest.raises(SystemExit) as stop:
        launch_torchrun(2)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == ["error: rank one's problem"]
    assert LAUNCH_DIR_ENV not in os.environ
