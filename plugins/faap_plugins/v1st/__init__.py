"""Version 1st: cross-group InfoNCE (disadvantaged anchors, advantaged positives, 1.5/0.5 directions),
one-way Wasserstein alignment of Hungarian-matched scores, detection loss."""

from collections.abc import Callable

from pydantic import Field

from faap_plugins.options import Options, research_train_defaults
from faapkit.plugin_api import LossSpec, VersionSpec, hookimpl


class CrossGroupInfoNCEOptions(Options):
    temperature: float = Field(0.07, gt=0)
    weight_forward: float = Field(1.5, ge=0, description="disadvantaged -> advantaged direction")
    weight_backward: float = Field(0.5, ge=0, description="advantaged -> disadvantaged direction")
    lambda_contrastive: float = Field(1.0, ge=0)
    lambda_wass: float = Field(0.2, ge=0)


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="infonce_cross_group",
            factory="faap_plugins.v1st.loss:CrossGroupInfoNCE",
            options=CrossGroupInfoNCEOptions,
            description="bidirectional cross-group InfoNCE + matched-score Wasserstein + detection",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="1st",
            loss="infonce_cross_group",
            head="simclr_mlp",
            schedules={"epsilon": "three_phase", "beta": "linear"},
            defaults={"train": research_train_defaults(batch_size=4, max_norm=0.1, augment="medium")},
            description="cross-gender InfoNCE (F anchors, M positives), Wasserstein score alignment",
        )
    )
