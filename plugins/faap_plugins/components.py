"""Parts shared by several versions: schedules, heads, generators, and the training loggers every
run may use. Registered once, named by versions (loggers by ``train.loggers``)."""

from collections.abc import Callable
from typing import Literal

from pydantic import Field

from faap_plugins.options import Options
from faapkit.plugin_api import GeneratorSpec, HeadSpec, LoggerSpec, ScheduleSpec, hookimpl

SCHED = "faapkit.train.schedules"
HEADS = "faapkit.losses.heads"
GENERATORS = "faapkit.generators"
LOGGERS = "faapkit.train.loggers"
TRACKERS = "faapkit.train.trackers"


class UNetOptions(Options):
    base_channels: int = Field(32, gt=0, description="32 in the research code; 16 on the embedded benchmark")


class SubPixelOptions(Options):
    channels: int = Field(32, ge=2, description="channels at 1/4 resolution (half that at 1/2)")
    tile: int = Field(16, gt=0, description="side of the learned repeated pattern (the detector's stride)")


class ConstantOptions(Options):
    value: float = Field(0.1, ge=0)


class LinearOptions(Options):
    start: float = 0.5
    end: float = 0.6


class ThreePhaseOptions(Options):
    start: float = Field(0.05, ge=0, le=1)
    peak: float = Field(0.10, ge=0, le=1)
    final: float = Field(0.09, ge=0, le=1)
    warmup: int = Field(8, ge=0)
    hold: int = Field(6, ge=0)
    cooldown: int = Field(10, ge=0)
    legacy: bool = Field(True, description="peak at epoch warmup-1 as the research code did (P15)")


class ToEndOptions(Options):
    start: float = Field(0.05, ge=0, le=1)
    peak: float = Field(0.10, ge=0, le=1)
    final: float = Field(0.09, ge=0, le=1)
    warmup: int = Field(6, ge=0)
    hold: int = Field(6, ge=0)
    legacy: bool = Field(True, description="cool down over T-(W+H) epochs so 'final' is never reached (P15)")


class WarmupOptions(Options):
    epochs: int = Field(3, ge=0)


class WarmupCosineOptions(Options):
    warmup: int = Field(2, ge=0)
    min_factor: float = Field(0.01, ge=0, le=1, description="lr_min / lr")


class TensorBoardOptions(Options):
    flush_secs: int = Field(30, gt=0, description="seconds between flushes of the event file (closing flushes too)")


class MLflowOptions(Options):
    tracking_uri: str | None = Field(None, description="tracking server or store (default: MLFLOW_TRACKING_URI)")
    experiment: str = Field("faapkit", min_length=1, description="experiment name (created when missing)")
    run_name: str | None = Field(None, description="default: the run folder's name")
    tags: dict[str, str] = Field(default_factory=dict, description="extra tags on the MLflow run")


class WandbOptions(Options):
    project: str = Field("faapkit", min_length=1)
    entity: str | None = Field(None, description="team or user (default: the API key's)")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="default: WANDB_MODE, else online only when an API key is set up"
    )
    dir: str | None = Field(None, description="where wandb writes (default: WANDB_DIR, else the run folder)")
    run_name: str | None = Field(None, description="default: the run folder's name")
    tags: list[str] = Field(default_factory=list)


class MLPHeadOptions(Options):
    hidden_dim: int = Field(256, gt=0)
    out_dim: int = Field(128, gt=0)


class StabilizedHeadOptions(MLPHeadOptions):
    dropout: float = Field(0.1, ge=0, lt=1)


class DiscriminatorOptions(Options):
    hidden_dim: int = Field(256, gt=0)
    num_groups: int = Field(2, ge=2)


