"""Validation during training: per-group AP on the val split, for checkpoint selection only.

Cheap settings: no bootstrap, shape-bucketed batches, fp32. The unperturbed baseline is scored
once, on first use; every validated epoch scores the generator in eval mode and returns
``{"AP": {group: ap}, "AR": {...}, "gap_AP": adv - dis, "advantaged", "disadvantaged"}``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from faapkit.data.batching import eval_batches
from faapkit.data.coco import DatasetSplit, GroupedDetectionDataset, require_groups
from faapkit.data.transforms import EvalTransform
from faapkit.detr.frozen import FrozenDetector
from faapkit.evaluate.cocoeval import evaluate_groups, make_coco
from faapkit.evaluate.inference import detect_settings, make_eval_loader
from faapkit.fairness import gap


class Validator:
    def __init__(
        self,
        data: DatasetSplit,
        detector: FrozenDetector,
        device: torch.device,
        *,
        disadvantaged: str,
        advantaged: str,
        min_size: int,
        max_size: int,
        batch_size: int = 8,
    ) -> None:
        require_groups(data, [disadvantaged, advantaged])
        self.data = data
        self.detector = detector
        self.device = device
        self.disadvantaged, self.advantaged = disadvantaged, advantaged
        self.dataset = GroupedDetectionDataset(data, EvalTransform(min_size, max_size))
        self.batches = eval_batches(data.records, batch_size, min_size, max_size)
        self.group_images = {g: [r.image_id for r in data.records if r.group == g] for g in (disadvantaged, advantaged)}
        self.coco_gt = make_coco(data.coco_gt)
        self._baseline: dict[str, Any] | None = None

    @property
    def baseline(self) -> dict[str, Any]:
        """The unperturbed scores, computed on first use (a run that never validates never pays)."""
        if self._baseline is None:
            self._baseline = self.score(None)
        return self._baseline

    def score(self, generator: nn.Module | None) -> dict[str, Any]:
        """Per-group AP/AR of the val split, clean (``None``) or perturbed by ``generator``."""
        was_training = generator.training if generator is not None else False
        loader = make_eval_loader(self.dataset, self.batches)
        dets = detect_settings(self.detector, loader, [generator], device=self.device)[0]
        if generator is not None:
            generator.train(was_training)
        metrics = evaluate_groups(self.coco_gt, dets, self.group_images)
        ap = {g: m["AP"] for g, m in metrics.items()}
        return {
            "AP": ap,
            "AR": {g: m["AR"] for g, m in metrics.items()},
            # the evaluator's rule: a group without ground truth has no AP and is an error, never 0
            "gap_AP": gap(ap, (self.disadvantaged, self.advantaged)),
            "advantaged": self.advantaged,
            "disadvantaged": self.disadvantaged,
            "images": len(self.data.records),
        }
