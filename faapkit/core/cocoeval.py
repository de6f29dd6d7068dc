"""Per-group COCO evaluation with pycocotools from one set of detections.

``STAT_KEYS`` name ``COCOeval.stats[0..11]`` as the research JSON did. A value of -1 (no ground
truth in that area range) is reported as ``None``, never averaged (research P24).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

STAT_KEYS = (
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR", "AR_small", "AR_medium", "AR_large",
)
LEGACY_STAT_KEYS = (
    "AP@[0.50:0.95]_all_100", "AP@[0.50]_all_100", "AP@[0.75]_all_100", "AP@[0.50:0.95]_small_100",
    "AP@[0.50:0.95]_medium_100", "AP@[0.50:0.95]_large_100", "AR@[0.50:0.95]_all_1", "AR@[0.50:0.95]_all_10",
    "AR@[0.50:0.95]_all_100", "AR@[0.50:0.95]_small_100", "AR@[0.50:0.95]_medium_100", "AR@[0.50:0.95]_large_100",
)


def make_coco(gt: Mapping[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = copy.deepcopy(dict(gt))
    coco.dataset.setdefault("info", {})
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_results(coco_gt: COCO, detections: Sequence[Mapping[str, Any]]) -> COCO:
    if not detections:
        empty = COCO()
        empty.dataset = {"images": coco_gt.dataset["images"], "annotations": [], "categories": coco_gt.dataset["categories"]}
        with contextlib.redirect_stdout(io.StringIO()):
            empty.createIndex()
        return empty
    with contextlib.redirect_stdout(io.StringIO()):
        return coco_gt.loadRes([dict(d) for d in detections])


def run_cocoeval(coco_gt: COCO, coco_dt: COCO, img_ids: Sequence[int]) -> COCOeval:
    """evaluate + accumulate + summarize on ``img_ids`` (quietly)."""
    ev = COCOeval(coco_gt, coco_dt, "bbox")
    ev.params.imgIds = sorted(int(i) for i in img_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def stats_dict(stats: Sequence[float]) -> dict[str, float | None]:
    return {k: (None if float(v) < 0 else float(v)) for k, v in zip(STAT_KEYS, stats, strict=True)}


def evaluate_groups(coco_gt: COCO, detections: Sequence[Mapping[str, Any]],
                    group_images: Mapping[str, Sequence[int]]) -> dict[str, dict[str, float | None]]:
    """COCO metrics per group from the same detections: one ``COCOeval`` per group restricted to
    that group's image ids (identical to evaluating each group alone)."""
    coco_dt = load_results(coco_gt, detections)
    return {g: stats_dict(run_cocoeval(coco_gt, coco_dt, ids).stats) for g, ids in group_images.items()}


def per_image_eval(coco_gt: COCO, detections: Sequence[Mapping[str, Any]], img_ids: Sequence[int]) -> COCOeval:
    """One ``evaluate()`` over all images; its ``evalImgs`` feed :func:`accumulate_subset`."""
    ev = COCOeval(coco_gt, load_results(coco_gt, detections), "bbox")
    ev.params.imgIds = sorted(int(i) for i in img_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    return ev


def accumulate_subset(ev: COCOeval, image_positions: np.ndarray) -> tuple[float, float]:
    """AP@[.5:.95] and AR@[.5:.95] (area all, maxDets 100) over a multiset of images.

    ``image_positions`` index ``ev.params.imgIds`` and may repeat (bootstrap). This re-does
    ``COCOeval.accumulate`` for area 'all' and maxDets 100 exactly, concatenating per-image records.
    """
    p = ev.params
    n_img = len(p.imgIds)
    a_all = [tuple(a) for a in p.areaRng].index(tuple(p.areaRng[0]))
    max_det = p.maxDets[-1]
    iou_t = len(p.iouThrs)
    precisions, recalls = [], []
    for k in range(len(p.catIds) if p.useCats else 1):
        base = k * len(p.areaRng) * n_img + a_all * n_img
        records = [ev.evalImgs[base + int(i)] for i in image_positions]
        records = [r for r in records if r is not None]
        if not records:
            continue
        scores = np.concatenate([r["dtScores"][:max_det] for r in records])
        order = np.argsort(-scores, kind="mergesort")
        dtm = np.concatenate([r["dtMatches"][:, :max_det] for r in records], axis=1)[:, order]
        dt_ig = np.concatenate([r["dtIgnore"][:, :max_det] for r in records], axis=1)[:, order]
        gt_ig = np.concatenate([r["gtIgnore"] for r in records])
        npig = int(np.count_nonzero(gt_ig == 0))
        if npig == 0:
            continue
        tps = np.logical_and(dtm, np.logical_not(dt_ig))
        fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
        tp_sum = np.cumsum(tps, axis=1).astype(float)
        fp_sum = np.cumsum(fps, axis=1).astype(float)
        prec_t = np.zeros((iou_t, len(p.recThrs)))
        rec_t = np.zeros(iou_t)
        for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum, strict=True)):
            nd = len(tp)
            rc = tp / npig
            pr = tp / (fp + tp + np.spacing(1))
            rec_t[t] = rc[-1] if nd else 0
            pr = pr.tolist()
            for i in range(nd - 1, 0, -1):
                if pr[i] > pr[i - 1]:
                    pr[i - 1] = pr[i]
            inds = np.searchsorted(rc, p.recThrs, side="left")
            q = np.zeros(len(p.recThrs))
            for ri, pi in enumerate(inds):
                if pi < nd:
                    q[ri] = pr[pi]
            prec_t[t] = q
        precisions.append(prec_t)
        recalls.append(rec_t)
    if not precisions:
        return -1.0, -1.0
    return float(np.mean(np.stack(precisions))), float(np.mean(np.stack(recalls)))
