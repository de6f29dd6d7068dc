"""A version that is level-up plus one loss term, written against ``faapkit.plugin_api`` alone.

``level-up-smooth`` extends the built-in ``level-up``: its generator, schedules, group levels and
default settings are level-up's (``VersionSpec(extends=...)``), with its own defaults merged on
top. Its loss is level-up's (``LevelUpDetection``) plus a total-variation penalty on the
perturbation, ``tv_weight * TV(delta / epsilon)`` with ``TV(d) = mean|d[..., 1:, :] - d[..., :-1, :]|
+ mean|d[..., :, 1:] - d[..., :, :-1]|`` over ``delta (B, 3, H, W)``: a smoother delta.

Install it (``pip install -e examples/faap-level-up-plus-plugin``) and train it with
``faap train --version level-up-smooth``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from faapkit.plugin_api import LevelUpOptions, LossSpec, VersionSpec, hookimpl


class SmoothOptions(LevelUpOptions):
    """Level-up's options (``advantaged_weight``, ``keep_weight``) and the new term's weight."""

    tv_weight: float = Field(0.1, ge=0, description="weight of the perturbation's total variation")


def build_smooth(advantaged_weight: float, keep_weight: float, tv_weight: float) -> Any:
    """The loss factory: torch is imported here, when a run builds its loss, never at registration."""
    from faapkit.plugin_api import LevelUpDetection, LossInputs, LossOutput

    class LevelUpSmooth(LevelUpDetection):
        def __call__(self, x: LossInputs) -> LossOutput:
            base = super().__call__(x)  # level-up's total and terms; it checks x.delta and x.epsilon
            d = x.delta.float() / x.epsilon  # (B, 3, H, W)
            tv = (d[..., 1:, :] - d[..., :-1, :]).abs().mean() + (d[..., :, 1:] - d[..., :, :-1]).abs().mean()
            return LossOutput(base.total + tv_weight * tv, {**base.terms, "tv": tv.detach()})

    return LevelUpSmooth(advantaged_weight=advantaged_weight, keep_weight=keep_weight)


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="level_up_smooth",
            factory=build_smooth,
            options=SmoothOptions,
            description="level-up's loss + total variation of delta/epsilon",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="level-up-smooth",
            extends="level-up",
            loss="level_up_smooth",
            # merged on top of level-up's defaults: train.lr, batch size, schedules ... stay level-up's
            defaults={"loss": {"tv_weight": 0.1}, "train": {"epochs": 24}},
            description="level-up + a total-variation penalty on the perturbation",
        )
    )
