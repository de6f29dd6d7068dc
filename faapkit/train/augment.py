"""Batched, differentiable colour jitter applied inside each image's valid region (research P5).

Every image draws its own factors from a seeded generator; the ops run as tensor arithmetic on the
device (no per-image Python loop). Order: brightness, contrast, saturation, hue (fixed, unlike
torchvision's random order). Hue is rotated in YIQ space, which is smooth and differentiable.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from faapkit.data.transforms import denormalize, normalize

STRENGTHS: dict[str, tuple[float, float, float, float, float]] = {
    # brightness, contrast, saturation, hue, grayscale probability
    "none": (0.0, 0.0, 0.0, 0.0, 0.0),
    "weak": (0.2, 0.2, 0.2, 0.05, 0.0),
    "medium": (0.3, 0.3, 0.3, 0.1, 0.0),
    "strong": (0.4, 0.4, 0.4, 0.1, 0.2),
}
_LUMA = (0.299, 0.587, 0.114)


def _gray(x: Tensor) -> Tensor:
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def color_jitter(images: Tensor, mask: Tensor, strength: str, generator: torch.Generator) -> Tensor:
    """``images (B,3,H,W)`` normalised, ``mask (B,H,W)`` True on padding -> jittered, same shape."""
    b_s, c_s, s_s, h_s, gray_p = STRENGTHS[strength]
    if strength == "none":
        return images
    n = images.shape[0]
    draws = torch.rand(n, 5, generator=generator).to(images.device, images.dtype)
    bright = 1 + b_s * (2 * draws[:, 0] - 1)
    contrast = 1 + c_s * (2 * draws[:, 1] - 1)
    sat = 1 + s_s * (2 * draws[:, 2] - 1)
    hue = h_s * (2 * draws[:, 3] - 1) * 2 * math.pi
    to_gray = (draws[:, 4] < gray_p).to(images.dtype)
    valid = (~mask).unsqueeze(1).to(images.dtype)
    area = valid.sum((2, 3), keepdim=True).clamp(min=1)
    x = denormalize(images).clamp(0, 1)
    x = (x * bright.view(-1, 1, 1, 1)).clamp(0, 1)
    mean = (_gray(x) * valid).sum((2, 3), keepdim=True) / area
    x = ((x - mean) * contrast.view(-1, 1, 1, 1) + mean).clamp(0, 1)
    g = _gray(x)
    x = ((x - g) * sat.view(-1, 1, 1, 1) + g).clamp(0, 1)
    x = _rotate_hue(x, hue).clamp(0, 1)
    g = _gray(x)
    x = x + (g - x) * to_gray.view(-1, 1, 1, 1)
    return normalize(x) * valid


def _rotate_hue(x: Tensor, angle: Tensor) -> Tensor:
    """Rotate chroma by ``angle (B,)`` radians in YIQ space."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=x.dtype, device=x.device
    )
    from_yiq = torch.linalg.inv(to_yiq)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], i * cos - q * sin, i * sin + q * cos], dim=1)
    return torch.einsum("ij,bjhw->bihw", from_yiq, yiq)
