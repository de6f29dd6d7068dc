"""Version 3rd: group-aware InfoNCE with adaptive score weights, fixed epsilon."""

from collections.abc import Callable

from pydantic import Field

from faap_plugins.options import Options, research_train_defaults
from faapkit.plugin_api import LossSpec, VersionSpec, hookimpl


class GroupAwareOptions(Options):
    temperature: float = Field(0.07, gt=0)
    alpha: float = Field(1.0, ge=0, description="strength of the log adaptive weight")
    score_top_k: int = 10
    weight_forward: float = Field(1.5, ge=0)
    weight_backward: float = Field(0.5, ge=0)
    lambda_contrastive: float = Field(1.0, ge=0)
    lambda_wass: float = Field(0.2, ge=0)


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="infonce_group_aware",
            factory="faap_plugins.v3rd.loss:GroupAwareInfoNCE",
            options=GroupAwareOptions,
            description="adaptive-weight group InfoNCE + image-score Wasserstein + detection",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="3rd",
            loss="infonce_group_aware",
            head="simclr_mlp",
            schedules={"epsilon": "constant", "beta": "linear"},
            defaults={
                "train": research_train_defaults(batch_size=8, max_norm=0.1, augment="medium"),
                "schedules": {"epsilon": {"name": "constant", "value": 0.10}},
            },
            description="gender-aware InfoNCE with adaptive score weighting, fixed epsilon 0.10",
        )
    )
