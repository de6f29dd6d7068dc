"""A torchvision detection model behind faapkit's detector contract.

faapkit hands a detector ImageNet-normalised, possibly padded batches ``images (B, 3, H, W)`` with
``mask (B, H, W)`` (True on padding, bottom and right). A torchvision model takes a list of
unpadded ``[0, 1]`` images and applies its own input policy (``GeneralizedRCNNTransform``: its
normalisation, its ``min_size``/``max_size`` resize or SSDlite's fixed 320x320). The wrapper cuts
each image's valid region out of the batch and hands torchvision what it would have made of the
pixels itself: a model normalised with ImageNet's statistics (Faster R-CNN, RetinaNet, FCOS) gets
faapkit's tensor as its normalised input, bit for bit what its own normalisation gives (its
transform's mean and std are set to 0 and 1); any other (SSDlite: 0.5, 0.5) gets the pixels back
(``x * std + mean``) and normalises them itself. Everything after that is torchvision's own code:
resize, batching, detections and, in training mode, its loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.ops import box_convert

from faapkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize
from faapkit.detr.misc import NestedTensor


def valid_sizes(mask: Tensor) -> list[tuple[int, int]]:
    """``(h, w)`` of each image's unpadded region, from ``mask (B, H, W)`` (True on padding, which
    faapkit puts at the bottom and right)."""
    rows = (~mask[:, :, 0]).sum(1).tolist()
    cols = (~mask[:, 0, :]).sum(1).tolist()
    return [(int(h), int(w)) for h, w in zip(rows, cols, strict=True)]


@contextmanager
def loss_mode(model: nn.Module) -> Iterator[None]:
    """``model`` in training mode (torchvision detectors return their loss dict there) with every
    batch-norm module kept in eval mode, so no running statistic moves; back to eval mode after."""
    model.train(True)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train(False)
    try:
        yield
    finally:
        model.train(False)


class TorchvisionDetector(nn.Module):
    """``forward(NestedTensor(images, mask))`` -> padded detections of each image's valid region:
    ``boxes (B, Q, 4)`` xyxy in that region's pixels, ``scores (B, Q)``, ``labels (B, Q)`` (COCO
    category ids for torchvision's COCO models, 0 on the rows past an image's own detections,
    whose score is 0), ``image_hw (B, 2)``; Q = the model's detections per image.
    ``loss(images, mask, targets)`` -> torchvision's own loss terms for faapkit's targets
    (normalised cxcywh ``boxes``, ``labels``). ``image_features(images)`` -> the first (finest)
    feature map of its backbone (FPN level or SSD feature map) ``(B, C, H/s, W/s)``."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        transform: Any = detector.transform
        stats = (tuple(transform.image_mean), tuple(transform.image_std))
        self.imagenet_input = stats == (IMAGENET_MEAN, IMAGENET_STD)
        if self.imagenet_input:  # faapkit's tensor is already the normalised input: (x - 0) / 1 == x exactly
            transform.image_mean, transform.image_std = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
        heads: Any = getattr(detector, "roi_heads", detector)
        self.detections_per_image = int(heads.detections_per_img)
        self._feature_dim: int | None = None
        # the state dict under torchvision's own keys, so that its checkpoint files load by key
        self.register_state_dict_post_hook(_without_wrapper_prefix)
        self.register_load_state_dict_pre_hook(_with_wrapper_prefix)

    def detector_inputs(self, images: Tensor, mask: Tensor) -> list[Tensor]:
        """Each image's valid region ``(3, h_i, w_i)``, as the model's transform takes it."""
        x = images if self.imagenet_input else denormalize(images)
        return [x[i, :, :h, :w] for i, (h, w) in enumerate(valid_sizes(mask))]

    def forward(self, samples: NestedTensor) -> dict[str, Tensor]:
        images, mask = samples.decompose()
        found = self.detector(self.detector_inputs(images, mask))
        q = self.detections_per_image
        b = len(found)
        boxes = images.new_zeros(b, q, 4)
        scores = images.new_zeros(b, q)
        labels = torch.zeros(b, q, dtype=torch.int64, device=images.device)
        for i, det in enumerate(found):
            n = min(len(det["scores"]), q)
            boxes[i, :n], scores[i, :n], labels[i, :n] = det["boxes"][:n], det["scores"][:n], det["labels"][:n]
        hw = torch.tensor(valid_sizes(mask), dtype=torch.float32, device=images.device).reshape(b, 2)
        return {"boxes": boxes, "scores": scores, "labels": labels, "image_hw": hw}

    def loss(self, images: Tensor, mask: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """torchvision's loss terms (unweighted, as its training sums them) of ``images (B, 3, H, W)``
        against ``targets``; the model is in training mode for this call only, batch norm frozen."""
        inputs = self.detector_inputs(images, mask)
        tv_targets = []
        for x, t in zip(inputs, targets, strict=True):
            h, w = x.shape[-2:]
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=x.device)
            boxes = box_convert(t["boxes"].float(), "cxcywh", "xyxy") * scale
            tv_targets.append({"boxes": boxes, "labels": t["labels"]})
        with loss_mode(self.detector):
            terms: dict[str, Tensor] = self.detector(inputs, tv_targets)
        return terms

    def image_features(self, images: Tensor) -> Tensor:
        """The backbone's finest feature map of ``images (B, 3, H, W)`` at faapkit's resolution (no
        resize), without gradient."""
        model: Any = self.detector
        x = images if self.imagenet_input else model.transform.normalize(denormalize(images))
        with torch.no_grad():
            features = model.backbone(x)
        first: Tensor = next(iter(features.values())) if isinstance(features, dict) else features
        return first

    @property
    def image_feature_dim(self) -> int:
        """Channels C of :meth:`image_features` (read once from a small image)."""
        if self._feature_dim is None:
            param = next(self.detector.parameters())
            probe = torch.zeros(1, 3, 64, 64, dtype=param.dtype, device=param.device)
            self._feature_dim = int(self.image_features(probe).shape[1])
        return self._feature_dim


_WRAPPED = "detector."


def _without_wrapper_prefix(module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    for key in [k for k in state if k.startswith(prefix + _WRAPPED)]:
        state[prefix + key[len(prefix + _WRAPPED) :]] = state.pop(key)


def _with_wrapper_prefix(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    for key in [k for k in state if k.startswith(prefix) and not k.startswith(prefix + _WRAPPED)]:
        state[prefix + _WRAPPED + key[len(prefix) :]] = state.pop(key)


def postprocess_detections(outputs: dict[str, Any], sizes: Tensor) -> list[dict[str, Tensor]]:
    """:class:`TorchvisionDetector`'s outputs -> per image ``{"scores" (Q,), "labels" (Q,), "boxes"
    (Q, 4)}`` with the boxes scaled from the image's valid region to ``sizes (B, 2)`` as ``(h, w)``."""
    scale = (sizes.to(outputs["image_hw"]) / outputs["image_hw"]).flip(-1).repeat(1, 2)  # (B, 4): sx, sy, sx, sy
    boxes = outputs["boxes"] * scale[:, None, :]
    return [
        {"scores": s, "labels": lab, "boxes": b}
        for s, lab, b in zip(outputs["scores"], outputs["labels"], boxes, strict=True)
    ]
