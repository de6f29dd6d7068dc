"""Version 4th: advantaged-detached InfoNCE, LayerNorm+Dropout head, feature-mean alignment,
epsilon warmup/hold/cooldown, contrastive warmup, warmup-cosine LR, weak jitter, clip 0.5."""

from collections.abc import Callable

from pydantic import Field

from faap_plugins.options import Options, research_train_defaults
from faapkit.plugin_api import LossSpec, VersionSpec, hookimpl


class AnchorAlignedOptions(Options):
    temperature: float = Field(0.1, gt=0)
    score_top_k: int = 10
    lambda_contrastive: float = Field(1.0, ge=0)
    lambda_align: float = Field(0.3, ge=0)
    lambda_wass: float = Field(0.2, ge=0)


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="infonce_anchor_aligned",
            factory="faap_plugins.v4th.loss:AnchorAlignedInfoNCE",
            options=AnchorAlignedOptions,
            description="disadvantaged->advantaged InfoNCE (targets detached) + feature-mean alignment",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="4th",
            loss="infonce_anchor_aligned",
            head="stabilized_mlp",
            schedules={
                "epsilon": "three_phase_to_end",
                "beta": "linear",
                "lr": "warmup_cosine",
                "contrastive_weight": "linear_warmup",
            },
            defaults={"train": research_train_defaults(batch_size=8, max_norm=0.5, augment="weak")},
            description="male-detached F->M InfoNCE, LN+Dropout head, feature-mean alignment, schedules",
        )
    )
