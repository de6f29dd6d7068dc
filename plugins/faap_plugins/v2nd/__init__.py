"""Version 2nd: group-blind contrastive split of the batch by image detection score.

Fixes the research code's median bug (P10): the low/high split is by rank, lower floor(N/2)
versus upper ceil(N/2) with a deterministic tie-break, so no image is in both sets."""

from collections.abc import Callable

from pydantic import Field

from faap_plugins.options import Options, research_train_defaults
from faapkit.plugin_api import LossSpec, VersionSpec, hookimpl


class ScoreSplitOptions(Options):
    temperature: float = Field(0.07, gt=0)
    score_top_k: int = Field(10, description="image score = mean of the top-k query scores; <=0 = all")
    weight_low_high: float = Field(1.5, ge=0)
    weight_high_low: float = Field(0.5, ge=0)
    lambda_contrastive: float = Field(1.0, ge=0)
    lambda_wass: float = Field(0.2, ge=0)


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="infonce_score_split",
            factory="faap_plugins.v2nd.loss:ScoreSplitInfoNCE",
            options=ScoreSplitOptions,
            description="low/high detection-score InfoNCE (disjoint rank split) + Wasserstein + detection",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="2nd",
            loss="infonce_score_split",
            head="simclr_mlp",
            schedules={"epsilon": "three_phase", "beta": "linear"},
            defaults={"train": research_train_defaults(batch_size=4, max_norm=0.1, augment="medium")},
            description="score-based low/high InfoNCE, group-blind (median split made disjoint)",
        )
    )
