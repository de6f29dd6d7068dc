"""The vectorised bootstrap equals the former per-resample loop (tests/eval/bootstrap_reference.py)
bit for bit: per resample and in every CI, on real detections and on edge cases."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from faapkit.data.coco import load_split
from faapkit.evaluate.cocoeval import PerImageRecords, make_coco, per_image_eval
from faapkit.evaluate.scoring import bootstrap
from faapkit.fairness import reference_groups
from tests.eval.bootstrap_reference import (
    reference_ap_ar,
    reference_bootstrap,
    reference_per_image_eval,
    reference_samples,
)
from tests.eval.conftest import real_detections


def assert_same_samples(coco_gt, settings, group_images, resamples, seed, chunk_elements=1 << 20):
    """Every resample's AP and AR, new against former, compared with ==."""
    all_ids = sorted(i for ids in group_images.values() for i in ids)
    old = {n: PerImageRecords(reference_per_image_eval(coco_gt, d, all_ids)) for n, d in settings.items()}
    new = {n: PerImageRecords(per_image_eval(coco_gt, d, all_ids)) for n, d in settings.items()}
    expected = reference_samples(old, group_images, resamples, seed)
    pos = next(iter(new.values())).position()
    rng = np.random.default_rng(seed)
    group_pos = {g: np.array([pos[i] for i in ids]) for g, ids in group_images.items()}
    draws = {g: rng.integers(0, len(p), size=(resamples, len(p))) for g, p in group_pos.items()}
    for name, rec in new.items():
        for g, p in group_pos.items():
            ap, ar = rec.resample_ap_ar(p, draws[g], chunk_elements=chunk_elements)
            np.testing.assert_array_equal(ap, expected[name][g]["AP"], err_msg=f"{name} {g} AP")
            np.testing.assert_array_equal(ar, expected[name][g]["AR"], err_msg=f"{name} {g} AR")
    return expected


# ----------------------------------------------------------------------------- real detections


def _edge_cases(gt: dict[str, Any], dets: list[dict[str, Any]], groups: dict[str, list[int]]):
    """Real ground truth and detections with edge cases added, in every group: images without
    ground truth (one of them also without detections), an image with ground truth and no
    detections, crowd (ignored) boxes that detections match."""
    gt = copy.deepcopy(gt)
    no_gt, no_dets, crowd = set(), set(), set()
    for ids in groups.values():
        no_gt.update(ids[0:2])
        no_dets.update([ids[1], ids[2]])
        crowd.update(ids[3:5])
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] not in no_gt]
    for a in gt["annotations"]:
        if a["image_id"] in crowd:
            a["iscrowd"] = 1
            crowd.discard(a["image_id"])  # one crowd box per image
    return gt, [d for d in dets if d["image_id"] not in no_dets]


@pytest.fixture(scope="module", params=["gender", "age"])
def real_eval(request, synth_root, tiny_detector):
    """Baseline and perturbed detections of the shipped tiny detector on 48 test images, grouped
    by gender (two groups, the session's :func:`gender_detections`) or age (three)."""
    if request.param == "gender":
        return request.getfixturevalue("gender_detections")
    data = load_split(synth_root, "test", split_by=request.param, limit=48)
    return data, *real_detections(data, tiny_detector)


def test_equals_former_loop_on_real_detections(real_eval):
    data, base, pert = real_eval
    groups = {g: [r.image_id for r in data.records if r.group == g] for g in data.groups}
    assert len(groups) >= 2 and min(len(ids) for ids in groups.values()) >= 6
    gt, pert = _edge_cases(data.coco_gt, pert, groups)
    # scores rounded to 2 decimals: ties across and within images, true against false positives
    pert_tied = [{**d, "score": round(d["score"], 2)} for d in pert]
    settings = {"baseline": base, "perturbed": pert_tied}
    coco_gt = make_coco(gt)
    assert_same_samples(coco_gt, settings, groups, 120, 7)
    ref = reference_groups(list(groups), None, None)
    new = bootstrap(coco_gt, settings, groups, ref, 120, 3, 0.9)
    old = reference_bootstrap(coco_gt, settings, groups, ref, 120, 3, 0.9)
    assert new == old


