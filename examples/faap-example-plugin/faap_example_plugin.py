"""A third-party faap plugin, registered through the ``faap`` entry-point group like the built-ins.

It adds a control experiment: loss ``detection_wasserstein`` (no contrastive term: only the
detection loss and a one-way Wasserstein pull of the disadvantaged image scores) and a version
``det-only`` that uses it with a fixed epsilon. It imports only ``faapkit.plugin_api``, the public
plugin API; torch is imported only when the loss is built.
"""

from collections.abc import Callable
from typing import Any

from pydantic import Field

from faapkit.plugin_api import LossSpec, Options, VersionSpec, hookimpl


class DetectionWassersteinOptions(Options):
    score_top_k: int = 10
    lambda_wass: float = Field(0.2, ge=0)


def build_loss(score_top_k: int, lambda_wass: float) -> Any:
    from faapkit.plugin_api import LossInputs, LossOutput, LossStrategy, image_scores, wasserstein_1d_asymmetric

    class DetectionWasserstein(LossStrategy):
        def __call__(self, x: LossInputs) -> LossOutput:
            s = image_scores(x.logits, score_top_k)
            wass = wasserstein_1d_asymmetric(s[x.index(0)], s[x.index(1)])
            return LossOutput(x.weights["beta"] * x.detection + lambda_wass * wass, {"loss_wasserstein": wass})

    return DetectionWasserstein()


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="detection_wasserstein",
            factory=build_loss,
            options=DetectionWassersteinOptions,
            description="control: detection loss + one-way Wasserstein on image scores",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="det-only",
            loss="detection_wasserstein",
            head=None,
            schedules={"epsilon": "constant", "beta": "linear"},
            defaults={"schedules": {"epsilon": {"name": "constant", "value": 0.08}}},
            description="control experiment without a contrastive term",
        )
    )