@hookimpl
def faap_register_schedules(register: Callable[[ScheduleSpec], None]) -> None:
    register(
        ScheduleSpec(
            name="constant",
            factory=f"{SCHED}:constant",
            options=ConstantOptions,
            description="the same value every epoch",
        )
    )
    register(
        ScheduleSpec(
            name="linear",
            factory=f"{SCHED}:linear",
            options=LinearOptions,
            description="start -> end linearly over the run (beta)",
        )
    )
    register(
        ScheduleSpec(
            name="three_phase",
            factory=f"{SCHED}:three_phase",
            kind="epsilon",
            options=ThreePhaseOptions,
            description="warmup / hold / fixed-length cooldown (E1: 1st, 2nd, 7th)",
        )
    )
    register(
        ScheduleSpec(
            name="three_phase_to_end",
            factory=f"{SCHED}:three_phase_to_end",
            kind="epsilon",
            options=ToEndOptions,
            description="warmup / hold / cooldown to the last epoch (E4: 4th)",
        )
    )
    register(
        ScheduleSpec(
            name="linear_warmup",
            factory=f"{SCHED}:linear_warmup",
            kind="weight",
            options=WarmupOptions,
            description="(e+1)/(W+1) for e < W, then 1 (4th contrastive weight)",
        )
    )
    register(
        ScheduleSpec(
            name="warmup_cosine",
            factory=f"{SCHED}:warmup_cosine",
            kind="lr",
            options=WarmupCosineOptions,
            description="lr factor: linear warmup then cosine (4th)",
        )
    )


@hookimpl
def faap_register_heads(register: Callable[[HeadSpec], None]) -> None:
    register(
        HeadSpec(
            name="simclr_mlp",
            factory=f"{HEADS}:SimCLRProjectionHead",
            options=MLPHeadOptions,
            description="mean over queries -> Linear-ReLU-Linear -> L2 norm (1st-3rd)",
        )
    )
    register(
        HeadSpec(
            name="stabilized_mlp",
            factory=f"{HEADS}:StabilizedProjectionHead",
            options=StabilizedHeadOptions,
            description="mean over queries -> LayerNorm-Linear-ReLU-Dropout-Linear -> L2 norm (4th)",
        )
    )
    register(
        HeadSpec(
            name="group_discriminator",
            factory=f"{HEADS}:GroupDiscriminator",
            options=DiscriminatorOptions,
            description="LayerNorm-MLP group classifier on decoder features (7th)",
        )
    )


@hookimpl
def faap_register_generators(register: Callable[[GeneratorSpec], None]) -> None:
    register(
        GeneratorSpec(
            name="unet",
            factory=f"{GENERATORS}.perturb:research_unet",
            options=UNetOptions,
            description="the research U-Net (full-resolution BN blocks; research checkpoints load)",
        )
    )
    register(
        GeneratorSpec(
            name="subpixel",
            factory=f"{GENERATORS}.subpixel:SubPixelGenerator",
            options=SubPixelOptions,
            description="1/4-resolution features, pixel-shuffle head, learned stride tile; no BN (fast on CPU)",
        )
    )
    register(
        GeneratorSpec(
            name="detector-aware",
            factory=f"{GENERATORS}.subpixel:DetectorAwareGenerator",
            options=SubPixelOptions,
            uses_detector=True,
            description="subpixel + the frozen detector's backbone features of the clean image",
        )
    )
    register(
        GeneratorSpec(
            name="transformer-aware",
            factory=f"{GENERATORS}.transformer_aware:TransformerAwareGenerator",
            options=SubPixelOptions,
            uses_detector=True,
            description="detector-aware + the DETR encoder's memory and where its last decoder layer looks",
        )
    )


@hookimpl
def faap_register_loggers(register: Callable[[LoggerSpec], None]) -> None:
    register(
        LoggerSpec(
            name="csv",
            factory=f"{LOGGERS}:CSVLogger",
            description="RUN/metrics.csv: one row step,epoch,split,name,value per scalar (the default)",
        )
    )
    register(
        LoggerSpec(
            name="tensorboard",
            factory=f"{LOGGERS}:TensorBoardLogger",
            options=TensorBoardOptions,
            description="TensorBoard event files in RUN/tb/ (needs the 'tensorboard' extra)",
        )
    )
    register(
        LoggerSpec(
            name="mlflow",
            factory=f"{TRACKERS}:MLflowLogger",
            options=MLflowOptions,
            description="an MLflow run: resolved config, train/val scalars, evaluations (needs the 'mlflow' extra)",
        )
    )
    register(
        LoggerSpec(
            name="wandb",
            factory=f"{TRACKERS}:WandbLogger",
            options=WandbOptions,
            description="a Weights & Biases run, offline without an API key (needs the 'wandb' extra)",
        )
    )
