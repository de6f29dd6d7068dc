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
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR",
    "AR_small",
    "AR_medium",
    "AR_large",
)
LEGACY_STAT_KEYS = (
    "AP@[0.50:0.95]_all_100",
    "AP@[0.50]_all_100",
    "AP@[0.75]_all_100",
    "AP@[0.50:0.95]_small_100",
    "AP@[0.50:0.95]_medium_100",
    "AP@[0.50:0.95]_large_100",
    "AR@[0.50:0.95]_all_1",
    "AR@[0.50:0.95]_all_10",
    "AR@[0.50:0.95]_all_100",
    "AR@[0.50:0.95]_small_100",
    "AR@[0.50:0.95]_medium_100",
    "AR@[0.50:0.95]_large_100",
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
        empty.dataset = {
            "images": coco_gt.dataset["images"],
            "annotations": [],
            "categories": coco_gt.dataset["categories"],
        }
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


def evaluate_groups(
    coco_gt: COCO, detections: Sequence[Mapping[str, Any]], group_images: Mapping[str, Sequence[int]]
) -> dict[str, dict[str, float | None]]:
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


class PerImageRecords:
    """Per-image match records of one ``evaluate()`` (area 'all', maxDets 100), ready for fast
    re-accumulation over image multisets (bootstrap)."""

    def __init__(self, ev: COCOeval) -> None:
        p = ev.params
        self.img_ids = list(p.imgIds)
        n_img = len(self.img_ids)
        self.rec_thrs = np.asarray(p.recThrs)
        self.n_iou = len(p.iouThrs)
        max_det = p.maxDets[-1]
        self.categories = []
        for k in range(len(p.catIds) if p.useCats else 1):
            base = k * len(p.areaRng) * n_img  # area index 0 = 'all'
            per_image: list[Any] = []
            for i in range(n_img):
                r = ev.evalImgs[base + i]
                if r is None:
                    per_image.append(None)
                    continue
                per_image.append(
                    (
                        np.asarray(r["dtScores"][:max_det], dtype=float),
                        np.asarray(r["dtMatches"][:, :max_det]) > 0,
                        np.asarray(r["dtIgnore"][:, :max_det]) > 0,
                        int(np.count_nonzero(np.asarray(r["gtIgnore"]) == 0)),
                    )
                )
            self.categories.append(per_image)

    def position(self) -> dict[int, int]:
        return {img: i for i, img in enumerate(self.img_ids)}

    def ap_ar(self, positions: np.ndarray) -> tuple[float, float]:
        """AP@[.5:.95] and AR@[.5:.95] (maxDets 100) over images at ``positions`` (repeats allowed);
        equals ``COCOeval.stats[0]`` and ``[8]`` when every image appears once."""
        precisions, recalls = [], []
        for per_image in self.categories:
            recs = [per_image[int(i)] for i in positions]
            recs = [r for r in recs if r is not None]
            npig = sum(r[3] for r in recs)
            if not recs or npig == 0:
                continue
            scores = np.concatenate([r[0] for r in recs])
            order = np.argsort(-scores, kind="mergesort")
            dtm = np.concatenate([r[1] for r in recs], axis=1)[:, order]
            dti = np.concatenate([r[2] for r in recs], axis=1)[:, order]
            tp = np.cumsum(dtm & ~dti, axis=1, dtype=float)
            fp = np.cumsum(~dtm & ~dti, axis=1, dtype=float)
            nd = tp.shape[1]
            if nd == 0:
                precisions.append(np.zeros((self.n_iou, len(self.rec_thrs))))
                recalls.append(np.zeros(self.n_iou))
                continue
            rc = tp / npig
            pr = tp / (fp + tp + np.spacing(1))
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope
            q = np.zeros((self.n_iou, len(self.rec_thrs)))
            for t in range(self.n_iou):
                inds = np.searchsorted(rc[t], self.rec_thrs, side="left")
                ok = inds < nd
                q[t, ok] = pr[t, inds[ok]]
            precisions.append(q)
            recalls.append(rc[:, -1])
        if not precisions:
            return -1.0, -1.0
        return float(np.mean(np.stack(precisions))), float(np.mean(np.stack(recalls)))
