"""The headroom probe: how far can *any* perturbation of a given epsilon move each group's AP?

An **oracle**, never a method: for every image it takes ``steps`` signed-gradient steps on the
DETR set loss computed against that image's own ground truth (projected gradient descent, clipped
to ``|delta| <= epsilon`` in normalised units, applied to the valid region only and kept inside
the [0, 1] pixel range, exactly as a generator's output is applied). A generator sees no ground
truth, so the oracle's lift bounds what a generator of the same epsilon could achieve.

Batches are shape-bucketed (no padding) and the frozen detector treats every image of a batch
independently, so a batched step equals a per-image step: the set loss normalises by the batch's
box count, which scales but never flips a gradient's sign.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from faapkit.data.batching import eval_batches
from faapkit.data.coco import DatasetSplit, GroupedDetectionDataset
from faapkit.data.transforms import EvalTransform
from faapkit.detr.frozen import FrozenDetector
from faapkit.errors import ConfigError
from faapkit.evaluate.cocoeval import evaluate_groups, make_coco
from faapkit.evaluate.inference import coco_records, make_eval_loader
from faapkit.evaluate.requests import HeadroomRequest
from faapkit.evaluate.scoring import _sub, bootstrap
from faapkit.fairness import gap, reference_groups
from faapkit.generators.perturb import clamp_normalized, signed_descent

SCHEMA = "faapkit.headroom/1"


def oracle_delta(
    detector: FrozenDetector,
    images: Tensor,
    mask: Tensor,
    targets: list[dict[str, Tensor]],
    *,
    epsilon: float,
    steps: int,
    step_size: float,
) -> Tensor:
    """``(B, 3, H, W)`` delta that lowers the set loss of ``images`` against ``targets``:
    ``steps`` signed-gradient steps of ``step_size`` from zero, clipped to ``[-epsilon, epsilon]``."""

    def set_loss(perturbed: Tensor) -> Tensor:
        return detector.detection_loss(detector.loss_outputs(perturbed, mask), targets)[0]

    return signed_descent(set_loss, images, mask, epsilon=epsilon, steps=steps, step_size=step_size)


@torch.no_grad()
def clean_and_oracle_detections(req: HeadroomRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """COCO records of every image, clean and under its oracle perturbation (one data pass)."""
    input_size = req.detector.sizes(req.min_size, req.max_size)
    ds = GroupedDetectionDataset(req.data, EvalTransform(*input_size))
    loader = make_eval_loader(ds, eval_batches(req.data.records, req.eval_config.batch_size, *input_size))
    clean: list[dict[str, Any]] = []
    oracle: list[dict[str, Any]] = []
    for batch in loader:
        batch = batch.to(req.device)
        sizes = torch.stack([t["orig_size"] for t in batch.targets]).to(req.device)
        ids = [int(t["image_id"]) for t in batch.targets]
        clean.extend(coco_records(req.detector.postprocess(req.detector(batch.images, batch.mask), sizes), ids))
        delta = oracle_delta(
            req.detector,
            batch.images,
            batch.mask,
            batch.targets,
            epsilon=req.epsilon,
            steps=req.steps,
            step_size=req.step_size,
        )
        perturbed = clamp_normalized(batch.images + delta) * (~batch.mask).unsqueeze(1)
        oracle.extend(coco_records(req.detector.postprocess(req.detector(perturbed, batch.mask), sizes), ids))
    return clean, oracle


def refuse_box_level(data: DatasetSplit) -> None:
    """The probe lifts whole images, which a mixed image (people of both groups) cannot be."""
    if data.group_level == "box":
        raise ConfigError(
            f"{data.root}: split '{data.split}' has box-level '{data.split_by}' groups (on each person's box); "
            "the probe lifts whole images, so it needs one group per image"
        )


def probe_headroom(req: HeadroomRequest) -> dict[str, Any]:
    """Per-group AP/AR clean vs oracle with paired bootstrap CIs, and the gap when only the
    disadvantaged group gets its oracle (the most any generator could close the gap)."""
    req.check()
    started = time.perf_counter()
    data = req.data
    if len(data.groups) < 2:
        raise ConfigError(f"split '{data.split}' has a single group for '{data.split_by}': nothing to compare")
    refuse_box_level(data)
    ref = reference_groups(data.groups, req.disadvantaged, req.advantaged)
    group_images = {g: [r.image_id for r in data.records if r.group == g] for g in data.groups}
    clean, oracle = clean_and_oracle_detections(req)
    coco_gt = make_coco(data.coco_gt)
    base = evaluate_groups(coco_gt, clean, group_images)
    lifted = evaluate_groups(coco_gt, oracle, group_images)
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "what": "oracle upper bound: per-image PGD on the set loss with ground truth; not a method",
        "split": data.split,
        "split_by": data.split_by,
        "oracle": {"epsilon": req.epsilon, "steps": req.steps, "step_size": req.step_size},
        "detector": {"name": req.detector.name, "sha256": req.detector.sha256},
        "input_size": dict(zip(("min_size", "max_size"), req.detector.sizes(req.min_size, req.max_size), strict=True)),
        "dataset": {"root": str(data.root), "fingerprint": data.fingerprint},
        "groups": {g: {"images": len(ids)} for g, ids in group_images.items()},
        "metrics": {"baseline": base, "oracle": lifted},
        "lift": {g: {m: _sub(lifted[g][m], base[g][m]) for m in ("AP", "AR", "AP50")} for g in data.groups},
    }
    if req.eval_config.bootstrap > 0:
        boot = _paired_bootstrap(req, coco_gt, clean, oracle, group_images, ref)
        result["lift_ci"] = boot.get("deltas", {})
        result["oracle_ci"] = boot["groups"]["perturbed"]
        result["baseline_ci"] = boot["groups"]["baseline"]
    if ref is not None:
        result["gap_AP"] = _gap_entry(req, coco_gt, clean, oracle, group_images, ref, base)
    result["timing_s"] = round(time.perf_counter() - started, 3)
    return result


def _paired_bootstrap(
    req: HeadroomRequest,
    coco_gt: Any,
    clean: list[dict[str, Any]],
    perturbed: list[dict[str, Any]],
    group_images: dict[str, list[Any]],
    ref: tuple[str, str] | None,
) -> dict[str, Any]:
    """The clean detections against ``perturbed`` ones, on the same resamples."""
    settings = {"baseline": clean, "perturbed": perturbed}
    cfg = req.eval_config
    return bootstrap(coco_gt, settings, group_images, ref, cfg.bootstrap, cfg.seed, cfg.confidence)


def _gap_entry(
    req: HeadroomRequest,
    coco_gt: Any,
    clean: list[dict[str, Any]],
    oracle: list[dict[str, Any]],
    group_images: dict[str, list[Any]],
    ref: tuple[str, str],
    base: dict[str, Any],
) -> dict[str, Any]:
    """The AP gap when only the disadvantaged group's images get their oracle perturbation."""
    disadvantaged = set(group_images[ref[0]])
    only_dis = [d for d in oracle if d["image_id"] in disadvantaged] + [
        d for d in clean if d["image_id"] not in disadvantaged
    ]
    mixed = evaluate_groups(coco_gt, only_dis, group_images)
    entry: dict[str, Any] = {
        "disadvantaged": ref[0],
        "advantaged": ref[1],
        "baseline": gap({g: v["AP"] for g, v in base.items()}, ref),
        "oracle_on_disadvantaged": gap({g: v["AP"] for g, v in mixed.items()}, ref),
    }
    entry["change"] = entry["oracle_on_disadvantaged"] - entry["baseline"]
    if req.eval_config.bootstrap > 0:
        entry["change_ci"] = _paired_bootstrap(req, coco_gt, clean, only_dis, group_images, ref)["gaps"]["AP"]["change"]
    return entry
