"""Version 7th (baseline): adversarial WGAN-GD. A group discriminator on decoder features is trained
``k_d`` times per step on features computed once (P13); the generator fools it (fairness loss with an
entropy bonus) plus a one-way Wasserstein term and the detection loss."""

from collections.abc import Callable

from pydantic import Field

from faap_plugins.options import Options, research_train_defaults
from faapkit.plugin_api import LossSpec, VersionSpec, hookimpl


class AdversarialOptions(Options):
    lambda_fair: float = Field(2.0, ge=0)
    fair_disadvantaged_scale: float = Field(1.0, ge=0)
    fair_advantaged_scale: float = Field(0.5, ge=0, description="fair_m_scale in the research code")
    entropy_alpha: float = Field(0.2, ge=0)
    lambda_wass: float = Field(0.2, ge=0)
    k_d: int = Field(4, ge=1, description="discriminator steps per generator step")
    lr_d: float = Field(1e-4, gt=0)


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="wgan_gd",
            factory="faap_plugins.v7th.loss:AdversarialGroupLoss",
            options=AdversarialOptions,
            description="group discriminator game + matched-score Wasserstein + detection",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="7th",
            loss="wgan_gd",
            head="group_discriminator",
            schedules={"epsilon": "three_phase", "beta": "linear"},
            defaults={"train": research_train_defaults(batch_size=4, max_norm=0.1, augment="none", weight_decay=0.0)},
            description="adversarial WGAN-GD baseline (comparison row)",
        )
    )
