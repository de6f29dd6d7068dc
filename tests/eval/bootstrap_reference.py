"""The bootstrap as it was before it was vectorised, kept only as the reference that
pins :func:`faapkit.evaluate.evaluator.bootstrap`: one Python loop over resamples, groups and settings,
each resample re-accumulated from the per-image records of the images it drew, in draw order.

``reference_ap_ar`` is the former ``PerImageRecords.ap_ar`` verbatim (it equals
``COCOeval.stats[0]`` and ``[8]`` when every image appears once), ``reference_per_image_eval`` the
former ``per_image_eval`` (all four area ranges), ``reference_bootstrap`` the former
``evaluator.bootstrap`` (same RNG draws, same percentile rule). Used by
``tests/eval/test_bootstrap.py`` and by the ``bootstrap`` section of ``benchmarks/run.py``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools.cocoeval import COCOeval

from faapkit.evaluate.cocoeval import PerImageRecords, load_results


def reference_per_image_eval(coco_gt: Any, detections: Sequence[Mapping[str, Any]], img_ids: Sequence[int]) -> COCOeval:
    """The former ``cocoeval.per_image_eval``: one ``evaluate()`` over all images and area ranges."""
    ev = COCOeval(coco_gt, load_results(coco_gt, detections), "bbox")
    ev.params.imgIds = sorted(int(i) for i in img_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    return ev


def reference_ap_ar(rec: PerImageRecords, positions: np.ndarray) -> tuple[float, float]:
    """AP@[.5:.95] and AR@[.5:.95] (maxDets 100) over images at ``positions`` (repeats allowed)."""
    precisions, recalls = [], []
    for per_image in rec.categories:
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
            precisions.append(np.zeros((rec.n_iou, len(rec.rec_thrs))))
            recalls.append(np.zeros(rec.n_iou))
            continue
        rc = tp / npig
        pr = tp / (fp + tp + np.spacing(1))
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # precision envelope
        q = np.zeros((rec.n_iou, len(rec.rec_thrs)))
        for t in range(rec.n_iou):
            inds = np.searchsorted(rc[t], rec.rec_thrs, side="left")
            ok = inds < nd
            q[t, ok] = pr[t, inds[ok]]
        precisions.append(q)
        recalls.append(rc[:, -1])
    if not precisions:
        return -1.0, -1.0
    return float(np.mean(np.stack(precisions))), float(np.mean(np.stack(recalls)))


def reference_samples(
    records: dict[str, PerImageRecords], group_images: dict[str, list[int]], resamples: int, seed: int
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``samples[setting][group][AP|AR]``: the per-resample values, by the former loop."""
    pos = next(iter(records.values())).position()
    group_pos = {g: np.array([pos[i] for i in ids]) for g, ids in group_images.items()}
    rng = np.random.default_rng(seed)
    draws = {g: rng.integers(0, len(p), size=(resamples, len(p))) for g, p in group_pos.items()}
    samples: dict[str, dict[str, dict[str, np.ndarray]]] = {
        name: {g: {"AP": np.empty(resamples), "AR": np.empty(resamples)} for g in group_pos} for name in records
    }
    for r in range(resamples):
        for g, p in group_pos.items():
            subset = p[draws[g][r]]
            for name, rec in records.items():
                ap, ar = reference_ap_ar(rec, subset)
                samples[name][g]["AP"][r] = ap
                samples[name][g]["AR"][r] = ar
    return samples


def reference_bootstrap(
    coco_gt: Any,
    settings: dict[str, list[dict[str, Any]]],
    group_images: dict[str, list[int]],
    ref: tuple[str, str] | None,
    resamples: int,
    seed: int,
    confidence: float,
) -> dict[str, Any]:
    """Paired, group-stratified image bootstrap of per-group AP/AR, gaps and the change of gap."""
    all_ids = sorted(i for ids in group_images.values() for i in ids)
    records = {
        name: PerImageRecords(reference_per_image_eval(coco_gt, dets, all_ids)) for name, dets in settings.items()
    }
    samples = reference_samples(records, group_images, resamples, seed)
    group_pos = group_images  # only its keys (the groups, in order) are used below
    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100

    def ci(x: np.ndarray) -> list[float]:
        return [float(np.percentile(x, lo_q)), float(np.percentile(x, hi_q))]

    out: dict[str, Any] = {
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "method": "paired group-stratified image bootstrap, percentile CIs",
        "groups": {},
        "gaps": {},
    }
    for name in records:
        out["groups"][name] = {g: {m: ci(v) for m, v in s.items()} for g, s in samples[name].items()}
    for m in ("AP", "AR"):
        per_setting = {}
        for name in records:
            if ref is not None:
                per_setting[name] = samples[name][ref[1]][m] - samples[name][ref[0]][m]
            else:
                stacked = np.stack([samples[name][g][m] for g in group_pos])
                per_setting[name] = stacked.max(0) - stacked.min(0)
        entry: dict[str, Any] = {name: ci(v) for name, v in per_setting.items()}
        if "perturbed" in per_setting:
            change = per_setting["perturbed"] - per_setting["baseline"]
            lo, hi = ci(change)
            entry["change"] = [lo, hi]
            entry["p_change_negative"] = float(np.mean(change < 0))
            entry["significant"] = bool(lo > 0 or hi < 0)
            before, after = per_setting["baseline"], per_setting["perturbed"]
            shares = [1 - abs(a) / abs(b) for a, b in zip(after, before, strict=True) if b != 0]
            entry["share_closed"] = ci(np.array(shares)) if len(shares) == len(before) else None
        out["gaps"][m] = entry
    if "perturbed" in records:
        out["deltas"] = {
            g: {m: ci(samples["perturbed"][g][m] - samples["baseline"][g][m]) for m in ("AP", "AR")} for g in group_pos
        }
    return out
