"""Version level-up: detection loss of the disadvantaged group alone, the advantaged group guarded,
a sub-pixel generator that can express the high-frequency perturbations that move DETR's AP and
that reads what the frozen detector makes of the clean image (``transformer-aware``: its backbone
features, its encoder's memory and where its last decoder layer looks), so that what it learns is
specific to the images and regions that need it. It trains at the detector's evaluation scale only
(``data.train_scales: eval``). Both are the winners of the hypotheses screened in
docs/effect-diagnosis.md.

Not a research version: faapkit's answer to the research versions' null result on the embedded
benchmark (docs/effect-diagnosis.md gives the measurements behind each default).
"""

from collections.abc import Callable

from pydantic import Field

from faap_plugins.options import Options
from faapkit.plugin_api import LossSpec, VersionSpec, hookimpl


class LevelUpOptions(Options):
    advantaged_weight: float = Field(0.0, ge=0, description="weight of the advantaged group's detection loss")
    keep_weight: float = Field(0.0, ge=0, description="penalty on the advantaged images' (delta/epsilon)^2")


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="level_up_detection",
            factory="faap_plugins.level_up.loss:LevelUpDetection",
            options=LevelUpOptions,
            description="disadvantaged-group DETR loss + keep the advantaged images unperturbed",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="level-up",
            loss="level_up_detection",
            head=None,
            generator="transformer-aware",
            schedules={"epsilon": "constant", "lr": "warmup_cosine"},
            defaults={
                "schedules": {
                    "epsilon": {"name": "constant", "value": 0.09},
                    # a factor of train.lr: the detector features make a constant 1e-3 noisy from
                    # epoch to epoch; decaying it settles the epochs the val rule chooses among
                    "lr": {"name": "warmup_cosine", "warmup": 2, "min_factor": 0.01},
                },
                # one scale, the detector's evaluation scale: the perturbation is tied to the pixel
                # grid it is added on, and a generator trained across 112..144 px spends capacity on
                # sizes it is never evaluated at (docs/effect-diagnosis.md, section 11, gives the measurements)
                "data": {"disadvantaged_share": 1.0, "train_scales": "eval"},
                "train": {
                    "lr": 1e-3,
                    "weight_decay": 0.0,
                    "max_norm": 0.0,
                    "augment": "none",
                    "batch_size": 8,
                    "epochs": 96,
                    "val_every": 3,
                    # NHWC convolutions: faster steps on CPU (benchmarks/RESULTS.md), the same numbers up to rounding
                    "channels_last": True,
                },
            },
            description="lift the disadvantaged group's detection, leave the advantaged group's images alone",
            # per-person groups: its loss is the disadvantaged boxes' (loss.py)
            group_levels=("image", "box"),
        )
    )
