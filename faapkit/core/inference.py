"""Batched inference producing COCO result records (all queries kept, no score threshold)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from faapkit.core.perturb import apply_perturbation
from faapkit.data.batching import Batch, collate


def autocast_for(device: torch.device, enabled: bool) -> Any:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def make_eval_loader(
    dataset: Any, batches: Sequence[Sequence[int]], num_workers: int = 0, pin: bool = False
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_sampler=list(batches),
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin,
        persistent_workers=num_workers > 0,
    )


@torch.no_grad()
def detect(
    detector: nn.Module,
    loader: DataLoader,
    *,
    device: torch.device,
    generator: nn.Module | None = None,
    amp: bool = False,
) -> list[dict[str, Any]]:
    """Run the (optionally perturbed) detector over ``loader``; one record per query and image:
    ``{"image_id", "category_id", "bbox": [x, y, w, h] in original pixels, "score"}``."""
    records: list[dict[str, Any]] = []
    if generator is not None:
        generator.eval()
    for batch in loader:
        batch = batch.to(device, non_blocking=True) if isinstance(batch, Batch) else batch
        with autocast_for(device, amp):
            images = batch.images
            if generator is not None:
                images, _ = apply_perturbation(generator, images, batch.mask)
            outputs = detector(images, batch.mask)
        sizes = torch.stack([t["orig_size"] for t in batch.targets]).to(device)
        for target, result in zip(batch.targets, detector.postprocess(outputs, sizes), strict=True):
            xyxy = result["boxes"]
            boxes = torch.cat([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], dim=1).cpu().tolist()
            image_id = int(target["image_id"])
            for box, score, label in zip(
                boxes, result["scores"].cpu().tolist(), result["labels"].cpu().tolist(), strict=True
            ):
                records.append({"image_id": image_id, "category_id": int(label), "bbox": box, "score": float(score)})
    return records
