"""The benchmarks' ``coco-backend`` section: the repeated split it times and its table (no timing
is asserted: the machine is shared)."""

from __future__ import annotations

import math

import pytest

from benchmarks.coco_backend import max_diff, repeated, section_coco_backend
from faapkit.evaluate.cocoeval import evaluate_split, make_coco
from tests.eval.test_box_groups import BASE, GROUPS, _gt


def test_the_split_repeated_holds_each_image_boxes_and_detections_once_per_copy():
    gt = _gt()
    gt["group_level"] = "image"  # one group per image here: 1 female, 2 female, 3 male
    groups = {"female": [1, 2], "male": [3]}
    coco, dets, big = repeated(make_coco(gt), {"baseline": BASE}, groups, 3)
    images = [img["id"] for img in coco.dataset["images"]]
    boxes = [a["id"] for a in coco.dataset["annotations"]]
    assert len(images) == len(set(images)) == 9 and len(boxes) == len(set(boxes)) == 12
    assert {g: len(ids) for g, ids in big.items()} == {"female": 6, "male": 3}
    assert len(dets["baseline"]) == 3 * len(BASE) and {d["image_id"] for d in dets["baseline"]} <= set(images)
    one, _ = evaluate_split(make_coco(gt), BASE, groups)
    three, _ = evaluate_split(coco, dets["baseline"], big)
    assert three["male"]["AR"] == one["male"]["AR"]  # each copy finds what the original finds


def test_max_diff_is_over_every_number_and_none_must_match():
    assert max_diff({"a": [1.0, 2.0], "b": None}, {"a": [1.0, 2.5], "b": None}) == 0.5
    assert math.isnan(max_diff({"a": None}, {"a": 1.0}))
    assert max_diff(GROUPS, GROUPS) == 0.0


@pytest.mark.slow
def test_the_section_times_both_backends_on_the_same_detections():
    import torch

    rows = section_coco_backend(torch.device("cpu"), copies=1, repeat=1, resamples=10)
    assert [r["backend"] for r in rows] == ["pycocotools", "faster-coco-eval"] * 2
    for r in rows:
        assert isinstance(r["speed-up (median)"], float) and r["speed-up (median)"] > 0
        assert r["max |diff| vs pycocotools"] <= 1e-15  # type: ignore[operator]
