"""Scoring detections: per-group and overall COCO metrics, gaps, ratios and paired bootstrap CIs.

Everything here works from detections alone (no detector), so ``faap eval`` and
``faap eval --rescore`` score with the same code. Definitions (as in fairlearn's MetricFrame,
with a named reference pair):

* overall: one COCO evaluation over every image of the split, all groups together;
* gap (difference): ``advantaged - disadvantaged``; without a named pair ``max - min``;
* ratio: ``disadvantaged / advantaged``; without a named pair ``min / max``; ``None`` when the
  denominator is 0.

The bootstrap resamples images within each group (stratified), with the same draws for every
setting (paired); an overall resample is the union of its groups' resamples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from faapkit.evaluate.cocoeval import PerImageRecords, evaluate_split, per_image_eval
from faapkit.fairness import gap, overshoot, ratio, share_closed

# stats with CIs (when the IoU thresholds include 0.5 / 0.75 for AP50 / AP75): the all-area,
# 100-detection ones; the area- and maxDets-specific stats are point estimates only
BOOT_STATS = ("AP", "AR", "AP50", "AP75")
STAT_IOU = {"AP50": 0.5, "AP75": 0.75}


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def reported_stats(iou_thrs: Sequence[float] | None) -> list[str]:
    """The stats gaps, ratios and CIs are given for: AP50/AP75 only where their IoU is evaluated."""
    return [m for m in BOOT_STATS if m not in STAT_IOU or iou_thrs is None or STAT_IOU[m] in iou_thrs]


def score(
    coco_gt: Any,
    settings: dict[str, list[dict[str, Any]]],
    group_images: dict[str, list[int]],
    ref: tuple[str, str] | None,
    *,
    resamples: int,
    seed: int,
    confidence: float,
    iou_thrs: Sequence[float] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """``metrics`` (setting -> group -> 12 COCO stats), ``overall`` (setting -> stats), ``gaps``
    and ``ratios`` (stat -> setting, and ``change`` = perturbed - baseline), ``deltas`` and
    ``overall_deltas`` (perturbed - baseline), ``bootstrap`` (CIs of all of these) and timings."""
    t0 = time.perf_counter()
    metrics, overall = {}, {}
    for name, dets in settings.items():
        metrics[name], overall[name] = evaluate_split(coco_gt, dets, group_images, iou_thrs)
    t_coco = time.perf_counter() - t0
    stats = reported_stats(iou_thrs)
    out: dict[str, Any] = {"metrics": metrics, "overall": overall, "gaps": {}, "ratios": {}}
    for m in stats:
        out["gaps"][m] = {name: gap({g: v[m] for g, v in per.items()}, ref) for name, per in metrics.items()}
        out["ratios"][m] = {name: ratio({g: v[m] for g, v in per.items()}, ref) for name, per in metrics.items()}
    if "perturbed" in metrics:
        base, pert = metrics["baseline"], metrics["perturbed"]
        out["deltas"] = {g: {m: _sub(pert[g][m], base[g][m]) for m in base[g]} for g in base}
        out["overall_deltas"] = {m: _sub(overall["perturbed"][m], overall["baseline"][m]) for m in overall["baseline"]}
        for m in stats:
            before, after = out["gaps"][m]["baseline"], out["gaps"][m]["perturbed"]
            out["gaps"][m]["change"] = after - before
            out["gaps"][m]["share_closed"] = share_closed(before, after)
            out["gaps"][m]["overshoot"] = overshoot(before, after)
            out["ratios"][m]["change"] = _sub(out["ratios"][m]["perturbed"], out["ratios"][m]["baseline"])
    t0 = time.perf_counter()
    if resamples > 0:
        out["bootstrap"] = bootstrap(
            coco_gt,
            settings,
            group_images,
            ref,
            resamples,
            seed,
            confidence,
            full=True,
            iou_thrs=iou_thrs,
            progress=progress,
        )
    out["timing_s"] = {"coco_eval": round(t_coco, 3), "bootstrap": round(time.perf_counter() - t0, 3)}
    return out


def bootstrap(
    coco_gt: Any,
    settings: dict[str, list[dict[str, Any]]],
    group_images: dict[str, list[int]],
    ref: tuple[str, str] | None,
    resamples: int,
    seed: int,
    confidence: float,
    *,
    full: bool = False,
    iou_thrs: Sequence[float] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Paired, group-stratified image bootstrap of per-group AP/AR, gaps and the change of gap.

    ``full`` adds what ``faap eval`` reports besides: AP50/AP75 (see :func:`reported_stats`) in
    every entry, ``overall`` and ``overall_deltas`` CIs, ``ratios`` CIs (``None`` where some
    resample's denominator is 0) and ``stats``. The draws are the same either way, so the entries
    of the plain bootstrap are bit-identical in the full one."""
    all_ids = sorted(i for ids in group_images.values() for i in ids)
    records = {
        name: PerImageRecords(per_image_eval(coco_gt, dets, all_ids, iou_thrs)) for name, dets in settings.items()
    }
    pos = next(iter(records.values())).position()
    group_pos = {g: np.array([pos[i] for i in ids]) for g, ids in group_images.items()}
    rng = np.random.default_rng(seed)
    # one draw per group, shared by every setting (paired) and by the overall resample
    draws = {g: rng.integers(0, len(p), size=(resamples, len(p))) for g, p in group_pos.items()}
    stats = reported_stats(iou_thrs) if full else ["AP", "AR"]
    total = resamples * len(records) * (len(group_pos) + int(full))

    def tick(rows: int) -> None:
        if progress is not None:
            progress("bootstrap", rows, total)

    samples: dict[str, dict[str, dict[str, np.ndarray]]] = {name: {g: {} for g in group_pos} for name in records}
    for g, p in group_pos.items():
        for name, rec in records.items():
            got = rec.resample_stats(p, draws[g], progress=tick)
            samples[name][g] = {m: got[m] for m in stats}
    ci = _percentile_ci(confidence)
    out: dict[str, Any] = {
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "method": "paired group-stratified image bootstrap, percentile CIs",
        "groups": {name: {g: {m: ci(v) for m, v in s.items()} for g, s in samples[name].items()} for name in records},
        "gaps": {m: _gap_entry({name: _gap_samples(samples[name], m, ref) for name in records}, ci) for m in stats},
    }
    if "perturbed" in records:
        out["deltas"] = {
            g: {m: ci(samples["perturbed"][g][m] - samples["baseline"][g][m]) for m in stats} for g in group_pos
        }
    if not full:
        return out
    out["stats"] = stats
    out["ratios"] = {m: _ratio_entry(samples, m, ref, ci) for m in stats}
    # an overall resample: every group's resample together (the stratified draw of the split)
    offsets = np.cumsum([0] + [len(p) for p in group_pos.values()])[:-1]
    every_pos = np.concatenate(list(group_pos.values()))
    every_draw = np.concatenate([draws[g] + off for g, off in zip(group_pos, offsets, strict=True)], axis=1)
    overall = {name: rec.resample_stats(every_pos, every_draw, progress=tick) for name, rec in records.items()}
    out["overall"] = {name: {m: ci(s[m]) for m in stats} for name, s in overall.items()}
    if "perturbed" in records:
        out["overall_deltas"] = {m: ci(overall["perturbed"][m] - overall["baseline"][m]) for m in stats}
    return out


