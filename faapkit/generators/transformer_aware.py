"""The ``transformer-aware`` generator: ``detector-aware`` that also reads what the frozen DETR's
transformer makes of the clean image.

Maps normalised images ``(B, 3, H, W)`` to ``delta (B, 3, H, W)``, ``|delta| <= epsilon``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faapkit.generators.subpixel import DetectorAwareGenerator, pad_to_multiple_of_4, rms_per_position


class TransformerAwareGenerator(DetectorAwareGenerator):
    """:class:`DetectorAwareGenerator` plus the encoder's memory ``(B, D, h, w)`` (RMS-normalised
    per position) and where the last decoder layer looks ``(B, 1, h, w)`` (its cross-attention
    weighted by each query's confidence, mean 1 per image), both of the clean image and without
    gradient, projected by a zero-initialised 1x1 convolution onto the 1/4-resolution features
    (``FrozenDetector.transformer_view``).

    Why (docs/effect-diagnosis.md, section 12): the backbone's features say what the image holds;
    the memory says what the encoder related it to, and the attention map says which regions the
    detector's queries rely on when they fire. With them the generator reaches the parts of a
    weak detection that decide it; docs/effect-diagnosis.md gives the measurements (the share of
    the gap closed, the advantaged group's AP and the cost of a training step, over five seeds).
    """

    def __init__(self, epsilon: float = 0.09, *, detector: Any, channels: int = 32, tile: int = 16) -> None:
        super().__init__(epsilon, detector=detector, channels=channels, tile=tile)
        self.memory_proj = nn.Conv2d(int(detector.transformer_dim) + 1, channels, 1)
        for param in self.memory_proj.parameters():
            nn.init.zeros_(param)

    def clean_context(self, x: Tensor) -> Tensor:
        """``(B, C + D + 1, H'/s, W'/s)``: the backbone features (as ``detector-aware``), the
        normalised memory and the attended map of the padded clean image."""
        features, memory, attended = self.detector.transformer_view(pad_to_multiple_of_4(x))
        return torch.cat([rms_per_position(features), rms_per_position(memory), attended], 1).to(x.dtype)

    def project_context(self, clean_context: Tensor, size: tuple[int, int]) -> Tensor:
        split = self.context_proj.in_channels
        projected = self.context_proj(clean_context[:, :split]) + self.memory_proj(clean_context[:, split:])
        return F.interpolate(projected, size=size, mode="bilinear", align_corners=False)
