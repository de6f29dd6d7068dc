"""Scoring box-level groups: group g on the images holding a g box, the other groups' boxes there
ignore regions (real pycocotools), and a bootstrap that draws a mixed image once for both groups."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from faapkit.data.coco import load_split
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.evaluate.cocoeval import evaluate_groups, evaluate_split, load_results, make_coco, run_cocoeval
from faapkit.evaluate.scoring import _joined, _strata, score

F1, M1, F2, M2 = [10, 10, 30, 80], [60, 10, 30, 80], [20, 20, 40, 60], [30, 10, 40, 70]


def _gt() -> dict[str, Any]:
    """Image 1 holds a female and a male person, image 2 a female, image 3 a male."""
    boxes = [(1, F1, "female"), (1, M1, "male"), (2, F2, "female"), (3, M2, "male")]
    anns = [
        {"id": i, "image_id": img, "bbox": b, "area": b[2] * b[3], "category_id": 1, "iscrowd": 0, "group": g}
        for i, (img, b, g) in enumerate(boxes, start=1)
    ]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 128, "height": 128} for i in (1, 2, 3)]
    return {"images": images, "annotations": anns, "categories": [{"id": 1}], "group_level": "box"}


def _det(img: int, box: list[int], score: float) -> dict[str, Any]:
    return {"image_id": img, "category_id": 1, "bbox": [float(v) for v in box], "score": score}


GROUPS = {"female": [1, 2], "male": [1, 3]}
# a female box found late, the other female box found, the male person of image 1 missed
BASE = [_det(1, F1, 0.5), _det(2, F2, 0.9), _det(3, M2, 0.8), _det(2, [80, 80, 20, 20], 0.7)]


def _ap(dets: list[dict[str, Any]]) -> dict[str, float | None]:
    return {g: m["AP"] for g, m in evaluate_groups(make_coco(_gt()), dets, GROUPS).items()}


def test_a_detection_on_another_groups_box_changes_neither_groups_ap():
    base = _ap(BASE)
    assert 0 < base["female"] < 1 and 0 < base["male"] < 1  # the false positive and the miss count
    on_male = _ap([*BASE, _det(1, M1, 0.99)])
    assert on_male["female"] == base["female"]  # female: the male box is an ignore region
    assert on_male["male"] > base["male"]  # male: the person is found
    on_female = _ap([*BASE, _det(1, F1, 0.99)])
    assert on_female["male"] == _ap([*BASE])["male"]
    # were the male box not there at all, the same detection would be a female false positive
    gt = _gt()
    gt["annotations"] = [a for a in gt["annotations"] if a["bbox"] != M1]
    coco = make_coco(gt)
    no_male = [
        float(run_cocoeval(coco, load_results(coco, d), [1, 2]).stats[0]) for d in (BASE, [*BASE, _det(1, M1, 0.99)])
    ]
    assert no_male[0] == base["female"] and no_male[1] < no_male[0]


def test_an_ignore_region_takes_one_detection_as_coco_matching_does():
    """Unlike a crowd region, an ignored box absorbs one match: a second detection on it is a
    false positive of the group."""
    base = _ap(BASE)["female"]
    twice = _ap([*BASE, _det(1, M1, 0.99), _det(1, M1, 0.98)])["female"]
    assert twice is not None and base is not None and twice < base


def test_the_overall_score_counts_every_box_once():
    coco = make_coco(_gt())
    per, overall = evaluate_split(coco, BASE, GROUPS)
    assert overall["AR"] == 0.75  # three of the four people found, image 1 scored once


def test_a_mixed_image_is_drawn_once_per_resample_for_both_groups():
    group_images = {"female": [1, 2, 3], "male": [3, 4]}
    strata = _strata(group_images)
    assert strata == [(("female",), [1, 2]), (("female", "male"), [3]), (("male",), [4])]
    draws = [np.full((5, len(ids)), len(ids) - 1) for _, ids in strata]
    ids_f, draw_f = _joined(strata, draws, "female")
    ids_m, draw_m = _joined(strata, draws, "male")
    assert ids_f == [1, 2, 3] and ids_m == [3, 4]
    assert (draw_f[:, 2] == 2).all() and (draw_m[:, 0] == 0).all()  # the same draw of image 3 in both
    every, draw = _joined(strata, draws, None)
    assert every == [1, 2, 3, 4] and draw.shape == (5, 4)
    # image-level groups: one stratum per group, in the group's order (a plain stratified bootstrap)
    assert _strata({"b": [4, 2], "a": [1, 3]}) == [(("b",), [4, 2]), (("a",), [1, 3])]


def _box_copy(image_level: Path, dst: Path) -> Path:
    """The same dataset with each image's attributes on each of its boxes instead."""
    shutil.copytree(image_level, dst)
    path = dst / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    attrs = {img["id"]: img.pop("attributes") for img in coco["images"]}
    for a in coco["annotations"]:
        a["attributes"] = attrs[a["image_id"]]
    path.write_text(json.dumps(coco))
    return dst


def test_one_group_per_image_scores_the_same_at_either_level(tmp_path):
    image_level = write_synthetic(tmp_path / "s", SynthSpec(seed=4, splits=(("test", 4, 4),))) / "coco"
    box_level = _box_copy(image_level, tmp_path / "box")
    a, b = load_split(image_level, "test"), load_split(box_level, "test")
    assert b.group_level == "box"
    rng = np.random.default_rng(0)
    dets = []
    for ann in a.coco_gt["annotations"]:  # found a little off, at random confidence, plus false positives
        x, y, w, h = (float(v) for v in ann["bbox"])
        dets.append(_det(ann["image_id"], [x + rng.uniform(-3, 3), y, w, h + rng.uniform(-5, 5)], rng.uniform()))
        dets.append(_det(ann["image_id"], [0, 0, 20, 20], rng.uniform()))
    got = [
        score(
            make_coco(s.coco_gt),
            {"baseline": dets},
            s.group_images(),
            ("female", "male"),
            resamples=40,
            seed=1,
            confidence=0.9,
        )
        for s in (a, b)
    ]
    for out in got:
        out.pop("timing_s")
        out["bootstrap"].pop("method")
    assert got[0] == got[1]
