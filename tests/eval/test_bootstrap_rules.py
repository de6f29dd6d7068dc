"""The bootstrap's gaps, ratios and shares closed are ``faapkit.fairness``'s rules applied to each
resample: every gap, ratio and share-closed CI (and point estimate) of a fixed input equals, float
for float (``==``, no tolerance), the one recorded in ``data/bootstrap_rules.json`` by the numpy
restatement of the rules that the bootstrap used before it called ``faapkit.fairness``.

The input is built here from a seeded generator (no detector, no dataset): three groups of images
with one to three person boxes each, and detections near the boxes whose hit rate differs by group
and setting. The recorded cases: a named pair, ``max - min`` over three groups (AP50/AP75 too),
and a degenerate pair where the baseline gap is 0 in every resample (no share CI) and the
advantaged group's perturbed AP is 0 (no ratio CI).

Regenerate the record only for an intended change of a rule:
``python -m tests.eval.test_bootstrap_rules``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from faapkit.evaluate.cocoeval import make_coco
from faapkit.evaluate.scoring import bootstrap, score

RECORD = Path(__file__).parent / "data" / "bootstrap_rules.json"
GROUPS = ("a", "b", "c")
IMAGES_PER_GROUP = 10
RESAMPLES = 60


def _input() -> tuple[dict[str, Any], dict[str, list[int]], dict[str, dict[str, list[dict[str, Any]]]]]:
    """``(ground truth, group -> image ids, case -> setting -> detections)``."""
    rng = np.random.default_rng(7)
    images, anns, groups = [], [], {g: [] for g in GROUPS}
    for i in range(len(GROUPS) * IMAGES_PER_GROUP):
        image_id = i + 1
        groups[GROUPS[i % len(GROUPS)]].append(image_id)
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 200, "height": 200})
        for _ in range(int(rng.integers(1, 4))):
            x, y, w, h = (float(v) for v in rng.integers([0, 0, 20, 20], [120, 120, 80, 80]))
            anns.append(
                {"id": len(anns) + 1, "image_id": image_id, "bbox": [x, y, w, h], "area": w * h,
                 "category_id": 1, "iscrowd": 0}
            )  # fmt: skip
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    group_of = {i: g for g, ids in groups.items() for i in ids}

    def detections(hit: dict[str, float], jitter: float, seed: int) -> list[dict[str, Any]]:
        r = np.random.default_rng(seed)
        out = []
        for a in anns:
            if r.random() < hit[group_of[a["image_id"]]]:
                box = [float(v + r.normal(0, jitter)) for v in a["bbox"]]
                box[2], box[3] = max(box[2], 1.0), max(box[3], 1.0)
                out.append({"image_id": a["image_id"], "category_id": 1, "bbox": box, "score": float(r.random())})
            if r.random() < 0.3:  # a false positive somewhere on the image
                out.append({"image_id": a["image_id"], "category_id": 1, "bbox": [150.0, 150.0, 30.0, 30.0],
                            "score": float(r.random())})  # fmt: skip
        return out

    perfect = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9} for a in anns]
    settings = {
        "plain": {
            "baseline": detections({"a": 0.5, "b": 0.85, "c": 0.7}, 4.0, 1),
            "perturbed": detections({"a": 0.7, "b": 0.8, "c": 0.75}, 4.0, 2),
        },
        "degenerate": {
            "baseline": perfect,  # every group at AP 1 in every resample: a gap of 0, nothing to close
            "perturbed": [d for d in perfect if group_of[d["image_id"]] != "b"],  # the advantaged AP is 0
        },
    }
    return gt, groups, settings


def _cases() -> dict[str, Any]:
    """Each case's point gaps and ratios and every CI of its gaps and ratios (full bootstrap), and
    the gaps of the plain bootstrap the headroom probe uses."""
    gt, groups, settings = _input()
    coco = make_coco(gt)
    two = {g: groups[g] for g in ("a", "b")}
    runs = {
        "pair": (settings["plain"], two, ("a", "b"), None),
        "max_min": (settings["plain"], groups, None, [0.5, 0.6, 0.75]),
        "degenerate": (settings["degenerate"], two, ("a", "b"), None),
    }
    out: dict[str, Any] = {}
    for name, (dets, group_images, ref, ious) in runs.items():
        scored = score(coco, dets, group_images, ref, resamples=RESAMPLES, seed=3, confidence=0.9, iou_thrs=ious)
        plain = bootstrap(coco, dets, group_images, ref, RESAMPLES, 3, 0.9)
        out[name] = {
            "gaps": scored["gaps"],
            "ratios": scored["ratios"],
            "gap_cis": scored["bootstrap"]["gaps"],
            "ratio_cis": scored["bootstrap"]["ratios"],
            "plain_gap_cis": plain["gaps"],
        }
    return json.loads(json.dumps(out))  # the JSON the record holds (tuples as lists)


def test_every_gap_ratio_and_share_ci_is_the_recorded_one():
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    now = _cases()
    # the input exercises what the record is meant to pin: CIs that exist and the ones that cannot
    assert now["pair"]["gap_cis"]["AP"]["share_closed"] is not None
    assert now["max_min"]["ratio_cis"]["AP50"] is not None and "AP75" in now["max_min"]["gap_cis"]
    assert now["degenerate"]["gap_cis"]["AP"]["share_closed"] is None
    assert now["degenerate"]["ratio_cis"]["AP"] is None
    for case, entries in recorded.items():
        for key, value in entries.items():
            assert now[case][key] == value, f"{case} {key}: {now[case][key]} != recorded {value}"  # exact floats
    assert now == recorded


if __name__ == "__main__":
    RECORD.write_text(json.dumps(_cases(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {RECORD}")
