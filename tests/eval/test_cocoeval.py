"""Per-group metrics equal pycocotools on each group alone; the fast accumulate equals COCOeval."""

import numpy as np
import pytest

from faapkit.evaluate.cocoeval import (
    PerImageRecords,
    evaluate_groups,
    load_results,
    make_coco,
    per_image_eval,
    run_cocoeval,
)


def _toy(seed=0, n=40):
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n + 1):
        images.append({"id": i, "width": 100, "height": 100, "file_name": f"{i}.jpg"})
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(10, 40, 2)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
            jitter = rng.normal(0, 4 if i % 2 else 1, 4)
            dets.append(
                {
                    "image_id": i,
                    "category_id": 1,
                    "bbox": list(np.array([x, y, w, h]) + jitter),
                    "score": float(rng.uniform(0.3, 1)),
                }
            )
        dets.append({"image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5], "score": float(rng.uniform(0, 0.5))})
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}, dets


def test_group_restriction_equals_group_alone():
    gt, dets = _toy()
    groups = {"odd": [i for i in range(1, 41) if i % 2], "even": [i for i in range(1, 41) if not i % 2]}
    together = evaluate_groups(make_coco(gt), dets, groups)
    for g, ids in groups.items():
        alone_gt = {
            "images": [im for im in gt["images"] if im["id"] in ids],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in ids],
            "categories": gt["categories"],
        }
        coco = make_coco(alone_gt)
        ev = run_cocoeval(coco, load_results(coco, [d for d in dets if d["image_id"] in ids]), ids)
        assert together[g]["AP"] == pytest.approx(ev.stats[0], abs=1e-12)
        assert together[g]["AR"] == pytest.approx(ev.stats[8], abs=1e-12)
    assert together["even"]["AP"] > together["odd"]["AP"]


def test_fast_accumulate_equals_cocoeval_and_handles_repeats():
    gt, dets = _toy(1)
    coco = make_coco(gt)
    ids = list(range(1, 41))
    rec = PerImageRecords(per_image_eval(coco, dets, ids))
    ev = run_cocoeval(coco, load_results(coco, dets), ids)
    once = np.arange(40)
    ap, ar = rec.resample_ap_ar(once, once[None])  # one resample: every image once
    assert ap[0] == pytest.approx(ev.stats[0], abs=1e-12) and ar[0] == pytest.approx(ev.stats[8], abs=1e-12)
    ap2, ar2 = rec.resample_ap_ar(np.r_[once, once], np.arange(80)[None])  # every image twice: same curve
    assert ap2[0] == pytest.approx(ap[0], abs=1e-9) and ar2[0] == pytest.approx(ar[0], abs=1e-12)
