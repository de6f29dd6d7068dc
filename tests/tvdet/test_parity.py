"""faapkit's torchvision detectors give torchvision's own detections, bit for bit.

The reference is torchvision's model as its builder makes it when it loads its COCO weights (the
builder's ``weights is not None`` branch, restated here from torchvision's source rather than
through faapkit's conversion): seeded random weights, saved as a torchvision checkpoint file (a
bare state dict under torchvision's keys), loaded by faapkit by key. faapkit hands its detector
an ImageNet-normalised, padded batch; torchvision is called on the ``[0, 1]`` images themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torchvision.models import detection, mobilenet_v3_large, resnet50
from torchvision.models.detection._utils import overwrite_eps
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

from faapkit.data.transforms import denormalize, normalize
from faapkit.detr.frozen import FrozenDetector, load_detector
from faapkit.errors import CheckpointError
from faapkit.plugins.specs import DetectorSpec

BUILD = "faapkit.tvdet.build:torchvision_parts"
# small inputs keep the ResNet-50 models fast; SSDlite's transform has a fixed 320 x 320 size
# (random weights score every class low: the models keep their detections with a 0 score threshold)
SMALL: dict[str, dict[str, Any]] = {
    "fasterrcnn_resnet50_fpn": {"min_size": 128, "max_size": 192},
    "fasterrcnn_mobilenet_v3_large_fpn": {"min_size": 128, "max_size": 192, "box_score_thresh": 0.0},
    "fasterrcnn_mobilenet_v3_large_320_fpn": {"min_size": 128, "max_size": 192, "box_score_thresh": 0.0},
    "retinanet_resnet50_fpn": {"min_size": 128, "max_size": 192, "score_thresh": 0.0},
    "fcos_resnet50_fpn": {"min_size": 128, "max_size": 192, "score_thresh": 0.0},
    "ssdlite320_mobilenet_v3_large": {},
}
SLOW = {"fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn"}


def _resnet_fpn(p6p7: bool) -> nn.Module:
    body = resnet50(norm_layer=FrozenBatchNorm2d)
    if not p6p7:
        return _resnet_fpn_extractor(body, 3)
    return _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))


def _mobilenet_faster_rcnn(**kwargs: Any) -> nn.Module:
    backbone = _mobilenet_extractor(mobilenet_v3_large(norm_layer=FrozenBatchNorm2d), True, 3)
    anchors = AnchorGenerator(((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3)
    return detection.FasterRCNN(backbone, 91, rpn_anchor_generator=anchors, **{"rpn_score_thresh": 0.05, **kwargs})


def pretrained_layout(name: str, **kwargs: Any) -> nn.Module:
    """torchvision's ``name`` as built for its COCO weights (random until loaded), in eval mode."""
    if name == "fasterrcnn_resnet50_fpn":
        model = detection.FasterRCNN(_resnet_fpn(False), 91, **kwargs)
        overwrite_eps(model, 0.0)
    elif name == "fasterrcnn_mobilenet_v3_large_fpn":
        model = _mobilenet_faster_rcnn(**kwargs)
    elif name == "fasterrcnn_mobilenet_v3_large_320_fpn":
        low = {"min_size": 320, "max_size": 640, "rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 150}
        model = _mobilenet_faster_rcnn(**{**low, **kwargs})
    elif name == "retinanet_resnet50_fpn":
        model = detection.RetinaNet(_resnet_fpn(True), 91, **kwargs)
        overwrite_eps(model, 0.0)
    elif name == "fcos_resnet50_fpn":
        model = detection.FCOS(_resnet_fpn(True), 91, **kwargs)
    else:  # SSDlite keeps BatchNorm2d with or without weights
        model = detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, **kwargs)
    return model.eval()


def saved_reference(name: str, tmp_path: Path) -> tuple[nn.Module, Path]:
    """The seeded reference and its state dict saved as torchvision saves its checkpoint files."""
    torch.manual_seed(0)
    reference = pretrained_layout(name, **SMALL[name])
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def faapkit_detector(name: str, path: Path | None) -> FrozenDetector:
    spec = DetectorSpec(name=name, factory=BUILD, arch={"model": name, **SMALL[name]})
    return load_detector(spec, path)


def padded_batch(images: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """faapkit's batch of ``[0, 1]`` images: normalised, zero-padded bottom and right, with its mask."""
    h = max(i.shape[1] for i in images)
    w = max(i.shape[2] for i in images)
    x = torch.zeros(len(images), 3, h, w)
    mask = torch.ones(len(images), h, w, dtype=torch.bool)
    for k, image in enumerate(images):
        x[k, :, : image.shape[1], : image.shape[2]] = normalize(image[None])[0]
        mask[k, : image.shape[1], : image.shape[2]] = False
    return x, mask


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SMALL])
def test_detections_equal_torchvisions_own(name, tmp_path):
    reference, path = saved_reference(name, tmp_path)
    detector = faapkit_detector(name, path)
    assert detector.sha256 is not None and detector.checkpoint == str(path)
    gen = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 120, 160, generator=gen), torch.rand(3, 96, 128, generator=gen)]
    x, mask = padded_batch(images)
    # a model normalised with other statistics than ImageNet's (SSDlite) sees the pixels faapkit's
    # tensor holds, x * std + mean, which it normalises itself
    pixels = (
        images
        if detector.model.imagenet_input
        else [denormalize(x)[k, :, :h, :w] for k, (h, w) in enumerate(i.shape[1:] for i in images)]
    )
    sizes = torch.tensor([[240, 320], [96, 128]])  # the first image's original size is twice its input's
    with torch.no_grad():
        ours = detector.postprocess(detector(x, mask), sizes)
        theirs = reference(pixels)
    for k, (mine, own) in enumerate(zip(ours, theirs, strict=True)):
        n = len(own["scores"])
        assert n > 0, f"{name}: no detection on image {k}: the comparison would prove nothing"
        scale = 2.0 if k == 0 else 1.0
        assert torch.equal(mine["boxes"][:n], own["boxes"] * scale)
        assert torch.equal(mine["scores"][:n], own["scores"])
        assert torch.equal(mine["labels"][:n], own["labels"])
        # the rows past torchvision's own detections name no category and score 0
        assert not mine["scores"][n:].any() and not mine["labels"][n:].any()
        assert len(mine["scores"]) == detector.num_queries


def test_a_checkpoint_file_is_loaded_strictly_by_key(tmp_path):
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    reference, path = saved_reference(name, tmp_path)
    state = reference.state_dict()
    assert list(faapkit_detector(name, path).model.state_dict()) == list(state)  # torchvision's keys
    missing = dict(state)
    del missing["rpn.head.conv.0.0.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing.pth.*1 missing keys \(e.g. rpn.head.conv.0.0.weight\)"):
        faapkit_detector(name, tmp_path / "missing.pth")
    torch.save({**state, "roi_heads.extra.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"extra.pth.*unexpected keys \(e.g. roi_heads.extra.weight\)"):
        faapkit_detector(name, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="ships no weights"):
        faapkit_detector(name, None)
