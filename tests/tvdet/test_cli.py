"""The torchvision detectors through ``faap``: listed by ``faap inspect plugins``; level-up trained
a few steps against Faster R-CNN's own loss (MobileNetV3 320, seeded random weights from a
torchvision-format file: what matters here is the path, not the detector's skill) and scored by
``faap eval`` through the same COCO evaluation as the DETRs."""

from __future__ import annotations

import json
import math

from faapkit.tvdet.build import FROZEN_EPS
from tests.conftest import run_here
from tests.tvdet.conftest import NAME


def test_inspect_plugins_lists_the_torchvision_detectors():
    code, out, err = run_here("inspect", "plugins", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["components"] if r["kind"] == "detector"}
    assert set(FROZEN_EPS) <= set(rows)
    assert rows["fasterrcnn_resnet50_fpn"]["plugin"] == "torchvision_detectors"
    assert "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth" in rows["fasterrcnn_resnet50_fpn"]["description"]


def test_level_up_trains_against_faster_rcnn_s_own_loss_and_eval_scores_it(tmp_path, synth_root, random_checkpoint):
    weights = random_checkpoint
    run = tmp_path / "run"
    settings = [f"detector.name={NAME}", f"detector.checkpoint={weights}", "generator.name=detector-aware"]
    settings += ["generator.channels=8", "train.batch_size=2", "train.epochs=1", "train.steps_per_epoch=2"]
    settings += ["train.val_every=0", "data.limit_images=8"]
    sets = [a for s in settings for a in ("--set", s)]
    code, _, err = run_here("train", "--version", "level-up", "--out", str(run), "--quiet", *sets)
    assert code == 0, err
    (row,) = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    # Faster R-CNN's own loss: RPN objectness and box terms plus the ROI heads' classifier and box terms
    assert row["steps"] == 2 and math.isfinite(row["loss_det_dis"]) and row["loss_det_dis"] > 0
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["detector"]["name"] == NAME and manifest["detector"]["checkpoint"] == str(weights)

    code, out, err = run_here("eval", str(run), "--limit-images", "8", "--bootstrap", "0", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["eval"]["detections_per_image"] == 100 and result["eval"]["min_size"] == 320
    for group in ("female", "male"):
        assert 0.0 <= result["metrics"]["perturbed"][group]["AP"] <= 1.0
