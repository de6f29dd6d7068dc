"""The deployable modules: a run's perturbation and the fair detector (perturbation + frozen
detector + post-processing), on plain ``[0, 1]`` RGB images.

Both take ``images (N, 3, H, W)`` float in ``[0, 1]``, unpadded (every image of a batch has its
own full size, as ``faap eval``'s shape-bucketed batches). The generator works in ImageNet-
normalised space, so the modules normalise, perturb exactly as ``faap eval`` does
(:func:`faapkit.generators.perturb.apply_perturbation` without a padding mask) and, for the
perturbation, map back to ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from faapkit.data.transforms import denormalize, normalize
from faapkit.generators.perturb import apply_perturbation


@dataclass(frozen=True)
class DeployInfo:
    """What a deployed perturbation is and where it came from (the sidecar JSON and the
    ``faap apply`` manifest record it): the run, the checkpoint file's sha256, the bound
    ``epsilon`` (normalised units), the generator and whether it reads the detector, the detector
    it was trained against (name, weights sha256) and the eval size policy (short side
    ``min_size``, long side capped at ``max_size``)."""

    run_id: str | None
    checkpoint: str
    checkpoint_sha256: str
    chosen_by: str
    epsilon: float
    generator: str
    reads_detector: bool
    detector: dict[str, Any]
    min_size: int
    max_size: int
    faapkit: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Perturbation(nn.Module):
    """``images (N, 3, H, W)`` in [0, 1] -> the perturbed images, same shape, in [0, 1].

    A detector-reading generator gets the frozen detector as a registered submodule (``detector``),
    so its weights travel with the module (``state_dict``, TorchScript, ONNX); a pixel-only
    generator carries none. ``info`` says what the module is (:class:`DeployInfo`)."""

    def __init__(self, generator: nn.Module, info: DeployInfo, detector: nn.Module | None = None) -> None:
        super().__init__()
        self.generator = generator.eval()
        self.detector = detector
        self.info = info

    def forward(self, images: Tensor) -> Tensor:
        out = denormalize(self.normalized(images)).clamp(0, 1)
        return out if out.dtype == images.dtype else out.to(images.dtype)

    def normalized(self, images: Tensor) -> Tensor:
        """The perturbed images in normalised space, as ``faap eval`` hands them to the detector."""
        x = normalize(checked_images(images))
        with torch.no_grad():
            perturbed, _ = apply_perturbation(self.generator, x, _no_padding(x))
        return perturbed


class FairDetector(nn.Module):
    """``images (N, 3, H, W)`` in [0, 1] -> ``(boxes (N, Q, 4), scores (N, Q), labels (N, Q))``:
    the frozen detector's post-processed detections of the perturbed images, every query kept
    (no threshold, as ``faap eval`` scores them), boxes xyxy in the input's pixels."""

    def __init__(self, perturbation: Perturbation, detector: Any) -> None:
        super().__init__()
        self.perturbation = perturbation
        self.detector = detector
        self.info = perturbation.info

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.perturbation.normalized(images)
        with torch.no_grad():
            outputs = self.detector(x, _no_padding(x))
        results = self.detector.postprocess(outputs, input_sizes(x))
        boxes = torch.stack([r["boxes"] for r in results])
        scores = torch.stack([r["scores"] for r in results])
        labels = torch.stack([r["labels"] for r in results])
        return boxes, scores, labels


class Exported(nn.Module):
    """A file written by ``faap export`` run as the module it was exported from (``interface``
    ``perturbation`` or ``fair-detector``, the same inputs and outputs), on CPU through
    ``torch.jit.load`` or onnxruntime; ``sidecar`` is its checked sidecar."""

    def __init__(self, run: Any, sidecar: dict[str, Any]) -> None:
        super().__init__()
        self.run = run
        self.sidecar = sidecar

    def forward(self, images: Tensor) -> Any:
        return self.run(checked_images(images))


def checked_images(images: Tensor) -> Tensor:
    """``images`` as float32, refused (``ValueError``) unless ``(N, 3, H, W)`` finite floats: 8-bit
    pixels would be read as values far above 1 and clamped to white, a single image would come back
    batched, a NaN would spread through the generator's convolutions into its neighbours."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W) float RGB in [0, 1], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be float RGB in [0, 1], got {images.dtype}: divide 8-bit pixels by 255")
    # a NaN or infinity makes the sum non-finite: one reduction (a twentieth of an elementwise
    # isfinite on a large image); the count is taken only then (huge finite values can overflow it)
    if not bool(torch.isfinite(images.sum())) and (bad := int((~torch.isfinite(images)).sum())):
        raise ValueError(f"images hold {bad} NaN or infinite value(s): pixels must be finite floats in [0, 1]")
    return images if images.dtype == torch.float32 else images.float()


def _no_padding(x: Tensor) -> Tensor:
    """The all-valid padding mask ``(N, H, W)`` of unpadded images ``x (N, 3, H, W)``."""
    return torch.zeros_like(x[:, 0], dtype=torch.bool)


def input_sizes(x: Tensor) -> Tensor:
    """``(N, 2)`` of ``(H, W)`` per image of ``x (N, 3, H, W)``, computed from the tensor rather
    than from Python ints: a traced or exported module keeps it a function of the input's shape
    instead of the shape it was traced at."""
    ones = torch.ones_like(x[:, 0])
    return torch.stack([ones.sum(1)[:, 0], ones.sum(2)[:, 0]], dim=1)
