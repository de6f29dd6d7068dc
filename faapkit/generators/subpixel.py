"""The sub-pixel perturbation generators (``subpixel``, ``detector-aware``; the research U-Net lives
in ``perturb.py``).

A generator maps normalised images ``(B, 3, H, W)`` to ``delta (B, 3, H, W)`` with
``|delta| <= epsilon``; ``epsilon`` is a plain attribute the engine's schedule sets every epoch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SubPixelGenerator(nn.Module):
    """Features at 1/4 resolution, delta at full resolution through a sub-pixel (pixel-shuffle) head.

    ``(B, 3, H, W)`` -> stride-2 ``(B, c/2, H/2, W/2)`` -> stride-2 ``(B, c, H/4, W/4)`` -> three 3x3
    convolutions (one dilated, two residual) -> 3x3 head to ``(B, 3*16, H/4, W/4)`` ->
    pixel-shuffle to ``(B, 3, H, W)``: every 4x4 pixel cell gets its own learned pattern, chosen by
    content. Added before the bound: a 3x3 convolution of the input at full resolution (81
    multiply-adds per pixel) and a learned ``(3, tile, tile)`` pattern repeated from the top-left
    corner (aligned with the detector's stride grid when ``tile`` is a multiple of it). Then
    ``delta = epsilon * tanh(.)``.

    Why this shape (docs/effect-diagnosis.md): the perturbations that move DETR's AP are high
    frequency; blurred or computed at 1/4 resolution and upsampled they lose nearly all their
    effect, so a bilinear-upsampling generator cannot express them, while the research U-Net pays
    for two full-resolution stages. No normalisation layers: an image's delta must not depend on
    its batch-mates. The head, the full-resolution path and the tile start at zero, so training
    starts from the clean image rather than a random pattern at the full bound.
    """

    def __init__(self, epsilon: float = 0.09, channels: int = 32, tile: int = 16) -> None:
        super().__init__()
        c = channels
        self.stem = nn.Conv2d(3, c // 2, 3, 2, 1)
        self.down = nn.Conv2d(c // 2, c, 3, 2, 1)
        self.mid1 = nn.Conv2d(c, c, 3, 1, 1)
        self.mid2 = nn.Conv2d(c, c, 3, 1, 2, dilation=2)
        self.mid3 = nn.Conv2d(c, c, 3, 1, 1)
        self.head = nn.Conv2d(c, 3 * 16, 3, 1, 1)
        self.full = nn.Conv2d(3, 3, 3, 1, 1)
        self.tile = nn.Parameter(torch.zeros(1, 3, tile, tile))
        for param in (*self.head.parameters(), *self.full.parameters()):
            nn.init.zeros_(param)
        self.channels = c
        self.epsilon = float(epsilon)

    def forward(self, x: Tensor, clean_context: Tensor | None = None) -> Tensor:
        """``clean_context``: what :meth:`clean_context` returns for ``x``, when the caller keeps it
        (the same images scored every validation); computed here otherwise."""
        h, w = x.shape[-2:]
        padded = pad_to_multiple_of_4(x)
        f = F.relu(self.down(F.relu(self.stem(padded))))
        if clean_context is None:
            clean_context = self.clean_context(x)
        if clean_context is not None:
            f = f + self.project_context(clean_context, (f.shape[-2], f.shape[-1]))
        f = F.relu(self.mid1(f))
        f = F.relu(self.mid2(f)) + f
        f = F.relu(self.mid3(f)) + f
        out = F.pixel_shuffle(self.head(f), 4)[..., :h, :w] + self.full(x)
        t = self.tile.shape[-1]
        # ceiling division on non-negative sizes only: ONNX exporters translate a floor division
        # of a negative size as a truncation, and ``-(-h // t)`` came out one tile short
        out = out + self.tile.repeat(1, 1, (h + t - 1) // t, (w + t - 1) // t)[..., :h, :w]
        return self.epsilon * torch.tanh(out)

    def clean_context(self, x: Tensor) -> Tensor | None:
        """The part of the extra input that depends on the clean image ``x (B, 3, H, W)`` alone and
        on no trained weight, so a caller may keep it between epochs; none here."""
        return None

    def project_context(self, clean_context: Tensor, size: tuple[int, int]) -> Tensor:
        """``clean_context`` as a term added to the 1/4-resolution features ``(B, c, *size)``."""
        raise NotImplementedError


def rms_per_position(features: Tensor) -> Tensor:
    """``(B, C, h, w)`` divided by its RMS over channels at each position."""
    return features * torch.rsqrt(features.pow(2).mean(1, keepdim=True) + 1e-6)


def pad_to_multiple_of_4(x: Tensor) -> Tensor:
    """``x (B, 3, H, W)`` zero-padded on the bottom and right to multiples of 4."""
    pad_h, pad_w = (4 - x.shape[-2] % 4) % 4, (4 - x.shape[-1] % 4) % 4  # non-negative operands: see forward
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


class DetectorAwareGenerator(SubPixelGenerator):
    """:class:`SubPixelGenerator` that also sees the frozen detector's view of the clean image.

    The detector's backbone features ``(B, C, H/s, W/s)`` of the input (no gradient) are
    normalised per position (RMS over channels: their scale varies by orders of magnitude between
    positions, and unnormalised they saturate the ``tanh`` bound within a few steps), projected by
    a zero-initialised 1x1 convolution and resized to 1/4 resolution onto the generator's
    features. Why (docs/effect-diagnosis.md, section 7): from pixels alone a small generator
    cannot tell a faint figure's outline from background texture of the same contrast, so what
    it learns is mostly an image-independent pattern that helps every group alike; the detector's
    own features say where it sees figures, and with them the learned delta becomes specific to
    the images and regions that need it. The detector is held outside the module tree, so its
    weights are neither trained nor saved with the generator.
    """

    def __init__(self, epsilon: float = 0.09, *, detector: Any, channels: int = 32, tile: int = 16) -> None:
        super().__init__(epsilon, channels, tile)
        self._detector = (detector,)  # a tuple: not a registered submodule
        self.context_proj = nn.Conv2d(int(detector.image_feature_dim), channels, 1)
        for param in self.context_proj.parameters():
            nn.init.zeros_(param)

    @property
    def detector(self) -> Any:
        """The frozen detector this generator reads (held outside the module tree)."""
        return self._detector[0]

    def clean_context(self, x: Tensor) -> Tensor:
        """The detector's features of the padded clean image, RMS-normalised per position:
        ``(B, C, H'/s, W'/s)`` with ``H', W'`` rounded up to multiples of 4."""
        return rms_per_position(self.detector.image_features(pad_to_multiple_of_4(x)).to(x.dtype))

    def project_context(self, clean_context: Tensor, size: tuple[int, int]) -> Tensor:
        # projected at the detector's stride, then resized: the same as resizing first (a 1x1
        # convolution commutes with a bilinear resize, whose weights sum to 1) without resizing
        # C channels to 1/4 resolution (2048 for a ResNet-50 DETR: ~0.5 GB per 800 px image)
        projected = self.context_proj(clean_context)
        return F.interpolate(projected, size=size, mode="bilinear", align_corners=False)
