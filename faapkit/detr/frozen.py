"""The frozen detector the engine trains against: parameters never change, gradients reach the input."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from faapkit.detr.build import file_sha256, load_state_strict, packaged_path, read_state_dict
from faapkit.detr.matcher import Indices
from faapkit.detr.misc import NestedTensor
from faapkit.errors import CheckpointError, ConfigError
from faapkit.plugins.specs import DetectorParts, DetectorSpec

Outputs = dict[str, object]


class FrozenDetector(nn.Module):
    """A detector's parts (``DetectorSpec.factory``) in eval mode with ``requires_grad=False`` everywhere.

    - ``forward(images (B,3,H,W), mask (B,H,W))`` -> the model's outputs (a DETR's: ``pred_logits
      (B,Q,C+1)``, ``pred_boxes (B,Q,4)`` and, where it has them, ``features (B,Q,D)`` and ``aux_outputs``);
    - ``loss_outputs(images, mask)`` -> what ``detection_loss`` reads: those outputs for a set
      criterion, the images themselves for a detector with a loss of its own (it runs the model on them);
    - ``detection_loss(outputs, targets, counted=None)`` -> ``(total, terms, indices)``;
    - ``postprocess(outputs, sizes (B,2))`` -> per-image scores/labels/boxes.
    """

    def __init__(
        self,
        parts: DetectorParts,
        *,
        name: str,
        checkpoint: str | None = None,
        sha256: str | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        # (min_size, max_size) its weights expect; None: DetectorSpec's defaults (the tiny detectors')
        self.input_size = input_size or (DetectorSpec.min_size, DetectorSpec.max_size)
        self.model = parts.model
        self.criterion = parts.criterion  # a module when it holds buffers (moved with .to(device))
        self.own_loss = parts.loss
        self.postprocessor = parts.postprocess
        self.parts = parts
        self.name = name
        self.checkpoint = checkpoint
        self.sha256 = sha256
        for p in self.model.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenDetector:
        """Stays in eval mode whatever the caller asks: the detector is frozen (BN, dropout)."""
        return super().train(False)

    def sizes(self, min_size: int | None = None, max_size: int | None = None) -> tuple[int, int]:
        """``(min_size, max_size)`` to resize images to: the given ones, else :attr:`input_size`."""
        return (
            self.input_size[0] if min_size is None else min_size,
            self.input_size[1] if max_size is None else max_size,
        )

    @property
    def hidden_dim(self) -> int | None:
        """D of the decoder ``features``, ``None`` when the detector gives none."""
        return self.parts.feature_dim

    @property
    def num_queries(self) -> int:
        return self.parts.num_queries

    @property
    def num_classes(self) -> int:
        return self.parts.num_classes

    @property
    def image_feature_dim(self) -> int:
        """Channels C of :meth:`image_features`."""
        own: Any = getattr(self.model, "image_feature_dim", None)
        channels: int = own if own is not None else getattr(self._backbone(), "num_channels")  # noqa: B009
        return int(channels)

    def image_features(self, images: Tensor) -> Tensor:
        """The backbone's last feature map of ``images (B, 3, H, W)``: ``(B, C, H/s, W/s)`` (s the
        backbone's stride), without gradient. Convolutions ignore the mask, so none is needed. A
        model with an ``image_features(images)`` of its own (``faapkit.tvdet``: its backbone's
        finest FPN level) gives that view instead."""
        own = getattr(self.model, "image_features", None)
        if own is not None:
            with torch.no_grad():
                return own(images)  # type: ignore[no-any-return]
        mask = torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)
        with torch.no_grad():
            features, _ = self._backbone()(NestedTensor(images, mask))
        return features[-1].tensors  # type: ignore[no-any-return]

    @property
    def transformer_dim(self) -> int:
        """Channels D of :meth:`transformer_view`'s memory."""
        transformer: Any = self._detr_model().transformer
        return int(transformer.d_model)

    def transformer_view(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Of ``images (B, 3, H, W)``: the backbone's features ``(B, C, h, w)`` (as
        :meth:`image_features`), the encoder's memory ``(B, D, h, w)`` and where the last decoder
        layer looks ``(B, 1, h, w)`` (:func:`faapkit.detr.views.transformer_view`), without gradient.
        No padding mask: evaluation and validation batches are never padded."""
        from faapkit.detr.views import transformer_view

        mask = torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)
        return transformer_view(self._detr_model(), images, mask)

    def _detr_model(self) -> nn.Module:
        parts = ("backbone", "input_proj", "query_embed", "class_embed", "transformer")
        layers = getattr(getattr(getattr(self.model, "transformer", None), "decoder", None), "layers", None)
        if any(not hasattr(self.model, p) for p in parts) or not layers:
            raise ConfigError(
                f"detector '{self.name}' is not a facebookresearch/detr DETR (backbone, input_proj, query_embed, "
                "class_embed, transformer with decoder layers): a generator that reads its transformer cannot use it; "
                "choose one that reads its backbone (generator.name=detector-aware) or pixels only (subpixel, unet)"
            )
        return self.model

    def _backbone(self) -> nn.Module:
        backbone = getattr(self.model, "backbone", None)
        if backbone is None or not hasattr(backbone, "num_channels"):
            raise ConfigError(
                f"detector '{self.name}' has no DETR-style backbone (model.backbone with num_channels): "
                "a generator that reads the detector's features cannot use it"
            )
        return backbone  # type: ignore[no-any-return]

    def forward(self, images: Tensor, mask: Tensor) -> Outputs:  # type: ignore[override]
        return self.model(NestedTensor(images, mask))

    def loss_outputs(self, images: Tensor, mask: Tensor) -> Outputs:
        """What :meth:`detection_loss` reads of ``images (B, 3, H, W)``: the model's outputs for a set
        criterion; for a detector with its own loss, the images and mask it runs the model on then
        (every value has the batch first, so a subset of rows is a subset of every value)."""
        if self.own_loss is not None:
            return {"images": images, "mask": mask}
        return self(images, mask)

    def detection_loss(
        self, outputs: Outputs, targets: list[dict[str, Tensor]], counted: list[Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor], Indices]:
        """``counted`` (one boolean ``(T_i,)`` per image) restricts the loss to those targets under
        the same matching (:mod:`faapkit.detr.criterion`); a criterion that cannot is refused. A
        detector's own loss (``DetectorParts.loss``) is the sum of its terms; it has no matching
        (empty indices) and cannot restrict itself to some targets."""
        if self.own_loss is not None:
            return self._own_detection_loss(outputs, targets, counted)
        assert self.criterion is not None  # DetectorParts gives one of the two
        if counted is None:
            terms, indices = self.criterion(outputs, targets)
        else:
            call = self.criterion.forward if isinstance(self.criterion, nn.Module) else self.criterion
            if "counted" not in inspect.signature(call).parameters:
                raise ConfigError(
                    f"detector '{self.name}': its criterion takes no 'counted' targets, so it cannot give one "
                    "group's loss of box-level groups (faapkit.detr.criterion.SetCriterion can)"
                )
            restricting: Any = self.criterion  # DetectorCriterion's optional keyword (checked above)
            terms, indices = restricting(outputs, targets, counted=counted)
        return self.criterion.total(terms), terms, indices

    def _own_detection_loss(
        self, outputs: Outputs, targets: list[dict[str, Tensor]], counted: list[Tensor] | None
    ) -> tuple[Tensor, dict[str, Tensor], Indices]:
        if counted is not None:
            raise ConfigError(
                f"detector '{self.name}': its own loss cannot count some of an image's boxes and not others, "
                "so it cannot give one group's loss of box-level groups; train on image-level groups"
            )
        images, mask = outputs["images"], outputs["mask"]
        assert isinstance(images, Tensor) and isinstance(mask, Tensor) and self.own_loss is not None
        terms = self.own_loss(images, mask, targets)
        empty = torch.zeros(0, dtype=torch.int64, device=images.device)
        return torch.stack(list(terms.values())).sum(), terms, [(empty, empty) for _ in targets]

    def postprocess(self, outputs: Outputs, sizes: Tensor) -> list[dict[str, Tensor]]:
        return self.postprocessor(outputs, sizes)


def load_detector(
    spec: DetectorSpec,
    checkpoint: Path | None = None,
    *,
    device: torch.device | str = "cpu",
    allow_random: bool = False,
) -> FrozenDetector:
    """Build ``spec`` and load ``checkpoint`` (or the spec's shipped weights) strictly.

    A detector without weights is an error unless ``allow_random`` (tests, benchmarks).
    """
    parts = spec.build()
    path = checkpoint
    if path is None and spec.weights:
        path = packaged_path(spec.weights)
        if not path.is_file():
            raise CheckpointError(f"the shipped weights of detector '{spec.name}' are missing: {path}")
    sha = None
    if path is not None:
        state = read_state_dict(path, spec.arch)
        load_state_strict(parts.model, state, what=f"detector '{spec.name}'", origin=path)
        sha = file_sha256(path)
    elif not allow_random:
        raise CheckpointError(f"detector '{spec.name}' ships no weights; pass a checkpoint (detector.checkpoint)")
    det = FrozenDetector(
        parts,
        name=spec.name,
        checkpoint=str(path) if path else None,
        sha256=sha,
        input_size=(spec.min_size, spec.max_size),
    )
    return det.to(device)
