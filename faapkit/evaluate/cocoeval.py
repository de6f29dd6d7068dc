"""Per-group COCO evaluation with pycocotools (or faster-coco-eval for the 12 stats:
:mod:`faapkit.evaluate.coco_backend`) from one set of detections.

``STAT_KEYS`` name ``COCOeval.stats[0..11]`` as the research JSON did. A value of -1 (no ground
truth in that area range, or ``AP50``/``AP75`` when ``iou_thrs`` lacks 0.5/0.75) is reported as
``None``, never averaged (research P24). ``iou_thrs`` (None = COCO's 0.50:0.05:0.95) is the set
of IoU thresholds AP and AR average over.

Box-level groups (the ground truth's ``"group_level": "box"``, each box holding its ``"group"``:
:mod:`faapkit.data.box_groups`) are scored as FACET and COCO practice do: group g on the images
holding at least one g box, the other groups' boxes there being ignore regions. A detection that
matches one of them (IoU at the threshold, COCO's one-to-one matching, which prefers boxes that
are not ignored) counts as neither a true nor a false positive, and those boxes are no misses
(:class:`GroupCOCOeval`). ``iscrowd`` is not used for this: a crowd region's IoU is the
detection's overlap with it (intersection over the detection's area) and it may absorb any number
of detections, which would change what counts as a match.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from faapkit.evaluate.coco_backend import PYCOCOTOOLS, fast_evaluator

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


def box_level(coco_gt: COCO) -> bool:
    """Whether the ground truth's groups are its boxes' (see the module)."""
    return bool(coco_gt.dataset.get("group_level") == "box")


class GroupCOCOeval(COCOeval):
    """``COCOeval`` (bbox) of one box-level ``group`` (``None``: every box counts): after
    ``_prepare`` (which sets each box's ``ignore`` from ``iscrowd``), the boxes of other groups get
    ``ignore = 1``, so ``evaluateImg`` matches detections to them last and drops those matches and
    the boxes themselves from the counts. The flagged boxes are copies: the ground truth's own
    annotations stay as they are for the next evaluation."""

    def __init__(self, coco_gt: COCO, coco_dt: COCO, group: str | None = None) -> None:
        super().__init__(coco_gt, coco_dt, "bbox")
        self.group = group

    def _prepare(self) -> None:
        super()._prepare()
        if self.group is None:
            return
        for key, gts in self._gts.items():
            self._gts[key] = [g if g.get("group", self.group) == self.group else {**g, "ignore": 1} for g in gts]


def _params(ev: Any, img_ids: Sequence[int], iou_thrs: Sequence[float] | None) -> None:
    ev.params.imgIds = sorted(int(i) for i in img_ids)
    if iou_thrs is not None:  # None keeps pycocotools' own array, bit for bit
        ev.params.iouThrs = np.asarray(iou_thrs, dtype=float)


def run_cocoeval(
    coco_gt: COCO,
    coco_dt: COCO,
    img_ids: Sequence[int],
    iou_thrs: Sequence[float] | None = None,
    group: str | None = None,
    backend: str = PYCOCOTOOLS,
) -> Any:
    """evaluate + accumulate + summarize on ``img_ids`` (quietly) by ``backend``
    (:mod:`faapkit.evaluate.coco_backend`); with a box-level ``group``, the other groups' boxes
    are ignore regions (:class:`GroupCOCOeval`)."""
    if backend == PYCOCOTOOLS:
        ev = GroupCOCOeval(coco_gt, coco_dt, group)
    else:
        ev = fast_evaluator(backend, coco_gt, coco_dt, group)
    _params(ev, img_ids, iou_thrs)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def stats_dict(stats: Sequence[float]) -> dict[str, float | None]:
    return {k: (None if float(v) < 0 else float(v)) for k, v in zip(STAT_KEYS, stats, strict=True)}


def evaluate_groups(
    coco_gt: COCO,
    detections: Sequence[Mapping[str, Any]],
    group_images: Mapping[str, Sequence[int]],
    iou_thrs: Sequence[float] | None = None,
    backend: str = PYCOCOTOOLS,
) -> dict[str, dict[str, float | None]]:
    """COCO metrics per group from the same detections: one ``COCOeval`` per group restricted to
    that group's image ids (identical to evaluating each group alone; box-level groups with the
    other groups' boxes ignored)."""
    coco_dt = load_results(coco_gt, detections)
    return _per_group(coco_gt, coco_dt, group_images, iou_thrs, backend)


def _per_group(
    coco_gt: COCO,
    coco_dt: COCO,
    group_images: Mapping[str, Sequence[int]],
    iou_thrs: Sequence[float] | None,
    backend: str,
) -> dict[str, dict[str, float | None]]:
    by_box = box_level(coco_gt)
    return {
        g: stats_dict(run_cocoeval(coco_gt, coco_dt, ids, iou_thrs, g if by_box else None, backend).stats)
        for g, ids in group_images.items()
    }


def evaluate_split(
    coco_gt: COCO,
    detections: Sequence[Mapping[str, Any]],
    group_images: Mapping[str, Sequence[int]],
    iou_thrs: Sequence[float] | None = None,
    backend: str = PYCOCOTOOLS,
) -> tuple[dict[str, dict[str, float | None]], dict[str, float | None]]:
    """Per-group metrics and the overall ones: one ``COCOeval`` over every image of the split
    (all groups together, every box counted), as the split would be scored without groups."""
    coco_dt = load_results(coco_gt, detections)
    per = _per_group(coco_gt, coco_dt, group_images, iou_thrs, backend)
    every = sorted({i for ids in group_images.values() for i in ids})  # a mixed image once
    return per, stats_dict(run_cocoeval(coco_gt, coco_dt, every, iou_thrs, None, backend).stats)


def per_image_eval(
    coco_gt: COCO,
    detections: Sequence[Mapping[str, Any]],
    img_ids: Sequence[int],
    iou_thrs: Sequence[float] | None = None,
    group: str | None = None,
) -> COCOeval:
    """One pycocotools ``evaluate()`` over all images for area 'all' only (an image's match
    records do not depend on the other area ranges); its ``evalImgs`` feed
    :class:`PerImageRecords` whatever ``eval.coco_backend`` is (faster-coco-eval keeps them in
    C++). With a box-level ``group``, the other groups' boxes are ignore regions
    (:class:`GroupCOCOeval`)."""
    ev = GroupCOCOeval(coco_gt, load_results(coco_gt, detections), group)
    _params(ev, img_ids, iou_thrs)
    ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ev.params.areaRngLbl[:1]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    return ev


class PerImageRecords:
    """Per-image match records of one ``evaluate()`` (area 'all', maxDets 100), ready for fast
    re-accumulation over image multisets (bootstrap): per category, per image, ``None`` (no
    ground truth and no detection) or (scores, matched ``(T, D)``, ignored ``(T, D)``, number of
    ground-truth boxes not ignored)."""

    def __init__(self, ev: COCOeval) -> None:
        p = ev.params
        self.img_ids = list(p.imgIds)
        n_img = len(self.img_ids)
        self.rec_thrs = np.asarray(p.recThrs)
        self.iou_thrs = np.asarray(p.iouThrs)
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

    def resample_ap_ar(
        self, positions: np.ndarray, draws: np.ndarray, chunk_elements: int = 1 << 20
    ) -> tuple[np.ndarray, np.ndarray]:
        """AP@[.5:.95] and AR@[.5:.95] (maxDets 100) of many resamples at once (see
        :meth:`resample_stats`)."""
        stats = self.resample_stats(positions, draws, chunk_elements)
        return stats["AP"], stats["AR"]

    def resample_stats(
        self,
        positions: np.ndarray,
        draws: np.ndarray,
        chunk_elements: int = 1 << 20,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """``AP``, ``AR`` (averaged over the IoU thresholds, maxDets 100) and, where 0.5 / 0.75 are
        among the thresholds, ``AP50`` / ``AP75`` of many resamples at once, each ``(resamples,)``:
        resample ``r`` holds the images at ``positions[draws[r]]`` (repeats allowed). AP and AR are
        for every ``r`` bit for bit what ``COCOeval.accumulate`` computes from the records of those
        images concatenated in draw order (``tests/eval/bootstrap_reference.py``: the former
        per-resample loop); with every image once, ``COCOeval.stats[0]`` and ``[8]``. -1 where no
        image has ground truth. ``progress`` is called with the number of resamples done per chunk.

        Each resample weights an image by how often it was drawn; one pass over the detections
        sorted by score then accumulates every resample (see :class:`_ResamplePlan`). Resamples
        are done in chunks whose ``(resamples, columns)`` arrays hold about ``chunk_elements``
        values (8 MiB each by default), which bounds memory."""
        positions = np.asarray(positions)
        draws = np.asarray(draws)
        n_res, n = draws.shape[0], len(positions)
        plans = [_ResamplePlan(self, [per_image[int(i)] for i in positions]) for per_image in self.categories]
        at = {name: np.flatnonzero(self.iou_thrs == thr) for name, thr in (("AP50", 0.5), ("AP75", 0.75))}
        out = {name: np.empty(n_res) for name in ("AP", "AR", *(k for k, t in at.items() if len(t)))}
        chunk = max(16, chunk_elements // max([1, n] + [plan.max_columns for plan in plans]))
        for lo in range(0, n_res, chunk):
            d = draws[lo : lo + chunk]
            rows = len(d)
            # weights[b, j]: how often resample b drew image j
            weights = np.bincount((d + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n).reshape(rows, n)
            curves = [plan.curves(weights, d) for plan in plans]
            q = np.stack([c[0] for c in curves], axis=1)  # (B, K, T, R)
            rc = np.stack([c[1] for c in curves], axis=1)  # (B, K, T)
            valid = np.stack([c[2] for c in curves], axis=1)  # (B, K)
            parts = {"AP": q, "AR": rc, **{k: q[:, :, t] for k, t in at.items() if len(t)}}
            # the per-resample accumulation takes np.mean of the stacked (K', T, R) curves: a
            # row-wise mean over the same contiguous values is the same pairwise summation
            full = valid.all(axis=1)
            n_full = int(full.sum())
            for name, x in parts.items():
                block = out[name][lo : lo + rows]
                block[full] = np.mean(np.ascontiguousarray(x[full]).reshape(n_full, x[0].size), axis=1)
                for b in np.flatnonzero(~full):  # some category without ground truth in this resample
                    k = valid[b]
                    block[b] = float(np.mean(x[b][k])) if k.any() else -1.0
            if progress is not None:
                progress(rows)
        return out


class _ResamplePlan:
    """One category of :class:`PerImageRecords` over a fixed list of images, prepared for weighted
    re-accumulation (``weights[b, j]`` = how often resample ``b`` drew image ``j``).

    Why this equals accumulating each resample's records concatenated in draw order, as
    ``COCOeval.accumulate`` does (stable sort by score, cumulative true and false positives,
    precision envelope, first point reaching each recall threshold): with the
    detections sorted by score, the copies of one drawn detection are adjacent, and a point of the
    precision/recall path inside such a run is either dominated (false positives lower precision at
    equal recall) or lies on a rising run of true positives whose envelope value is that of the
    run's end. So the interpolated precision at a recall threshold is the envelope over the points
    just after each run of true positives, taken at the first of them whose true-positive count
    reaches the threshold's count, and only those points ("columns") are computed. Their
    true- and false-positive counts are exact integer sums of weights, so every division is the
    same operation on the same numbers as in the per-resample accumulation. Ignored detections
    (matched to crowd or ignored ground truth) only repeat a point and count as neither.

    Equal scores are the exception when they join detections of which some are true and some
    false positives at one IoU threshold: the stable sort then orders the tie by draw order, so
    such a tie ("block") gets one column per detection of each drawn occurrence, in draw order,
    built per resample.
    """

    def __init__(self, owner: PerImageRecords, recs: list[Any]) -> None:
        self.owner = owner
        n = len(recs)
        n_iou, self.n_rec = owner.n_iou, len(owner.rec_thrs)
        self.gt = np.array([0 if r is None else r[3] for r in recs], dtype=float)
        has = [j for j, r in enumerate(recs) if r is not None and len(r[0])]
        if has:
            scores = np.concatenate([recs[j][0] for j in has])
            img = np.concatenate([np.full(len(recs[j][0]), j) for j in has])
            dtm = np.concatenate([recs[j][1] for j in has], axis=1)
            dti = np.concatenate([recs[j][2] for j in has], axis=1)
        else:
            scores, img = np.zeros(0), np.zeros(0, dtype=int)
            dtm = dti = np.zeros((n_iou, 0), dtype=bool)
        order = np.argsort(-scores, kind="mergesort")  # stable: image order, then order within the image
        scores, img, dtm, dti = scores[order], img[order], dtm[:, order], dti[:, order]
        self.n_det = len(scores)
        rank = np.arange(self.n_det)
        self.tp = dtm & ~dti
        self.counted = ~dti  # true or false positive
        fp = ~dtm & ~dti
        # blocks: ties that mix a true and a false positive at some threshold
        self.blocks: list[tuple[int, np.ndarray, np.ndarray]] = []  # (start rank, images, dets per image)
        in_block = np.zeros(self.n_det, dtype=bool)
        if self.n_det > 1:
            starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
            for s, e in zip(starts, np.r_[starts[1:], self.n_det], strict=True):
                if e - s > 1 and (self.tp[:, s:e].any(1) & fp[:, s:e].any(1)).any():
                    in_block[s:e] = True
                    imgs = np.unique(img[s:e])
                    per = [rank[s:e][img[s:e] == j] for j in imgs]
                    table = np.full((len(imgs), max(len(x) for x in per)), -1)
                    for i, x in enumerate(per):
                        table[i, : len(x)] = x
                    self.blocks.append((int(s), imgs, table))
        # columns outside blocks: the true positives of each threshold
        self.tp_rank = [rank[self.tp[t] & ~in_block] for t in range(n_iou)]
        self.tp_img = [img[r] for r in self.tp_rank]
        # for chunk sizing: a block's slots are its detections times about how often they are drawn
        self.max_columns = max([len(r) for r in self.tp_rank] + [0]) + int(in_block.sum()) * 4
        # per image, how many detections rank below each query: query r + 1 for a true positive at
        # rank r (itself included), the start rank for a block (the detections before it)
        block_starts = np.array([blk[0] for blk in self.blocks], dtype=int)
        query = np.unique(np.concatenate([*(r + 1 for r in self.tp_rank), block_starts]))
        self.tp_col = [np.searchsorted(query, r + 1) for r in self.tp_rank]
        self.block_col = np.searchsorted(query, block_starts)
        self.below = _counts_before(img, rank, n, query)
        self.ignored_below = [
            _counts_before(img[dti[t]], rank[dti[t]], n, query) if dti[t].any() else None for t in range(n_iou)
        ]

    def curves(self, weights: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Interpolated precision ``(B, T, R)``, final recall ``(B, T)`` and whether the category
        has ground truth ``(B,)`` for every resample (``weights`` ``(B, n)`` integer draw counts;
        ``draws`` its rows)."""
        owner = self.owner
        rows, n_iou = len(weights), owner.n_iou
        weights_f = weights.astype(float)
        npig = weights_f @ self.gt
        valid = npig > 0
        npig_safe = np.where(valid, npig, 1.0)
        q = np.zeros((rows, n_iou, self.n_rec))
        recall = np.zeros((rows, n_iou))
        if not self.n_det:
            return q, recall, valid
        # (B, R): the least tp count whose recall reaches each threshold (0 for the threshold 0)
        need = _min_counts(npig_safe, owner.rec_thrs).astype(np.int64)
        below = weights_f @ self.below  # (B, U): detection copies ranked below each query
        slots = [self._block_slots(blk, draws) for blk in self.blocks]  # (B, S) detection ranks, -1 none
        eps = np.spacing(1)
        lane = np.arange(rows)[:, None]
        for t in range(n_iou):
            # a column's point: tp = true-positive copies so far, tp + fp = counted copies so far
            counted = below if self.ignored_below[t] is None else below - weights_f @ self.ignored_below[t]
            if slots:
                w, den = self._with_blocks(t, weights, counted, slots)
            else:
                w, den = weights[:, self.tp_img[t]], counted[:, self.tp_col[t]]
            cols = w.shape[1]
            if not cols:
                continue
            tp_int = np.cumsum(w, axis=1)  # exact integer running sums (faster than in floats)
            tp = tp_int.astype(float)
            den += eps  # (fp + tp) + eps as in COCOeval.accumulate: the same sum of the same integers
            pr = np.divide(tp, den, out=den)
            # precision envelope, kept in reversed column order: env[b, k] = env_rev[b, cols - 1 - k]
            env_rev = np.maximum.accumulate(pr[:, ::-1], axis=1)
            recall[:, t] = tp[:, -1] / npig_safe
            # the first column whose tp reaches c: the number of columns with tp <= c - 1
            levels = int(tp_int[:, -1].max()) + 1
            at_most = np.bincount((tp_int + levels * lane).ravel(), minlength=rows * levels)
            np.cumsum(at_most.reshape(rows, levels), axis=1, out=at_most.reshape(rows, levels))
            idx = at_most[np.clip(need - 1, 0, levels - 1) + levels * lane]
            idx[need == 0] = 0
            idx[need > levels] = cols  # more than the resample's true positives: not reached
            found = idx < cols
            q[:, t] = np.where(found, env_rev.ravel()[np.maximum(cols - 1 - idx, 0) + cols * lane], 0.0)
        q[~valid] = 0.0
        recall[~valid] = 0.0
        return q, recall, valid

    def _with_blocks(
        self, t: int, weights: np.ndarray, counted: np.ndarray, slots: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Weights and counted copies ``(B, columns)`` of threshold ``t``'s columns, each block's
        slots put at the block's rank (one gather each from the per-image and per-slot values)."""
        keys, w_parts, den_parts = [self.tp_rank[t]], [weights], [counted]
        w_src, den_src = [self.tp_img[t]], [self.tp_col[t]]
        w_at, den_at = weights.shape[1], counted.shape[1]
        for (start, _, _), col, det in zip(self.blocks, self.block_col, slots, strict=True):
            ok = det >= 0
            w_parts.append((self.tp[t, det] & ok).astype(weights.dtype))
            den_parts.append(counted[:, col, None] + np.cumsum(self.counted[t, det] & ok, axis=1))
            keys.append(np.full(det.shape[1], start))
            w_src.append(w_at + np.arange(det.shape[1]))
            den_src.append(den_at + np.arange(det.shape[1]))
            w_at += det.shape[1]
            den_at += det.shape[1]
        order = np.argsort(np.concatenate(keys), kind="stable")  # rank order; slots keep draw order
        w = np.concatenate(w_parts, axis=1)[:, np.concatenate(w_src)[order]]
        den = np.concatenate(den_parts, axis=1)[:, np.concatenate(den_src)[order]]
        return w, den

    def _block_slots(self, block: tuple[int, np.ndarray, np.ndarray], draws: np.ndarray) -> np.ndarray:
        """``(B, S)``: the block's detections (ranks) in the order the per-resample accumulation
        meets them: each draw of one of its images, in draw order, brings that image's detections
        of the block; ``-1`` pads."""
        _, imgs, table = block
        drawn = np.isin(draws, imgs)
        most = max(int(drawn.sum(axis=1).max()), 1)
        first = np.argsort(~drawn, axis=1, kind="stable")[:, :most]  # positions of the block's draws
        occ = np.take_along_axis(draws, first, axis=1)
        hit = np.take_along_axis(drawn, first, axis=1)
        row = np.minimum(np.searchsorted(imgs, occ), len(imgs) - 1)
        det = np.where(hit[:, :, None], table[row], -1)  # (B, most, detections per image)
        return det.reshape(len(draws), -1)


def _counts_before(img: np.ndarray, rank: np.ndarray, n_img: int, query: np.ndarray) -> np.ndarray:
    """``(n_img, len(query))``: how many of the items (image ``img``, sort rank ``rank``) of each
    image rank below each query rank."""
    span = int(max(rank.max(initial=-1), query.max(initial=-1))) + 2
    keys = np.sort(img.astype(np.int64) * span + rank)
    first = np.searchsorted(keys, np.arange(n_img) * span)
    at = np.searchsorted(keys, np.arange(n_img)[:, None] * span + query[None, :])
    return (at - first[:, None]).astype(float)


def _min_counts(npig: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray:
    """``(B, R)``: the least integer ``c`` with ``c / npig[b] >= rec_thrs[r]`` in float64 (the
    comparison ``searchsorted(tp / npig, rec_thrs)`` makes)."""
    n = npig[:, None]
    c = np.ceil(rec_thrs[None, :] * n)
    for _ in range(4):
        up = c / n < rec_thrs
        down = (c >= 1) & ((c - 1) / n >= rec_thrs)
        if not (up.any() or down.any()):
            return c
        c = c + up - down
    raise AssertionError("recall threshold counts did not settle")
