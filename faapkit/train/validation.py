"""Validation during training: per-group AP on the val split, for checkpoint selection only.

Cheap settings: shape-bucketed batches, fp32, only the two groups' COCOeval (of box-level
groups as ``faap eval`` scores them). The unperturbed baseline is scored once, on first use;
every validated epoch scores the generator in eval mode and returns ``{"AP": {group: ap},
"AR": {...}, "gap_AP": adv - dis, "advantaged", "disadvantaged", "images", "group_images":
{group: count}}`` and, with ``resamples`` > 0, the paired bootstrap CIs (the draws and rule of
``faap eval``: :func:`faapkit.evaluate.scoring.bootstrap`, seed 0, 95%) of the AP gap
(``gap_AP_ci``), of the unperturbed gap (``gap_AP_baseline_ci``, the same at every validation)
and of the change from it (``gap_AP_change_ci``). The report's curves draw them; selection
reads the point estimates only.

The same images are scored at every validation, so the collated batches and, for a generator
with a ``clean_context`` (the detector-aware one: the frozen detector's features of the clean
image), that context are kept in memory after the first pass, up to ``cache_bytes``; batches
past the budget are loaded and computed again each time. Kept or recomputed, the numbers are
the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from faapkit.data.batching import Batch, eval_batches
from faapkit.data.coco import DatasetSplit, GroupedDetectionDataset, require_groups
from faapkit.data.transforms import EvalTransform
from faapkit.detr.frozen import FrozenDetector
from faapkit.evaluate.cocoeval import evaluate_groups, make_coco
from faapkit.evaluate.inference import batch_records, make_eval_loader
from faapkit.evaluate.scoring import bootstrap
from faapkit.fairness import gap
from faapkit.generators.perturb import apply_perturbation

DEFAULT_CACHE_BYTES = 1 << 30
CONFIDENCE = 0.95


def _nbytes(*tensors: Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


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
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        resamples: int = 0,
    ) -> None:
        require_groups(data, [disadvantaged, advantaged])
        self.data = data
        self.detector = detector
        self.device = device
        self.disadvantaged, self.advantaged = disadvantaged, advantaged
        self.dataset = GroupedDetectionDataset(data, EvalTransform(min_size, max_size))
        self.batches = eval_batches(data.records, batch_size, min_size, max_size)
        # box-level groups: each group on the images holding its boxes, the other groups' boxes
        # ignored there (faapkit.evaluate.cocoeval), as faap eval scores them
        images = data.group_images()
        self.group_images = {g: images[g] for g in (disadvantaged, advantaged)}
        self.coco_gt = make_coco(data.coco_gt)
        self.cache_bytes = cache_bytes
        self._kept: list[tuple[Batch, Tensor | None]] = []
        self._kept_bytes = 0
        self._context_owner: type | None = None
        self._baseline: dict[str, Any] | None = None
        self._baseline_dets: list[dict[str, Any]] = []
        self.resamples = resamples
        # called with (images scored, images) after each batch: the trainer's progress display
        self.progress: Callable[[int, int], None] | None = None

    @property
    def baseline(self) -> dict[str, Any]:
        """The unperturbed scores, computed on first use (a run that never validates never pays)."""
        if self._baseline is None:
            self._baseline = self.score(None)
        return self._baseline

    def score(self, generator: nn.Module | None) -> dict[str, Any]:
        """Per-group AP/AR of the val split, clean (``None``) or perturbed by ``generator``."""
        was_training = generator.training if generator is not None else False
        if generator is not None:
            generator.eval()
        try:
            dets = self._detect(generator)
        finally:
            if generator is not None:
                generator.train(was_training)
        metrics = evaluate_groups(self.coco_gt, dets, self.group_images)
        ap = {g: m["AP"] for g, m in metrics.items()}
        out = {
            "AP": ap,
            "AR": {g: m["AR"] for g, m in metrics.items()},
            # the evaluator's rule: a group without ground truth has no AP and is an error, never 0
            "gap_AP": gap(ap, (self.disadvantaged, self.advantaged)),
            "advantaged": self.advantaged,
            "disadvantaged": self.disadvantaged,
            "images": len(self.data.records),
            "group_images": {g: len(ids) for g, ids in self.group_images.items()},
        }
        if generator is None:
            self._baseline_dets = dets
        elif self.resamples > 0:
            out.update(self._gap_cis(dets))
        return out

    def _gap_cis(self, dets: list[dict[str, Any]]) -> dict[str, Any]:
        """The paired bootstrap CIs of the AP gap perturbed by ``dets``, unperturbed, and of the change."""
        _ = self.baseline  # scored first: its detections are the pair's other half
        boot = bootstrap(
            self.coco_gt,
            {"baseline": self._baseline_dets, "perturbed": dets},
            self.group_images,
            (self.disadvantaged, self.advantaged),
            self.resamples,
            0,
            CONFIDENCE,
        )
        entry = boot["gaps"]["AP"]
        return {
            "gap_AP_ci": entry["perturbed"],
            "gap_AP_baseline_ci": entry["baseline"],
            "gap_AP_change_ci": entry["change"],
            "bootstrap": {"resamples": self.resamples, "seed": 0, "confidence": CONFIDENCE},
        }

    @torch.no_grad()
    def _detect(self, generator: nn.Module | None) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        done = 0
        for batch, context in self._batches(generator):
            images = batch.images
            if generator is not None:
                images = apply_perturbation(generator, images, batch.mask, context)[0]
            sizes = torch.stack([t["orig_size"] for t in batch.targets])
            image_ids = [int(t["image_id"]) for t in batch.targets]
            records.extend(batch_records(self.detector, images, batch.mask, sizes, image_ids))
            done += len(image_ids)
            if self.progress is not None:
                self.progress(done, len(self.data.records))
        return records

    def _batches(self, generator: nn.Module | None) -> Iterator[tuple[Batch, Tensor | None]]:
        """Every val batch on the device with the generator's clean context (None when scoring
        clean or when the generator has none): the kept prefix first, then the rest, loaded now
        and kept while the budget allows."""
        context_of = getattr(generator, "clean_context", None) if generator is not None else None
        if context_of is not None and self._context_owner not in (None, type(generator)):
            self._kept = [(batch, None) for batch, _ in self._kept]  # another generator's context
            self._kept_bytes = sum(_nbytes(b.images, b.mask) for b, _ in self._kept)
        if context_of is not None:
            self._context_owner = type(generator)
        for i, (batch, context) in enumerate(self._kept):
            if context_of is None:
                yield batch, None
                continue
            if context is None:
                context = context_of(batch.images)
                if context is not None and self._kept_bytes + _nbytes(context) <= self.cache_bytes:
                    self._kept[i] = (batch, context)
                    self._kept_bytes += _nbytes(context)
            yield batch, context
        rest = self.batches[len(self._kept) :]
        if not rest:
            return
        keeping = True
        for batch in make_eval_loader(self.dataset, rest):
            batch = batch.to(self.device)
            context = context_of(batch.images) if context_of is not None else None
            size = _nbytes(batch.images, batch.mask, context)
            keeping = keeping and self._kept_bytes + size <= self.cache_bytes
            if keeping:
                self._kept.append((batch, context))
                self._kept_bytes += size
            yield batch, context
