"""torchvision detection models built as torchvision builds them for its COCO weights, with no
download, and their :class:`~faapkit.plugins.specs.DetectorParts`.

torchvision's builders choose the normalisation layer by whether weights are requested: with
weights (the layout of its checkpoint files, e.g. ``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``) the
backbone's batch norm is ``FrozenBatchNorm2d`` (ResNet-50 v1 models with ``eps`` 0, which torchvision
sets after loading those files), without weights a trainable ``BatchNorm2d``. faapkit builds with
``weights=None, weights_backbone=None`` (nothing is ever downloaded) and then gives the model the
pretrained layout, so that a torchvision checkpoint file loads strictly by key and computes what
torchvision's pretrained model computes. SSDlite keeps ``BatchNorm2d`` in both (held in eval mode).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models import detection
from torchvision.ops.misc import FrozenBatchNorm2d

from faapkit.errors import ConfigError
from faapkit.plugins.specs import DetectorParts
from faapkit.tvdet.wrapper import TorchvisionDetector, postprocess_detections

# torchvision's builders (``torchvision.models.detection.<name>``) and the ``FrozenBatchNorm2d``
# eps of their backbone in the layout of their COCO weights; None: the model keeps ``BatchNorm2d``
FROZEN_EPS: dict[str, float | None] = {
    "fasterrcnn_resnet50_fpn": 0.0,
    "fasterrcnn_mobilenet_v3_large_fpn": 1e-5,
    "fasterrcnn_mobilenet_v3_large_320_fpn": 1e-5,
    "retinanet_resnet50_fpn": 0.0,
    "fcos_resnet50_fpn": 1e-5,
    "ssdlite320_mobilenet_v3_large": None,
}


def freeze_batch_norm(module: nn.Module, eps: float) -> nn.Module:
    """``module`` with every ``BatchNorm2d`` replaced by a ``FrozenBatchNorm2d`` of ``eps`` (its
    statistics and affine terms copied), in place; returns it."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            freeze_batch_norm(child, eps)
    return module


def build_torchvision(model: str, num_classes: int = 91, **kwargs: Any) -> nn.Module:
    """torchvision's ``model`` in the layout of its COCO weights (random until loaded); ``kwargs``
    go to the builder (e.g. ``min_size``, ``max_size``, ``box_detections_per_img``)."""
    if model not in FROZEN_EPS:
        raise ConfigError(f"unknown torchvision detector '{model}'; known: {', '.join(sorted(FROZEN_EPS))}")
    built: nn.Module = getattr(detection, model)(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)
    eps = FROZEN_EPS[model]
    return built if eps is None else freeze_batch_norm(built, eps)


def torchvision_parts(*, model: str, num_classes: int = 91, **builder_options: Any) -> DetectorParts:
    """The factory of the torchvision detectors: :func:`build_torchvision` behind
    :class:`~faapkit.tvdet.wrapper.TorchvisionDetector`, its own loss, no set criterion and no
    decoder features. ``builder_options`` (a spec's arch beside ``model``) go to torchvision's
    builder as they are: its transform's ``min_size``/``max_size``, ``box_score_thresh``, ..."""
    wrapped = TorchvisionDetector(build_torchvision(model, num_classes, **builder_options))
    return DetectorParts(
        model=wrapped,
        loss=wrapped.loss,
        postprocess=postprocess_detections,
        num_queries=wrapped.detections_per_image,
        num_classes=num_classes,
        feature_dim=None,
    )
