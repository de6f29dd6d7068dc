"""The contract between the engine and a loss strategy.

The engine runs one generator call and one detector forward on the full batch, computes the DETR
set loss once (explicit normalisation, research P12) and hands everything to the strategy. Groups
are integers: 0 = disadvantaged (anchors), 1 = advantaged (reference), -1 = any other group; no
strategy knows what the attribute is called.
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
    ``detection_of(rows)`` computes the DETR set loss of a subset of the batch (on demand: it
    matches again, so only strategies that need per-group losses pay for it)."""

    outputs: dict[str, Any]
    targets: list[dict[str, Tensor]]
    groups: Tensor
    detection: Tensor
    indices: Indices
    weights: dict[str, float]
    head: nn.Module | None
    delta: Tensor | None = None
    epsilon: float | None = None
    detection_of: Callable[[Tensor], Tensor] | None = None

    @property
    def features(self) -> Tensor:
        if "features" not in self.outputs:  # DetectorParts.feature_dim None: the detector has none
            raise ConfigError("this loss needs decoder features and the detector's outputs carry none")
        return self.outputs["features"]  # type: ignore[no-any-return]

    @property
    def logits(self) -> Tensor:
        return self.outputs["pred_logits"]  # type: ignore[no-any-return]

    def index(self, group: int) -> Tensor:
        return torch.nonzero(self.groups == group, as_tuple=False).flatten()


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
