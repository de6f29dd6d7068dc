"""Evaluation results are never silently replaced or misplaced: which checkpoint ``faap eval RUN``
takes, where its metrics go, what their name encodes, and the refusals before any inference.
Runs ``faap`` in-process (the CLI's own entry point) to stay fast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faapkit.config import resolve_config
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.evaluate.command.checkpoint_choice import resolve_target
from faapkit.io import load_checkpoint, save_checkpoint
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer
from tests.conftest import faap_in_process

REG = Registries.from_plugin_manager(make_plugin_manager())
EVAL = ["--limit-images", "4", "--bootstrap", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run with two checkpoints: epoch 0 (global step 1), and a copy of it that claims step 0 but
    has the newer file time and the name that sorts last (what mtime or name order would pick)."""
    base = tmp_path_factory.mktemp("safety")
    root = write_synthetic(base / "s", SynthSpec(seed=2, splits=(("train", 4, 4), ("test", 3, 3)))) / "coco"
    overrides = [
        f"data.root='{root}'",
        "train.batch_size=4",
        "train.epochs=1",
        "train.steps_per_epoch=1",
        "generator.base_channels=8",
    ]
    trainer = Trainer(resolve_config(REG, version="4th", overrides=overrides), REG, base / "run")
    trainer.setup()
    trainer.fit()
    stale = {**load_checkpoint(trainer.run.epoch_checkpoint(0)), "global_step": 0, "epoch_complete": False}
    save_checkpoint(trainer.run.step_checkpoint(99), stale)
    return base / "run"


def faap(capsys, *args: str) -> tuple[int, str]:
    """``faap ARGS`` in this process: (exit code, stderr)."""
    code, _, err = faap_in_process(capsys, *args)
    return code, err


def test_run_folder_gives_best_else_highest_step(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)  # new file times: "newest" no longer means anything
    tgt = resolve_target(copy, None)
    assert tgt.checkpoint == copy / "checkpoints" / "epoch_0000.pt" and tgt.chosen_by == "highest global_step"
    shutil.copy(copy / "checkpoints" / "step_00000099.pt", copy / "checkpoints" / "best.pt")
    assert resolve_target(copy, None).checkpoint == copy / "checkpoints" / "best.pt"
    assert resolve_target(copy, 0).checkpoint == copy / "checkpoints" / "epoch_0000.pt"


def test_metrics_names_encode_the_evaluation_and_are_never_replaced(run, capsys):
    code, err = faap(capsys, "eval", str(run), *EVAL)
    assert code == 0, err
    first = run / "eval" / "test_gender_epoch_0000_first4.json"
    metrics = json.loads(first.read_text())
    assert metrics["checkpoint"] == str(run / "checkpoints" / "epoch_0000.pt")
    assert metrics["global_step"] == 1 and metrics["epoch"] == 0
    assert metrics["checkpoint_choice"] == "highest global_step"
    before = first.read_bytes()
    code, err = faap(capsys, "eval", str(run), *EVAL, "--bootstrap", "15")
    assert code == 1 and "already holds an evaluation" in err and "--force" in err
    assert first.read_bytes() == before
    code, err = faap(capsys, "eval", str(run), *EVAL, "--epsilon", "0.05")  # another evaluation, another file
    assert code == 0, err
    assert (run / "eval" / "test_gender_epoch_0000_first4_eps0.05.json").is_file()
    assert first.read_bytes() == before


def test_loose_checkpoint_writes_next_to_itself(run, tmp_path, capsys):
    loose = tmp_path / "loose" / "g.pt"
    loose.parent.mkdir()
    shutil.copy(run / "checkpoints" / "epoch_0000.pt", loose)
    code, err = faap(capsys, "eval", str(loose), *EVAL, "--data", str(run.parent / "s" / "coco"))
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "loose" / "g.eval").iterdir())
    assert [n.split("_data-")[0] for n in written if n.endswith(".json")] == ["test_gender_g_first4"]
    stem = next(n for n in written if n.endswith(".json"))[: -len(".json")]  # the detections go beside it
    beside = [f"{stem}.{setting}.dets.json.gz" for setting in ("baseline", "perturbed")]
    assert [n for n in written if not n.endswith(".json")] == beside
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--limit-images", "0"], 2, "--limit-images must be at least 1"),
        (["--batch-size", "0"], 2, "--batch-size must be at least 1"),
        (["--device", "banana"], 2, "invalid --device 'banana'"),
        (["--on-invalid", "maybe"], 2, "--on-invalid must be fail or skip"),
        (["--epoch", "7"], 1, "has no checkpoint of epoch 7"),
        (["--limit-images", "2", "--bootstrap", "10"], 1, "a bootstrap CI needs at least 2 per group"),
        (["--disadvantaged", "kid"], 2, "--disadvantaged 'kid' is not a group of 'gender' in split 'test'"),
        (["--advantaged", "female", "--disadvantaged", "female"], 2, "are both 'female'"),
    ],
)
def test_eval_refusals_name_the_option(run, capsys, args, code, message):
    got, err = faap(capsys, "eval", str(run), *args)
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_relative_data_root_of_an_old_run_is_refused(run, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(run, old)
    manifest = json.loads((old / "run.json").read_text())
    manifest["config"]["data"]["root"] = "data/coco"
    (old / "run.json").write_text(json.dumps(manifest))
    code, err = faap(capsys, "eval", str(old), *EVAL)
    assert code == 2 and "relative data.root 'data/coco'" in err and "--data" in err