# ----------------------------------------------------------------------------- synthetic edge cases


def _synthetic(seed: int = 0, n: int = 36):
    """Two categories (the second in few images), three groups (``c`` without any ground truth of
    the second category), crowd boxes, images with no ground truth, with no detections and with
    neither, scores on a 0.1 grid (many ties, within images too) and duplicate detections."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n + 1):
        images.append({"id": i, "width": 120, "height": 120, "file_name": f"{i}.jpg"})
        group = "abc"[i % 3]
        n_gt = 0 if i % 7 == 0 else int(rng.integers(1, 4))
        for k in range(n_gt):
            cat = 2 if (k == 0 and group != "c" and i % 5 == 0) else 1
            x, y = rng.uniform(0, 70, 2)
            w, h = rng.uniform(12, 45, 2)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": int(i % 11 == 0 and k == 0),
                }
            )
            if i % 9 == 4:
                continue  # ground truth without detections
            for _ in range(int(rng.integers(1, 3))):  # sometimes a duplicate: a false positive
                jitter = rng.normal(0, 5, 4)
                dets.append(
                    {
                        "image_id": i,
                        "category_id": cat,
                        "bbox": list(np.array([x, y, w, h]) + jitter),
                        "score": round(float(rng.uniform(0.2, 1)), 1),
                    }
                )
        if i % 9 != 4 and i % 14 != 0:  # i = 14, 28: neither ground truth nor detections
            for _ in range(int(rng.integers(0, 3))):
                dets.append(
                    {
                        "image_id": i,
                        "category_id": int(rng.integers(1, 3)),
                        "bbox": [*rng.uniform(0, 80, 2).tolist(), 10.0, 10.0],
                        "score": round(float(rng.uniform(0, 0.8)), 1),
                    }
                )
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    groups = {g: [i for i in range(1, n + 1) if "abc"[i % 3] == g] for g in "abc"}
    return gt, dets, groups


@pytest.mark.parametrize("chunk_elements", [1, 1 << 20])
def test_equals_former_loop_on_edge_cases(chunk_elements):
    gt, dets, groups = _synthetic()
    coco_gt = make_coco(gt)
    assert any(a["iscrowd"] for a in gt["annotations"])
    settings = {"baseline": dets, "perturbed": [{**d, "score": round(d["score"] * 0.9, 2)} for d in dets]}
    samples = assert_same_samples(coco_gt, settings, groups, 300, 0, chunk_elements)
    assert len({float(v) for v in samples["baseline"]["a"]["AP"]}) > 10  # the resamples differ
    new = bootstrap(coco_gt, settings, groups, None, 200, 1, 0.95)
    assert new == reference_bootstrap(coco_gt, settings, groups, None, 200, 1, 0.95)


def test_group_without_ground_truth_and_identity_resample():
    gt, dets, groups = _synthetic(1)
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] not in groups["b"]]
    coco_gt = make_coco(gt)
    all_ids = sorted(i for ids in groups.values() for i in ids)
    rec = PerImageRecords(per_image_eval(coco_gt, dets, all_ids))
    pos = rec.position()
    p = np.array([pos[i] for i in groups["b"]])
    ap, ar = rec.resample_ap_ar(p, np.random.default_rng(0).integers(0, len(p), (20, len(p))))
    assert (ap == -1).all() and (ar == -1).all()  # like ap_ar: no ground truth, no AP
    p = np.array([pos[i] for i in groups["a"]])
    ap, ar = rec.resample_ap_ar(p, np.arange(len(p))[None])  # every image once, in order
    old = PerImageRecords(reference_per_image_eval(coco_gt, dets, all_ids))
    assert (ap[0], ar[0]) == reference_ap_ar(old, p)
