"""Scoring detections: per-group and overall COCO metrics, gaps, ratios and paired bootstrap CIs.

Everything here works from detections alone (no detector), so ``faap eval`` and
``faap eval --rescore`` score with the same code. Definitions (as in fairlearn's MetricFrame,
with a named reference pair):

* overall: one COCO evaluation over every image of the split, all groups together;
* gap, ratio and share closed: :mod:`faapkit.fairness`'s rules, applied to the point estimates
  and to each bootstrap resample alike (a CI exists where the rule is defined in every resample:
  :func:`faapkit.fairness.defined_in_every_resample`).

The bootstrap resamples images within each group (stratified), with the same draws for every
setting (paired); an overall resample is the union of its groups' resamples. With box-level
groups an image may hold several groups; the strata are then the sets of groups an image holds
(``female``, ``female+male``, ``male``): each stratum is resampled once per resample, and a mixed
image drawn there is scored in each of its groups in that same resample (so the groups share
those draws, as the settings do). With image-level groups the strata are the groups and the draws
are those of a plain group-stratified bootstrap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from faapkit.evaluate.coco_backend import PYCOCOTOOLS
from faapkit.evaluate.cocoeval import PerImageRecords, box_level, evaluate_split, per_image_eval
from faapkit.fairness import defined_in_every_resample, gap, overshoot, ratio, share_closed

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
    backend: str = PYCOCOTOOLS,
) -> dict[str, Any]:
    """``metrics`` (setting -> group -> 12 COCO stats, computed by ``backend``:
    :mod:`faapkit.evaluate.coco_backend`), ``overall`` (setting -> stats), ``gaps`` and
    ``ratios`` (stat -> setting, and ``change`` = perturbed - baseline), ``deltas`` and
    ``overall_deltas`` (perturbed - baseline), ``bootstrap`` (CIs of all of these; from
    pycocotools' per-image records with either backend) and timings."""
    t0 = time.perf_counter()
    metrics, overall = {}, {}
    for name, dets in settings.items():
        metrics[name], overall[name] = evaluate_split(coco_gt, dets, group_images, iou_thrs, backend)
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
    group_records, every_records = _records(coco_gt, settings, group_images, iou_thrs, full)
    strata = _strata(group_images)
    rng = np.random.default_rng(seed)
    # one draw per stratum, shared by every setting (paired), every group holding the stratum and
    # the overall resample
    draws = [rng.integers(0, len(ids), size=(resamples, len(ids))) for _, ids in strata]
    stats = reported_stats(iou_thrs) if full else ["AP", "AR"]
    total = resamples * len(settings) * (len(group_images) + int(full))

    def tick(rows: int) -> None:
        if progress is not None:
            progress("bootstrap", rows, total)

    samples: dict[str, dict[str, dict[str, np.ndarray]]] = {name: {} for name in settings}
    for g in group_images:
        ids, draw = _joined(strata, draws, g)
        for name in settings:
            rec = group_records[name][g]
            pos = rec.position()
            got = rec.resample_stats(np.array([pos[i] for i in ids]), draw, progress=tick)
            samples[name][g] = {m: got[m] for m in stats}
    ci = _percentile_ci(confidence)
    strata_text = "the groups an image holds" if box_level(coco_gt) else "group"
    out: dict[str, Any] = {
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "method": f"paired {strata_text}-stratified image bootstrap, percentile CIs",
        "groups": {name: {g: {m: ci(v) for m, v in s.items()} for g, s in samples[name].items()} for name in settings},
        "gaps": {m: _gap_entry({name: _gap_samples(samples[name], m, ref) for name in settings}, ci) for m in stats},
    }
    if "perturbed" in settings:
        out["deltas"] = {
            g: {m: ci(samples["perturbed"][g][m] - samples["baseline"][g][m]) for m in stats} for g in group_images
        }
    if not full:
        return out
    out["stats"] = stats
    out["ratios"] = {m: _ratio_entry(samples, m, ref, ci) for m in stats}
    # an overall resample: every stratum's resample together (the stratified draw of the split)
    every_ids, every_draw = _joined(strata, draws, None)
    overall = {
        name: rec.resample_stats(np.array([rec.position()[i] for i in every_ids]), every_draw, progress=tick)
        for name, rec in every_records.items()
    }
    out["overall"] = {name: {m: ci(s[m]) for m in stats} for name, s in overall.items()}
    if "perturbed" in settings:
        out["overall_deltas"] = {m: ci(overall["perturbed"][m] - overall["baseline"][m]) for m in stats}
    return out


def _records(
    coco_gt: Any,
    settings: dict[str, list[dict[str, Any]]],
    group_images: dict[str, list[int]],
    iou_thrs: Sequence[float] | None,
    full: bool,
) -> tuple[dict[str, dict[str, PerImageRecords]], dict[str, PerImageRecords]]:
    """Per setting, each group's per-image match records and the overall ones (box level: only
    when ``full``). At image level one ``evaluate()`` over every image serves all of them (an
    image's records do not depend on the others); box-level groups need one per group, the other
    groups' boxes ignored there."""
    all_ids = sorted({i for ids in group_images.values() for i in ids})
    by_box = box_level(coco_gt)
    every = {
        name: PerImageRecords(per_image_eval(coco_gt, dets, all_ids, iou_thrs))
        for name, dets in settings.items()
        if full or not by_box
    }
    if not by_box:
        return {name: dict.fromkeys(group_images, rec) for name, rec in every.items()}, every
    per_group = {
        name: {g: PerImageRecords(per_image_eval(coco_gt, dets, ids, iou_thrs, g)) for g, ids in group_images.items()}
        for name, dets in settings.items()
    }
    return per_group, every


def _strata(group_images: dict[str, list[int]]) -> list[tuple[tuple[str, ...], list[int]]]:
    """The images by the groups that hold them (``(groups, image ids)``), in order of first
    appearance: at image level one stratum per group, its images in the group's order."""
    held: dict[int, list[str]] = {}
    for g, ids in group_images.items():
        for i in ids:
            held.setdefault(i, []).append(g)
    strata: dict[tuple[str, ...], list[int]] = {}
    for g, ids in group_images.items():
        for i in ids:
            if held[i][0] == g:  # each image once, under the first group holding it
                strata.setdefault(tuple(held[i]), []).append(i)
    return list(strata.items())


def _joined(
    strata: list[tuple[tuple[str, ...], list[int]]], draws: list[np.ndarray], group: str | None
) -> tuple[list[int], np.ndarray]:
    """The image ids of the strata that hold ``group`` (``None``: every stratum) and their draws
    side by side ``(resamples, images)``, each stratum's indices shifted to its place."""
    ids: list[int] = []
    parts: list[np.ndarray] = []
    for (held, s_ids), draw in zip(strata, draws, strict=True):
        if group is None or group in held:
            parts.append(draw + len(ids))
            ids.extend(s_ids)
    return ids, np.concatenate(parts, axis=1)


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
    the gap closed (:func:`faapkit.fairness.share_closed` of every paired resample; ``None`` when
    some resample has no share: :func:`faapkit.fairness.defined_in_every_resample`)."""
    entry = _change_entry(per_setting, ci)
    if "perturbed" in per_setting:
        pairs = zip(per_setting["baseline"].tolist(), per_setting["perturbed"].tolist(), strict=True)
        shares = defined_in_every_resample(share_closed(before, after) for before, after in pairs)
        entry["share_closed"] = None if shares is None else ci(np.array(shares))
    return entry


def _resamples(per_group: dict[str, dict[str, np.ndarray]], m: str) -> list[dict[str, float]]:
    """Stat ``m`` of every group in each resample: one ``{group: value}`` per resample."""
    columns = {g: s[m].tolist() for g, s in per_group.items()}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _gap_samples(per_group: dict[str, dict[str, np.ndarray]], m: str, ref: tuple[str, str] | None) -> np.ndarray:
    """Stat ``m``'s gap (:func:`faapkit.fairness.gap`) in every resample ``(R,)``."""
    return np.array([gap(values, ref) for values in _resamples(per_group, m)])


def _ratio_entry(
    samples: dict[str, dict[str, dict[str, np.ndarray]]], m: str, ref: tuple[str, str] | None, ci: CI
) -> dict[str, Any] | None:
    """Stat ``m``'s ratio (:func:`faapkit.fairness.ratio`) entry; ``None`` when some resample of
    some setting has no ratio (:func:`faapkit.fairness.defined_in_every_resample`)."""
    per_ratio: dict[str, np.ndarray] = {}
    for name, per_group in samples.items():
        ratios = defined_in_every_resample(ratio(values, ref) for values in _resamples(per_group, m))
        if ratios is None:
            return None
        per_ratio[name] = np.array(ratios)
    return _change_entry(per_ratio, ci)
