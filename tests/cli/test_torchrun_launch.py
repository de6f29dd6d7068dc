"""``faap train --nproc 2`` and ``faap eval --nproc 2`` through torchrun (gloo on CPU).

Sharded evaluation must give the same metrics as one process: every image runs in the same
shape bucket whichever rank takes it, and rank 0 gathers all detections before pycocotools."""

import json

import pytest

from tests.conftest import run_cli

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
    code, _, err = run_cli(*common, "--out", str(tmp_path / "one.json"), env=ONE_THREAD)
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
