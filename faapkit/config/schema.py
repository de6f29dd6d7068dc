"""The configuration schema: one strict pydantic model per section (``extra="forbid"``, no
inf/nan), and its validation errors as one line per problem naming the key."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faapkit.config.defaults import BENCHMARKS, DEFAULT_DETECTOR, DEFAULT_MAX_ADVANTAGED_DROP
from faapkit.errors import ConfigError
from faapkit.plugins.specs import EMBEDDED_MAX_SIZE, EMBEDDED_MIN_SIZE, EMBEDDED_TRAIN_SCALES

ModelT = TypeVar("ModelT", bound=BaseModel)

PathField = Annotated[Path, Field(strict=False)]
DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PositiveInt = Annotated[int, Field(gt=0)]
Weight = Annotated[float, Field(ge=0)]
TRAIN_AT_EVAL_SCALE = "eval"


def check_device(name: str, key: str = "train.device") -> str:
    """``auto | cpu | mps | cuda | cuda:N``, else a configuration error naming ``key``."""
    if not DEVICE_RE.match(name):
        raise ConfigError(f"invalid {key} {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    return name


class Section(BaseModel):
    # inf/nan are never meaningful settings: refuse them here rather than fail during training
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True, allow_inf_nan=False)


class DataConfig(Section):
    """Where the images come from and how groups are defined."""

    root: PathField | None = Field(default=None, description="dataset root; empty = embedded synthetic benchmark")
    benchmark: str | None = Field(
        default=None,
        description=f"embedded benchmark without a root ({', '.join(BENCHMARKS)}); empty = the detector's",
    )
    layout: Literal["auto", "research", "attributes"] = "auto"
    split_by: str = Field(default="gender", description="image attribute that defines the groups")
    group_level: Literal["auto", "image", "box"] = Field(
        default="auto",
        description="whose split_by attribute: image, box (FACET: each person), auto = image if images carry it",
    )
    disadvantaged: str = Field(default="female", description="group the fairness loss pulls up (anchors)")
    advantaged: str = Field(default="male", description="reference group (detached targets)")
    train_split: str = "train"
    val_split: str = Field(default="val", description="split validated during training (train.val_every)")
    # unset, these three follow the detector (DetectorSpec.min_size, ...: 800 / 1333 / 480..800 for
    # upstream DETR); the defaults here are the embedded benchmark's tiny detectors'
    min_size: int = Field(
        default=EMBEDDED_MIN_SIZE,
        gt=0,
        description="eval resize of the short side; default: the detector's (upstream DETR: 800)",
    )
    max_size: int = Field(
        default=EMBEDDED_MAX_SIZE,
        gt=0,
        description="cap of the long side; default: the detector's (upstream DETR: 1333)",
    )
    train_scales: list[PositiveInt] = Field(
        default_factory=lambda: list(EMBEDDED_TRAIN_SCALES),
        min_length=1,
        description="short sides training draws from; 'eval' = [min_size]; default: the detector's",
    )
    shape_buckets: bool = Field(
        default=False,
        description="train on batches of one image size and scale (no padding, no crop), as evaluation does",
    )
    group_weights: dict[str, Weight] | None = Field(default=None, description="sampling weight per group; None = equal")
    disadvantaged_share: float | None = Field(
        default=None, gt=0, le=1, description="share of sampled images from the disadvantaged group (vs advantaged)"
    )
    num_workers: int | None = Field(
        default=None, ge=0, description="data-loading processes; empty = 0 on CPU, min(8, cores / 2) on CUDA"
    )
    limit_images: int | None = Field(default=None, gt=0, description="use only the first N images per split")
    on_corrupt: Literal["fail", "skip"] = "fail"
    on_invalid: Literal["fail", "skip"] = Field(
        default="fail",
        description="images with invalid boxes/categories/attributes/sizes/modes: refuse, or leave out and count",
    )

    @model_validator(mode="before")
    @classmethod
    def _train_at_eval_scale(cls, data: Any) -> Any:
        """``train_scales: eval`` is the evaluation scale, whatever the detector's: ``[min_size]``
        once ``min_size`` is known (set, or the detector's), so that a version can ask for it
        without naming a size that suits one detector only."""
        if isinstance(data, dict) and data.get("train_scales") == TRAIN_AT_EVAL_SCALE:
            return {**data, "train_scales": [data.get("min_size", EMBEDDED_MIN_SIZE)]}
        return data

    @field_validator("benchmark")
    @classmethod
    def _known_benchmark(cls, value: str | None) -> str | None:
        if value is not None and value not in BENCHMARKS:
            raise ValueError(f"unknown embedded benchmark '{value}' (known: {', '.join(BENCHMARKS)})")
        return value

    @model_validator(mode="after")
    def _one_dataset(self) -> DataConfig:
        """``benchmark`` names the embedded benchmark, ``root`` another dataset: with both, one of
        them would be ignored silently."""
        if self.benchmark is not None and self.root is not None:
            raise ValueError(
                f"data.benchmark ('{self.benchmark}') names the embedded benchmark and data.root ({self.root}) "
                "another dataset: give one"
            )
        return self

    @model_validator(mode="after")
    def _distinct_groups(self) -> DataConfig:
        if self.advantaged == self.disadvantaged:
            raise ValueError(
                f"data.advantaged and data.disadvantaged are both '{self.advantaged}': the gap needs two groups"
            )
        if self.group_weights is not None:
            pair = [self.group_weights.get(g, 0.0) for g in (self.disadvantaged, self.advantaged)]
            if min(pair) <= 0:
                raise ValueError(
                    f"data.group_weights must give both '{self.disadvantaged}' and '{self.advantaged}' a positive "
                    f"weight (got {self.group_weights}): a group with weight 0 is never sampled"
                )
        return self


class DetectorConfig(Section):
    name: str = Field(default=DEFAULT_DETECTOR, description="registered detector configuration")
    checkpoint: PathField | None = Field(
        default=None, description="DETR checkpoint; empty = the detector's shipped weights"
    )


class TrainConfig(Section):
    epochs: int = Field(default=24, gt=0)
    batch_size: int = Field(default=8, gt=0)
    lr: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    max_norm: float = Field(default=0.1, ge=0, description="joint grad-norm clip of trainable modules; 0 = off")
    seed: int = 42
    augment: Literal["none", "weak", "medium", "strong"] = "none"
    steps_per_epoch: int | None = Field(
        default=None, gt=0, description="default: one pass over the largest group x groups"
    )
    max_steps: int | None = Field(default=None, gt=0, description="stop after this many optimiser steps in total")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N | mps")
    amp: bool = Field(default=True, description="bf16 autocast on CUDA (ignored on CPU)")
    channels_last: bool = Field(default=False, description="NHWC memory format for generator and detector convolutions")
    compile: bool = Field(default=False, description="torch.compile the generator blocks (speed option)")
    fused_optimizer: bool = Field(default=True, description="fused AdamW kernel on CUDA (ignored on CPU)")
    save_every: int = Field(default=1, gt=0)
    max_nonfinite: int = Field(default=10, ge=0, description="abort after this many skipped non-finite steps")
    log_every: int = Field(default=10, gt=0, description="write train scalars to train.loggers every N steps")
    loggers: list[str] = Field(
        default_factory=lambda: ["csv"],
        description=(
            "scalar writers: csv (RUN/metrics.csv), tensorboard (RUN/tb/, the 'tensorboard' extra), "
            "mlflow and wandb (trackers, their extras)"
        ),
    )
    logger_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options per logger, e.g. tensorboard.flush_secs"
    )
    val_every: int = Field(
        default=4, ge=0, description="validate on data.val_split every N epochs and at the end (0 = never)"
    )
    val_limit_images: int | None = Field(default=None, gt=0, description="validate on the first N images only")
    val_bootstrap: int = Field(
        default=200,
        ge=0,
        description="paired bootstrap resamples of each validation's AP gap CI (0 = point estimates only)",
    )
    select_max_advantaged_drop: float = Field(
        default=DEFAULT_MAX_ADVANTAGED_DROP,
        ge=0,
        le=1,
        description="best.pt: the advantaged group's val AP may fall at most this much",
    )
    select_rule: Literal["parity", "largest_lift"] = Field(
        default="parity",
        description="best.pt among guarded epochs: parity = smallest |val gap|; largest_lift = smallest signed gap",
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE_RE.match(value):
            raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, not {value!r}")
        return value


class EvalConfig(Section):
    """``faap eval``'s settings, the one place their defaults live. ``faap eval`` layers them:
    these defaults < the run's stored ``[eval]`` < ``--config`` < ``--set eval.k=v`` < flags, and
    records the result (``eval_config`` in the metrics JSON). ``--rescore`` starts from the
    recorded settings and may change only those that need no inference (bootstrap, seed,
    confidence, iou_thresholds, coco_backend)."""

    split: str = Field(default="test", description="split that faap eval reports")
    batch_size: int = Field(default=8, gt=0, description="eval batch size (images of one shape per batch)")
    bootstrap: int = Field(default=1000, ge=0, description="paired bootstrap resamples (0 = no CIs)")
    seed: int = Field(default=0, ge=0, description="bootstrap seed (numpy takes no negative seed)")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="level of every bootstrap CI")
    iou_thresholds: list[float] | None = Field(
        default=None, description="IoU thresholds AP/AR average over; empty = COCO's 0.50:0.05:0.95"
    )
    amp: bool = Field(default=False, description="bf16 autocast on CUDA (AP differs slightly from fp32)")
    channels_last: bool = Field(default=True, description="NHWC convolutions (same AP up to rounding)")
    save_detections: bool = Field(default=True, description="keep each setting's detections next to the metrics")
    coco_backend: Literal["pycocotools", "faster-coco-eval"] = Field(
        default="pycocotools",
        description="what computes the 12 COCO stats: faster-coco-eval (the fast-coco extra) is faster, same numbers",
    )

    @field_validator("iou_thresholds", mode="before")
    @classmethod
    def _empty_is_cocos(cls, value: Any) -> Any:
        # as the description says: [] (e.g. --set eval.iou_thresholds=[]) is COCO's, stored as None
        return None if isinstance(value, list | tuple) and not value else value

    @field_validator("iou_thresholds")
    @classmethod
    def _ious(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            if any(not 0 < v < 1 for v in value):
                raise ValueError(f"every IoU threshold must be in (0, 1), got {value}")
            if sorted(set(value)) != value:
                raise ValueError(f"IoU thresholds must be increasing and distinct, got {value}")
        return value


class FaapConfig(Section):
    """The whole resolved configuration of a run."""

    version: str
    data: DataConfig = Field(default_factory=DataConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    generator: dict[str, Any] = Field(
        default_factory=dict, description="name = a registered generator (default: the version's), then its options"
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    loss: dict[str, Any] = Field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    head: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------- validation


def validate_model(model: type[ModelT], data: Any, *, prefix: str = "") -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, prefix)) from None


def format_validation_error(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """One line per problem, joined: location, what is wrong, and for unknown keys the valid ones."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = ".".join(([prefix] if prefix else []) + loc)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1])
            parts.append(f"unknown key '{where}'; valid keys here: {', '.join(valid) or '(none)'}")
        else:
            value = err.get("input")
            shown = json.dumps(value, default=str) if not isinstance(value, dict) else "{...}"
            why = ""
            if isinstance(value, str) and _looks_numeric(value) and err["type"] in NUMBER_ERRORS:
                why = "; it was read as a string: write the number without quotes"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "value_error" and isinstance(value, dict):
                parts.append(msg)  # a check across keys: its message names them
                continue
            parts.append(f"invalid value for '{where}': {msg} (got {shown}{why})")
    return "; ".join(parts)


NUMBER_ERRORS = {"float_type", "int_type", "float_parsing", "int_parsing"}


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fields_at(model: type[BaseModel], loc: Sequence[str]) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return sorted(getattr(current, "model_fields", {}))
