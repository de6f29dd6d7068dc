"""Padded image batches with masks (``NestedTensor``), differentiable w.r.t. the images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


class NestedTensor:
    """``tensors (B, 3, H, W)`` padded batch and ``mask (B, H, W)``, True on padding."""

    def __init__(self, tensors: Tensor, mask: Tensor) -> None:
        self.tensors = tensors
        self.mask = mask

    def to(self, device: torch.device | str, non_blocking: bool = False) -> NestedTensor:
        return NestedTensor(
            self.tensors.to(device, non_blocking=non_blocking), self.mask.to(device, non_blocking=non_blocking)
        )

    def decompose(self) -> tuple[Tensor, Tensor]:
        return self.tensors, self.mask

    def __len__(self) -> int:
        return int(self.tensors.shape[0])


def nested_tensor_from_tensor_list(images: Sequence[Tensor], size_divisibility: int = 0) -> NestedTensor:
    """Pad ``[(3, H_i, W_i)]`` to the batch maximum (bottom/right), like upstream, but with ``F.pad``
    so it works on tensors that require grad (upstream's in-place ``copy_`` into a fresh buffer does
    not keep the graph on every torch version)."""
    max_h = max(int(img.shape[-2]) for img in images)
    max_w = max(int(img.shape[-1]) for img in images)
    if size_divisibility > 1:
        max_h = (max_h + size_divisibility - 1) // size_divisibility * size_divisibility
        max_w = (max_w + size_divisibility - 1) // size_divisibility * size_divisibility
    padded, masks = [], []
    for img in images:
        h, w = int(img.shape[-2]), int(img.shape[-1])
        padded.append(F.pad(img, (0, max_w - w, 0, max_h - h)))
        m = torch.ones((max_h, max_w), dtype=torch.bool, device=img.device)
        m[:h, :w] = False
        masks.append(m)
    return NestedTensor(torch.stack(padded), torch.stack(masks))


def mask_to_feature(mask: Tensor, size: Sequence[int]) -> Tensor:
    """Downsample a padding mask ``(B, H, W)`` to a feature map size with nearest interpolation
    (exactly upstream's rule)."""
    return F.interpolate(mask[None].float(), size=tuple(size)).to(torch.bool)[0]
