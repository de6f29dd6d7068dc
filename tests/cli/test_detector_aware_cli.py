"""A level-up run (its generator reads the frozen detector) through the CLI: faap eval rebuilds the generator with
the run's detector, and faap inspect perturbation hands it the detector its checkpoint records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faapkit.config import resolve_config
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.io import load_checkpoint, save_checkpoint
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer
from tests.conftest import faap_in_process

faap = faap_in_process
REG = Registries.from_plugin_manager(make_plugin_manager())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Two level-up steps on a small benchmark (3 + 3 train, val and test images)."""
    base = tmp_path_factory.mktemp("detaware")
    splits = (("train", 3, 3), ("val", 3, 3), ("test", 3, 3))
    root = write_synthetic(base / "s", SynthSpec(seed=3, splits=splits)) / "coco"
    overrides = [f"data.root='{root}'", "train.batch_size=4", "train.epochs=1", "train.steps_per_epoch=2"]
    overrides += ["train.val_every=0", "generator.channels=8", "eval.bootstrap=0"]
    cfg = resolve_config(REG, version="level-up", overrides=overrides)
    assert cfg.generator["name"] == "transformer-aware"
    trainer = Trainer(cfg, REG, base / "run")
    trainer.setup()
    trainer.fit()
    return base / "run"


def test_eval_and_perturbation_grid_use_the_recorded_detector(run, capsys, tmp_path):
    code, out, err = faap(capsys, "eval", str(run), "--json", "--quiet")
    assert code == 0, err
    result = json.loads(out)
    assert result["generator"] == "transformer-aware"
    assert result["metrics"]["perturbed"] != result["metrics"]["baseline"] or result["epsilon"] > 0
    ckpt = sorted((run / "checkpoints").glob("epoch_*.pt"))[-1]
    png = tmp_path / "grid.png"
    code, _, err = faap(capsys, "inspect", "perturbation", str(ckpt), "--out", str(png), "--images", "2")
    assert code == 0 and png.stat().st_size > 0, err
    foreign = load_checkpoint(ckpt)
    foreign["detector"] = {**foreign["detector"], "sha256": "feedbeef" * 8}
    save_checkpoint(tmp_path / "foreign.pt", foreign)
    foreign_png = str(tmp_path / "x.png")
    code, _, err = faap(capsys, "inspect", "perturbation", str(tmp_path / "foreign.pt"), "--out", foreign_png)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: ") and "feedbeef" in lines[0], err


def test_another_detector_for_a_generator_that_reads_the_detector_needs_the_opt_in(run, capsys, tmp_path):
    """--detector alone measured a transfer of a generator fed another detector's features, silently."""
    ckpt = sorted((run / "checkpoints").glob("epoch_*.pt"))[-1]
    trained = load_checkpoint(ckpt)["detector"]
    args = ["eval", str(ckpt), "--detector", "detr-synth-tiny-v2", "--bootstrap", "0", "--quiet"]
    code, _, err = faap(capsys, *args, "--out", str(tmp_path / "m.json"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert (
        f"its generator 'transformer-aware' reads the detector's features and was trained to read detector "
        f"'{trained['name']}' (weights {trained['sha256'][:12]})" in lines[0]
    )
    assert "--accept-other-detector" in lines[0] and not (tmp_path / "m.json").exists()
    code, _, err = faap(capsys, *args, "--accept-other-detector", "--out", str(tmp_path / "m.json"))
    assert code == 0, err
    label = json.loads((tmp_path / "m.json").read_text())["other_detector"]
    assert label["trained_to_read"]["name"] == trained["name"]
    assert label["evaluated_with"]["name"] == "detr-synth-tiny-v2"
    assert "a transfer, labelled so in the metrics" in err
