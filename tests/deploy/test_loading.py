"""faapkit.load_perturbation and faapkit.load_fair_detector: a run's perturbation on [0, 1] images,
and the fair detector giving the detections faap eval scores."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

import faapkit
from faapkit.errors import FaapError


def test_import_stays_torch_free_and_the_api_resolves_lazily():
    code = (
        "import sys, faapkit\n"
        "assert 'torch' not in sys.modules, 'import faapkit imported torch'\n"
        "import faapkit.deploy\n"
        "assert 'torch' not in sys.modules, 'import faapkit.deploy imported torch'\n"
        "assert faapkit.load_perturbation is faapkit.deploy.load_perturbation\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_perturbation_keeps_shape_and_range_and_carries_the_detector(deploy_run):
    module = faapkit.load_perturbation(deploy_run)
    info = module.info
    assert info.generator == "transformer-aware" and info.reads_detector and module.detector is not None
    assert info.chosen_by.startswith("best.pt") and info.min_size == 128 and info.max_size == 213
    selection = json.loads((deploy_run / "selection.json").read_text())
    assert info.checkpoint_sha256 == selection["checkpoint_sha256"]
    for h, w in ((128, 170), (130, 97)):  # an eval size, and one that is no multiple of 4
        images = torch.rand(2, 3, h, w)
        out = module(images)
        assert out.shape == images.shape and out.dtype == torch.float32
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        # |delta| <= epsilon in normalised units: epsilon * std per channel in pixels
        assert float((out - images).abs().max()) <= info.epsilon * 0.229 + 1e-6
    assert any(k.startswith("detector.") for k in module.state_dict())  # its weights travel with it


def test_fair_detector_gives_the_detections_faap_eval_scores(deploy_run, deploy_data):
    from faapkit.data.batching import collate
    from faapkit.data.coco import GroupedDetectionDataset, load_split
    from faapkit.data.transforms import EvalTransform, denormalize
    from faapkit.evaluate.evaluator import load_generator
    from faapkit.evaluate.inference import detect

    fair = faapkit.load_fair_detector(deploy_run)
    split = load_split(deploy_data, "test")
    dataset = GroupedDetectionDataset(split, EvalTransform(128, 213))
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    reg = Registries.from_plugin_manager(make_plugin_manager())
    best = deploy_run / "checkpoints" / "best.pt"
    generator, _ = load_generator(best, None, torch.device("cpu"), reg.generators, detector=fair.detector)
    checked = 0
    for index in range(2):
        item = dataset[index]
        image, target = item[0], item[1]
        h, w = image.shape[-2:]
        oh, ow = (int(v) for v in target["orig_size"])
        loader = [collate([item])]
        records = detect(fair.detector, loader, device=torch.device("cpu"), generator=generator)
        boxes, scores, labels = fair(denormalize(image[None]))
        assert boxes.shape == (1, fair.detector.num_queries, 4)
        eval_scores = torch.tensor([r["score"] for r in records])
        assert torch.allclose(scores[0], eval_scores, atol=1e-5)
        assert [r["category_id"] for r in records] == labels[0].tolist()
        xywh = torch.tensor([r["bbox"] for r in records])  # original pixels -> the input's
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1) * torch.tensor([w / ow, h / oh] * 2)
        assert torch.allclose(boxes[0], xyxy, atol=1e-3)
        checked += 1
    assert checked == 2


def test_a_seed_set_and_a_run_without_a_chosen_checkpoint_are_refused(deploy_run, tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "seeds.json").write_text(json.dumps({"schema": 1, "version": "level-up", "seeds": [0]}))
    unchosen = tmp_path / "unchosen"
    shutil.copytree(deploy_run, unchosen)
    (unchosen / "checkpoints" / "best.pt").unlink()
    (unchosen / "selection.json").unlink()
    with pytest.raises(FaapError, match="--epoch"):
        faapkit.load_perturbation(unchosen)
    assert faapkit.load_perturbation(unchosen, epoch=0).info.chosen_by.startswith("--epoch 0 (asked for; not chosen")
    with pytest.raises(FaapError, match="seed"):
        faapkit.load_perturbation(tmp_path / "set")