CI = Callable[[np.ndarray], list[float]]


def _percentile_ci(confidence: float) -> CI:
    """The percentile interval of a resampled statistic ``(R,) -> [lo, hi]`` at ``confidence``."""
    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100

    def ci(x: np.ndarray) -> list[float]:
        return [float(np.percentile(x, lo_q)), float(np.percentile(x, hi_q))]

    return ci


def _change_entry(per_setting: dict[str, np.ndarray], ci: CI) -> dict[str, Any]:
    """Each setting's CI and, with a perturbed setting, the CI of its change from the baseline
    (paired: the same resamples), the share of resamples where it is negative and significance."""
    entry: dict[str, Any] = {name: ci(v) for name, v in per_setting.items()}
    if "perturbed" in per_setting:
        change = per_setting["perturbed"] - per_setting["baseline"]
        lo, hi = ci(change)
        entry["change"] = [lo, hi]
        entry["p_change_negative"] = float(np.mean(change < 0))
        entry["significant"] = bool(lo > 0 or hi < 0)
    return entry


def _gap_entry(per_setting: dict[str, np.ndarray], ci: CI) -> dict[str, Any]:
    """A gap's entry (:func:`_change_entry`) and, with a perturbed setting, the CI of the share of
    the gap closed, ``1 - |after| / |before|`` in every paired resample (``None`` when some
    resample's baseline gap is 0: no share to bound there)."""
    entry = _change_entry(per_setting, ci)
    if "perturbed" in per_setting:
        before, after = per_setting["baseline"], per_setting["perturbed"]
        entry["share_closed"] = None if np.any(before == 0) else ci(1.0 - np.abs(after) / np.abs(before))
    return entry


def _gap_samples(per_group: dict[str, dict[str, np.ndarray]], m: str, ref: tuple[str, str] | None) -> np.ndarray:
    """Stat ``m``'s gap in every resample ``(R,)``: advantaged - disadvantaged, else max - min."""
    if ref is not None:
        return per_group[ref[1]][m] - per_group[ref[0]][m]
    stacked = np.stack([s[m] for s in per_group.values()])
    return stacked.max(0) - stacked.min(0)  # type: ignore[no-any-return]


def _ratio_entry(
    samples: dict[str, dict[str, dict[str, np.ndarray]]], m: str, ref: tuple[str, str] | None, ci: CI
) -> dict[str, Any] | None:
    """Stat ``m``'s ratio (disadvantaged / advantaged, else min / max) entry; None when some
    resample of some setting has a denominator of 0 (no ratio to bound)."""
    per_ratio: dict[str, np.ndarray] = {}
    for name, per_group in samples.items():
        if ref is not None:
            num, den = per_group[ref[0]][m], per_group[ref[1]][m]
        else:
            stacked = np.stack([s[m] for s in per_group.values()])
            num, den = stacked.min(0), stacked.max(0)
        if np.any(den <= 0):
            return None
        per_ratio[name] = num / den
    return _change_entry(per_ratio, ci)
