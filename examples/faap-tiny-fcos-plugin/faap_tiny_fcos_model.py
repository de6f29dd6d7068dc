"""The tiny FCOS of ``faap_tiny_fcos``: torchvision's ``FCOS`` on a small convolutional backbone,
behind faapkit's detector contract by ``faapkit.plugin_api.TorchvisionDetector``, which hands the
model each image's unpadded region, its detections back as fixed-size tensors, and its loss."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator

from faapkit.plugin_api import DetectorParts, TorchvisionDetector, postprocess_detections


class TinyBackbone(nn.Module):
    """``(B, 3, H, W)`` -> two feature maps of ``out_channels`` channels, ``"0"`` at stride 8 and
    ``"1"`` at stride 16 (what FCOS's head reads, one anchor point per position)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

        def block(cin: int, cout: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(8, cout), nn.ReLU())

        self.stem = nn.Sequential(block(3, channels // 2), block(channels // 2, channels))  # stride 4
        self.level8 = block(channels, channels)
        self.level16 = block(channels, channels)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        p8 = self.level8(self.stem(x))
        return OrderedDict([("0", p8), ("1", self.level16(p8))])


def tiny_fcos_parts(channels: int = 32, num_classes: int = 2) -> DetectorParts:
    """The detector's parts; ``num_classes`` counts category ids from 0 (the benchmark's person is 1)."""
    anchors = AnchorGenerator(sizes=((32,), (64,)), aspect_ratios=((1.0,), (1.0,)))
    model = FCOS(
        TinyBackbone(channels),
        num_classes,
        min_size=128,
        max_size=213,
        anchor_generator=anchors,
        detections_per_img=16,
        score_thresh=0.05,
    )
    wrapped = TorchvisionDetector(model)
    return DetectorParts(
        model=wrapped,
        loss=wrapped.loss,  # the model's own loss: classification, bbox_regression, bbox_ctrness
        postprocess=postprocess_detections,
        num_queries=wrapped.detections_per_image,
        num_classes=num_classes,
        feature_dim=None,  # no decoder features: versions with a head refuse it
    )
