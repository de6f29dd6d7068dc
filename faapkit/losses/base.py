"""The contract between the engine and a loss strategy.

The engine runs one generator call and one detector forward on the full batch, computes the DETR
set loss once (explicit normalisation, research P12) and hands everything to the strategy. Groups
are integers: 0 = disadvantaged (anchors), 1 = advantaged (reference), -1 = any other group; no
strategy knows what the attribute is called.

With box-level groups (each person's box holds the attribute, so an image may hold both groups)
every target also carries its boxes' groups, ``targets[i]["groups"] (T_i,)`` with the same 0 / 1 /
-1, and ``groups (B,)`` is each image's sampling key: 0 when it holds a disadvantaged box, 1 when
every box is advantaged, -1 otherwise (``faapkit.data.coco.GroupedDetectionDataset``). A strategy
reads one group's loss with :meth:`LossInputs.detection_of_group`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from faapkit.detr.matcher import Indices
from faapkit.errors import ConfigError


@dataclass
class LossInputs:
    """``features (B, Q, D)``, ``pred_logits (B, Q, C+1)``, ``groups (B,)``; ``detection`` is the
    weighted DETR loss of the batch and ``indices`` its final-layer Hungarian matching; ``delta``
    is the generator's output ``(B, 3, H, W)`` (zero outside each image's valid region) and
    ``epsilon`` its current bound;
    ``detection_of(rows, group=None)`` computes the DETR set loss of a subset of the batch (on
    demand: it matches again, so only strategies that need per-group losses pay for it); with a
    ``group`` (box-level data), the loss of that group's boxes only (:meth:`detection_of_group`).

    For a loss that queries the frozen detector with ground truth on images of its own (e.g. a
    teacher perturbation found by descent): ``images (B, 3, H, W)`` is the clean batch the
    generator saw, normalised as the detector receives it, ``mask (B, H, W)`` its padding (True
    outside each image's valid region), and ``detection_on(images, rows, group=None)`` runs the
    frozen detector on ``images (n, 3, H, W)``, taken as batch rows ``rows (n,)`` (their masks and
    targets), and returns their DETR set loss (of ``group``'s boxes only when one is given, as
    ``detection_of``), a scalar with its graph to ``images`` so a loss can take its input
    gradient. No colour jitter is applied there. All three are None unless the engine gives them.

    ``generator`` is the module being trained (not a DDP wrapper), for a loss that trains a part of
    it on what only the loss sees, e.g. a critic of the detector's outputs supervised by the
    targets; None unless the engine gives it."""

    outputs: dict[str, Any]
    targets: list[dict[str, Tensor]]
    groups: Tensor
    detection: Tensor
    indices: Indices
    weights: dict[str, float]
    head: nn.Module | None
    delta: Tensor | None = None
    epsilon: float | None = None
    detection_of: Callable[..., Tensor] | None = None
    images: Tensor | None = None
    mask: Tensor | None = None
    detection_on: Callable[..., Tensor] | None = None
    generator: nn.Module | None = None

    @property
    def features(self) -> Tensor:
        if "features" not in self.outputs:  # DetectorParts.feature_dim None: the detector has none
            raise ConfigError("this loss needs decoder features and the detector's outputs carry none")
        return self.outputs["features"]  # type: ignore[no-any-return]

    @property
    def logits(self) -> Tensor:
        if "pred_logits" not in self.outputs:  # a detector with its own loss (DetectorParts.loss): no queries
            raise ConfigError("this loss needs the detector's query logits and the detector gives none")
        return self.outputs["pred_logits"]  # type: ignore[no-any-return]

    def index(self, group: int) -> Tensor:
        return torch.nonzero(self.groups == group, as_tuple=False).flatten()

    @property
    def box_level(self) -> bool:
        """Whether the targets carry their boxes' groups (box-level data, see the module)."""
        return bool(self.targets) and all("groups" in t for t in self.targets)

    def holding(self, group: int) -> Tensor:
        """The rows whose targets hold a box of ``group`` (box-level data), ``(n,)``."""
        held = torch.stack([(t["groups"] == group).any() for t in self.targets])
        return torch.nonzero(held, as_tuple=False).flatten().to(self.groups.device)

    def detection_of_group(self, group: int) -> Tensor:
        """The DETR set loss of ``group``'s boxes over the images holding them (box-level data):
        every box of those images takes part in the Hungarian matching, as in the whole loss; the
        class and box terms count the queries matched to ``group``'s boxes, the unmatched queries'
        no-object term is shared, the queries matched to other groups' boxes count for nothing
        (:mod:`faapkit.detr.criterion`). A zero (with its graph) when no image holds one, e.g.
        when a random crop cut them all out."""
        if self.detection_of is None:
            raise ConfigError("this loss needs the engine's per-subset detection loss")
        rows = self.holding(group)
        if not len(rows):
            # a DETR's logits, or a detector's own loss (no logits): a zero with the batch's graph
            return self.outputs.get("pred_logits", self.detection).sum() * 0.0
        return self.detection_of(rows, group)


@dataclass
class LossOutput:
    """``total`` is the scalar to minimise; ``terms`` are logged (finite floats or tensors)."""

    total: Tensor
    terms: dict[str, Any] = field(default_factory=dict)


class LossStrategy:
    """Base class. Subclasses implement ``__call__``; the other hooks are optional."""

    #: whether the head's parameters are optimised together with the generator
    head_in_generator_optimizer: bool = True

    def skip_reason(self, groups: Tensor) -> str | None:
        """A reason to skip this batch before any compute (counted and logged), or None."""
        return None

    def attach(self, head: nn.Module | None, device: torch.device, dist_info: Any = None) -> None:
        """Called once with the (possibly DDP-wrapped) head before training."""

    def before_generator_step(self, inputs: LossInputs) -> dict[str, float]:
        """Work done with detached features before the generator loss (e.g. discriminator steps)."""
        return {}

    def __call__(self, inputs: LossInputs) -> LossOutput:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


def count_groups(groups: Tensor) -> tuple[int, int]:
    return int((groups == 0).sum()), int((groups == 1).sum())
