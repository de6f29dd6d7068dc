"""DETR-style transforms on (PIL image, target) pairs.

Targets hold absolute xyxy ``boxes (N, 4)`` until ``Normalize``, which converts them to
normalised cxcywh as DETR expects. Train: random flip, multi-scale resize (optionally a random
crop first); eval: deterministic resize of the short side to ``min_size`` with ``max_size`` cap.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.ops import box_convert

Target = dict[str, Any]

# The per-channel statistics DETR's backbone was trained with: every image tensor in faapkit is
# ``(pixel - mean) / std`` of these (the perturbation's epsilon is in these units too).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def channel_values(values: tuple[float, float, float], like: torch.Tensor) -> torch.Tensor:
    """Per-channel ``values`` as ``(1, 3, 1, 1)`` in ``like``'s dtype and device."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def normalize(x01: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` pixels in [0, 1] -> ImageNet-normalised images."""
    return (x01 - channel_values(IMAGENET_MEAN, x01)) / channel_values(IMAGENET_STD, x01)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised ``(B, 3, H, W)`` -> pixels (in [0, 1] where ``x`` is a real image's)."""
    return x * channel_values(IMAGENET_STD, x) + channel_values(IMAGENET_MEAN, x)


def resized_hw(h: int, w: int, size: int, max_size: int | None) -> tuple[int, int]:
    """Upstream ``get_size_with_aspect_ratio``: short side ``size``, long side capped at ``max_size``."""
    if max_size is not None:
        min_orig, max_orig = float(min(w, h)), float(max(w, h))
        if max_orig / min_orig * size > max_size:
            size = round(max_size * min_orig / max_orig)
    if (w <= h and w == size) or (h <= w and h == size):
        return h, w
    if w < h:
        return int(size * h / w), size
    return size, int(size * w / h)


def resize(image: Image.Image, target: Target, size: int, max_size: int | None) -> tuple[Image.Image, Target]:
    w, h = image.size
    nh, nw = resized_hw(h, w, size, max_size)
    out = image.resize((nw, nh), Image.Resampling.BILINEAR)
    target = dict(target)
    if "boxes" in target:
        target["boxes"] = target["boxes"] * torch.tensor([nw / w, nh / h, nw / w, nh / h])
    if "area" in target:
        target["area"] = target["area"] * (nw / w) * (nh / h)
    target["size"] = torch.tensor([nh, nw])
    return out, target


def hflip(image: Image.Image, target: Target) -> tuple[Image.Image, Target]:
    w = image.size[0]
    target = dict(target)
    boxes = target["boxes"]
    target["boxes"] = boxes[:, [2, 1, 0, 3]] * torch.tensor([-1, 1, -1, 1]) + torch.tensor([w, 0, w, 0])
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), target


def crop(
    image: Image.Image, target: Target, top: int, left: int, height: int, width: int
) -> tuple[Image.Image, Target]:
    """Crop and keep boxes that still have area (upstream ``crop``)."""
    target = dict(target)
    boxes = target["boxes"] - torch.tensor([left, top, left, top])
    boxes = torch.min(boxes.reshape(-1, 2, 2), torch.tensor([width, height], dtype=torch.float32)).clamp(min=0)
    keep = (boxes[:, 1, :] > boxes[:, 0, :]).all(dim=1)
    boxes = boxes.reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    target.update(boxes=boxes[keep], labels=target["labels"][keep], area=area[keep], iscrowd=target["iscrowd"][keep])
    if "groups" in target:  # box-level groups: each box's (faapkit.data.coco.GroupedDetectionDataset)
        target["groups"] = target["groups"][keep]
    return image.crop((left, top, left + width, top + height)), target


class TrainTransform:
    """flip(0.5) -> [resize to a random scale | resize, random crop, resize] -> tensor -> normalise."""

    def __init__(self, scales: Sequence[int], max_size: int, crop_prob: float = 0.5) -> None:
        self.scales = list(scales)
        self.max_size = max_size
        self.crop_prob = crop_prob

    def __call__(
        self, image: Image.Image, target: Target, rng: random.Random, scale: int | None = None
    ) -> tuple[torch.Tensor, Target]:
        """``scale`` fixes the short side and skips the crop, so images of one original shape come
        out of one shape (shape-bucketed batches: no padding)."""
        if rng.random() < 0.5:
            image, target = hflip(image, target)
        if scale is None and rng.random() < self.crop_prob:
            w, h = image.size
            ch, cw = int(h * rng.uniform(0.7, 1.0)), int(w * rng.uniform(0.7, 1.0))
            image, target = crop(image, target, rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw)
        image, target = resize(image, target, scale if scale is not None else rng.choice(self.scales), self.max_size)
        return to_normalized_tensor(image, target)


class EvalTransform:
    """Resize the short side to ``min_size`` (long side capped at ``max_size``) -> tensor ->
    normalise. The target may be empty (an image without annotations, as ``faap apply`` reads):
    only the keys it holds are transformed, and ``size`` is always set."""

    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size, self.max_size = min_size, max_size

    def __call__(
        self, image: Image.Image, target: Target | None = None, rng: random.Random | None = None
    ) -> tuple[torch.Tensor, Target]:
        image, target = resize(image, target or {}, self.min_size, self.max_size)
        return to_normalized_tensor(image, target)


def to_normalized_tensor(image: Image.Image, target: Target) -> tuple[torch.Tensor, Target]:
    """PIL -> ImageNet-normalised ``(3, H, W)``; boxes (where the target has them) -> normalised cxcywh."""
    tensor = TF.normalize(TF.to_tensor(image), IMAGENET_MEAN, IMAGENET_STD)
    h, w = tensor.shape[-2:]
    target = dict(target)
    if "boxes" in target:
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        target["boxes"] = box_convert(target["boxes"], "xyxy", "cxcywh") / scale
    target["size"] = torch.tensor([h, w])
    return tensor, target
