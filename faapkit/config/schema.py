"""Validated configuration: pydantic v2 models (strict, ``extra="forbid"``).

A run's configuration is built in layers, later ones winning:
``built-in defaults < version defaults < config file (TOML/YAML) < --set key.path=value``.
Validation happens in two steps because plugins add versions, losses and schedules at run time:
first the fixed sections, then ``loss`` and each ``schedules.<role>`` against the options model of
the component the version (or the user) chose.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faapkit.errors import ConfigError, UnknownNameError
from faapkit.plugins.registry import Registries
from faapkit.plugins.specs import VersionSpec

ModelT = TypeVar("ModelT", bound=BaseModel)

PathField = Annotated[Path, Field(strict=False)]
EMBEDDED_DEFAULTS: dict[str, dict[str, Any]] = {"train": {"steps_per_epoch": 10}}
# the research U-Net at a quarter of its cost on the embedded benchmark's 128 px images
EMBEDDED_UNET_DEFAULTS: dict[str, Any] = {"base_channels": 16}


DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
PositiveInt = Annotated[int, Field(gt=0)]
Weight = Annotated[float, Field(ge=0)]


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
    layout: Literal["auto", "research", "attributes"] = "auto"
    split_by: str = Field(default="gender", description="image attribute that defines the groups")
    disadvantaged: str = Field(default="female", description="group the fairness loss pulls up (anchors)")
    advantaged: str = Field(default="male", description="reference group (detached targets)")
    train_split: str = "train"
    val_split: str = Field(default="val", description="split validated during training (train.val_every)")
    # unset, these three follow the detector (DetectorSpec.min_size, ...: 800 / 1333 / 480..800 for
    # upstream DETR); the defaults here are the embedded benchmark's tiny detectors'
    min_size: int = Field(
        default=128, gt=0, description="eval resize of the short side; default: the detector's (upstream DETR: 800)"
    )
    max_size: int = Field(
        default=213, gt=0, description="cap of the long side; default: the detector's (upstream DETR: 1333)"
    )
    train_scales: list[PositiveInt] = Field(
        default_factory=lambda: [112, 120, 128, 136, 144],
        min_length=1,
        description="short sides training draws from; default: the detector's (upstream DETR: 480..800)",
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


# the detector of the default benchmark (faapkit.data.synth.DEFAULT_BIAS); detr-synth-tiny (v1) is history
DEFAULT_DETECTOR = "detr-synth-tiny-v3"


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
        description="scalar writers: csv (RUN/metrics.csv), tensorboard (RUN/tb/, the 'tensorboard' extra)",
    )
    logger_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options per logger, e.g. tensorboard.flush_secs"
    )
    val_every: int = Field(
        default=4, ge=0, description="validate on data.val_split every N epochs and at the end (0 = never)"
    )
    val_limit_images: int | None = Field(default=None, gt=0, description="validate on the first N images only")
    select_max_advantaged_drop: float = Field(
        default=0.005, ge=0, le=1, description="best.pt: the advantaged group's val AP may fall at most this much"
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
    confidence, iou_thresholds)."""

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


# ---------------------------------------------------------------- loading and merging


CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
# YAML 1.1 (PyYAML) reads "1e-4" as a string: its float pattern needs a dot. YAML 1.2 and every
# user mean a number, so the 1.2 float pattern is added to the loader.
_YAML12_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"""
    r"""|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"""
)


@dataclass(frozen=True)
class _Yaml11Bool:
    """A YAML 1.1 boolean spelt other than true/false (``on``, ``off``, ``yes``, ``no``): kept as
    written, with its line, so that it is refused by name rather than read as a bool."""

    text: str
    line: int


def _construct_bool(loader: Any, node: Any) -> bool | _Yaml11Bool:
    text = str(loader.construct_scalar(node))
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return _Yaml11Bool(text, node.start_mark.line + 1)


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # YAML 1.1 reads `advantaged: on` as True, which then fails as "not a valid string" naming
    # nothing; YAML 1.2 and most users mean the word. Such values are refused by name instead.
    Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)

    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))
    # integers must stay integers: the int resolver (added first for digits) is tried before ours
    for first in "-+0123456789.":
        resolvers = Loader.yaml_implicit_resolvers.get(first, [])
        floats = [r for r in resolvers if r[0] == "tag:yaml.org,2002:float"]
        others = [r for r in resolvers if r[0] != "tag:yaml.org,2002:float"]
        Loader.yaml_implicit_resolvers[first] = others + floats
    return Loader


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``) or JSON (``.json``) config file, each with
    its own parser, into a dict."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigError(f"config file {path}: unknown format '{suffix}' (use {', '.join(CONFIG_SUFFIXES)})")
    try:
        # utf-8-sig: a file saved with a byte-order mark (Windows editors) reads like one without
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        if suffix in {".yaml", ".yml"}:
            import yaml

            data = yaml.load(text, Loader=_yaml_loader()) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot parse config file {path} as {suffix[1:].upper()}: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a table/mapping at the top level")
    _refuse_yaml11_bools(data, path)
    return data


def _refuse_yaml11_bools(node: Any, path: Path, where: str = "") -> None:
    """The first YAML 1.1 boolean spelt ``on``/``off``/``yes``/``no`` (as a value or a key) is a
    configuration error naming the key and the file, and saying to quote it."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = key.text if isinstance(key, _Yaml11Bool) else key
        here = f"{where}[{name}]" if isinstance(node, list) else f"{where}.{name}" if where else str(name)
        for found, what in ((key, f"the key '{here}'"), (value, f"'{here}'")):
            if isinstance(found, _Yaml11Bool):
                raise ConfigError(
                    f"config file {path}, line {found.line}: {what} is {found.text}, a boolean in YAML 1.1: quote it "
                    f'("{found.text}") if you mean the word, or write true/false'
                )
        _refuse_yaml11_bools(value, path, here)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> (["train", "lr"], 0.0003). Values are TOML literals, else strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key.path=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return [p for p in key.strip().split(".") if p], value


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``. A schedule whose ``name`` changes is replaced whole,
    since the old schedule's options would not fit the new one."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if (
            isinstance(value, Mapping)
            and isinstance(out.get(key), dict)
            and not ("name" in value and value.get("name") != out[key].get("name"))
        ):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value) if isinstance(value, Mapping | list) else value
    return out


def resolve_config(
    registries: Registries,
    *,
    version: str | None = None,
    file: Path | None = None,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
    version_from: str = "--version",
) -> FaapConfig:
    """Layer defaults, version defaults, file and overrides; validate everything. ``base`` (a stored
    run's config, for resume) replaces the version defaults; ``version_from`` says where ``version``
    came from (an option, a resumed run), for the error when the file or ``--set`` names another."""
    raw_file = read_config_file(file) if file is not None else {}
    _check_sections(raw_file, str(file))
    override_tree: dict[str, Any] = {}
    for item in overrides:
        path, value = parse_override(item)
        node = override_tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r} conflicts with another --set")
        node[path[-1]] = value
    _check_sections(override_tree, "--set")
    spec = _chosen_version(
        registries,
        [
            (version_from, version),
            ("--set version", override_tree.get("version")),
            (f"the config file {file}", raw_file.get("version")),
        ],
    )
    tree: dict[str, Any] = {"version": spec.name}
    tree = deep_merge(tree, spec.defaults if base is None else base)
    tree = deep_merge(tree, raw_file)
    root = override_tree.get("data", {}).get("root", tree.get("data", {}).get("root"))
    if base is None and root is None:
        # The embedded benchmark is small and must train on 2 CPU cores in minutes: short epochs keep
        # the paper's 24-epoch schedules, and a 16-channel generator quarters the U-Net's cost on its
        # 128 px images. Explicit values win; `faap config show` prints what applies.
        for section, values in EMBEDDED_DEFAULTS.items():
            for key, value in values.items():
                tree.setdefault(section, {}).setdefault(key, value)
    tree = deep_merge(tree, override_tree)
    tree["version"] = spec.name
    if base is None:  # a resumed run keeps the batching and input size it was trained with
        _follow_detector_batching(tree, registries)
        _follow_detector_sizes(tree, registries)
    generator = tree.setdefault("generator", {})
    generator.setdefault("name", spec.generator)
    if base is None and root is None and generator["name"] == "unet":
        for key, value in EMBEDDED_UNET_DEFAULTS.items():
            generator.setdefault(key, value)
    for role, schedule_name in spec.schedules.items():
        tree.setdefault("schedules", {}).setdefault(role, {}).setdefault("name", schedule_name)
    _refuse_non_finite(tree)
    config = validate_model(FaapConfig, tree)
    return _absolute_paths(_validate_components(config, registries))


def _chosen_version(registries: Registries, given: list[tuple[str, Any]]) -> VersionSpec:
    """The version spec that every place naming one agrees on (``given``: (where, name), first
    wins), else the default 4th. Two places naming different versions are refused, naming both:
    letting one win silently trains another method than the other one says. Aliases of one
    version agree."""
    named = [(where, name) for where, name in given if name is not None]
    for where, name in named:
        if not isinstance(name, str):
            raise ConfigError(f"version must be a string, got {name!r} ({where})")
    specs = [(where, name, registries.versions.get(name)) for where, name in named]
    for where, name, spec in specs[1:]:
        if spec.name != specs[0][2].name:
            first_where, first_name, _ = specs[0]
            raise ConfigError(
                f"{first_where} names version '{first_name}' but {where} names '{name}': give one, or make them agree"
            )
    return specs[0][2] if specs else registries.versions.get("4th")


def _follow_detector_batching(tree: dict[str, Any], registries: Registries) -> None:
    """``data.shape_buckets`` unset: on when the detector's weights were trained on unpadded
    batches (``DetectorSpec.trained_unpadded`` for its packaged weights, what a pretrain file
    given as ``detector.checkpoint`` records for those). A generator trained on padded batches
    against such a detector learns to correct padding it never meets at evaluation, and lowers the
    AP it should raise (docs/effect-diagnosis.md, section 9)."""
    data, det = tree.setdefault("data", {}), tree.get("detector") or {}
    if "shape_buckets" in data:
        return
    if det.get("checkpoint"):  # a `faap detector pretrain` file says how it was trained; others: padded
        recorded = _recorded_batching(Path(str(det["checkpoint"])))
        if recorded is not None:
            data["shape_buckets"] = recorded
        return
    name = det.get("name", DetectorConfig.model_fields["name"].default)
    if isinstance(name, str) and name in registries.detectors:
        data["shape_buckets"] = registries.detectors.get(name).trained_unpadded


SIZE_KEYS = ("min_size", "max_size", "train_scales")


def _follow_detector_sizes(tree: dict[str, Any], registries: Registries) -> None:
    """``data.min_size``, ``data.max_size`` and ``data.train_scales`` unset: the detector's
    (``DetectorSpec``), the input size its weights were trained at. Upstream DETR at the tiny
    detectors' 128 px would be measured far from its working point."""
    data, det = tree.setdefault("data", {}), tree.get("detector") or {}
    name = det.get("name", DetectorConfig.model_fields["name"].default) if isinstance(det, Mapping) else None
    if not isinstance(data, dict) or not isinstance(name, str) or name not in registries.detectors:
        return  # validation names what is wrong
    spec = registries.detectors.get(name)
    for key, value in zip(SIZE_KEYS, (spec.min_size, spec.max_size, list(spec.train_scales)), strict=True):
        data.setdefault(key, value)


def _recorded_batching(checkpoint: Path) -> bool | None:
    """``shape_buckets`` as a pretrain checkpoint records it; ``None`` when it records none or is
    not there (the detector loader names that). A file that cannot be read, or whose record is
    malformed, is refused here, before any work."""
    from faapkit.io import checkpoint_training

    if not checkpoint.is_file():
        return None
    recorded: bool | None = checkpoint_training(checkpoint).get("shape_buckets")
    return recorded


def _absolute_paths(config: FaapConfig) -> FaapConfig:
    """Relative paths resolved against the current folder: the stored run config must name the
    same files wherever ``faap eval RUN`` or ``--resume`` is run from."""
    data, det = config.data, config.detector
    return config.model_copy(
        update={
            "data": data.model_copy(update={"root": data.root.absolute() if data.root else None}),
            "detector": det.model_copy(update={"checkpoint": det.checkpoint.absolute() if det.checkpoint else None}),
        }
    )


def _check_sections(tree: Mapping[str, Any], origin: str) -> None:
    """Sections (and each ``schedules.<role>``) must be tables: merging a number into one would
    fail later with a message naming nothing."""
    for key in FaapConfig.model_fields:
        if key != "version" and key in tree and not isinstance(tree[key], Mapping):
            shown = json.dumps(tree[key], default=str)
            raise ConfigError(f"'{key}' must be a table of settings, got {shown} ({origin})")
    for role, section in dict(tree.get("schedules") or {}).items():
        if not isinstance(section, Mapping):
            raise ConfigError(
                f"'schedules.{role}' must be a table (name = ..., options), got {json.dumps(section, default=str)} "
                f"({origin})"
            )


def _refuse_non_finite(node: Any, path: str = "") -> None:
    """inf/nan are never a meaningful setting, in any section or plugin's options: refuse them
    before anything runs (a NaN learning rate would otherwise train nothing, silently)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            _refuse_non_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            _refuse_non_finite(value, f"{path}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"invalid value for '{path}': {node} is not a finite number")


def _validate_components(config: FaapConfig, registries: Registries) -> FaapConfig:
    spec = registries.versions.get(config.version)
    loss_spec = registries.losses.get(spec.loss)
    loss = validate_model(loss_spec.options, config.loss, prefix="loss").model_dump(mode="json")
    head: dict[str, Any] = {}
    if spec.head is not None:
        head = validate_model(registries.heads.get(spec.head).options, config.head, prefix="head").model_dump(
            mode="json"
        )
    elif config.head:
        raise ConfigError(f"version '{spec.name}' has no head, but [head] options were given")
    schedules: dict[str, dict[str, Any]] = {}
    unknown_roles = set(config.schedules) - set(spec.schedules)
    if unknown_roles:
        raise ConfigError(
            f"unknown schedule role(s) {sorted(unknown_roles)} for version '{spec.name}'; "
            f"valid: {', '.join(sorted(spec.schedules))}"
        )
    for role, section in config.schedules.items():
        options = dict(section)
        name = options.pop("name")
        sched = registries.schedules.get(str(name))
        sched.check_role(role, f"schedules.{role}.name")
        validated = validate_model(sched.options, options, prefix=f"schedules.{role}").model_dump(mode="json")
        schedules[role] = {"name": sched.name, **validated}
    gen_options = dict(config.generator)
    gen_spec = registries.generators.get(str(gen_options.pop("name", spec.generator)))
    generator = {
        "name": gen_spec.name,
        **validate_model(gen_spec.options, gen_options, prefix="generator").model_dump(mode="json"),
    }
    _check_loggers(config, registries)
    return config.model_copy(update={"loss": loss, "head": head, "schedules": schedules, "generator": generator})


def _check_loggers(config: FaapConfig, registries: Registries) -> None:
    """``train.loggers`` names registered loggers, once each; ``train.logger_options`` only those."""
    names = config.train.loggers
    for name in names:
        try:
            registries.loggers.get(name)
        except UnknownNameError as exc:
            raise ConfigError(f"train.loggers: {exc}") from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"train.loggers names {', '.join(repeated)} more than once")
    for name, options in config.train.logger_options.items():
        if name not in names:
            raise ConfigError(
                f"train.logger_options.{name} configures a logger that train.loggers ({names}) does not use"
            )
        validate_model(registries.loggers.get(name).options, options, prefix=f"train.logger_options.{name}")


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


# ---------------------------------------------------------------- output


def to_toml(data: Mapping[str, Any]) -> str:
    """A resolved config as TOML that ``tomllib`` reads back to the same values (``tomli-w``
    quotes every key that needs it, e.g. a group named ``skin 6-10``). TOML has no null: unset
    (``None``) settings are left out and named in a comment at the top, so that what is unset
    stays visible."""
    import tomli_w

    unset: list[str] = []
    kept = _without_none(data, "", unset)
    # json-escaped: a key holding a newline would otherwise end the comment and break the TOML
    head = "".join(f"# {json.dumps(key)[1:-1]} = (unset)\n" for key in unset)
    return head + tomli_w.dumps(kept)


def _without_none(node: Any, where: str, unset: list[str]) -> Any:
    """``node`` without its ``None`` values (their dotted keys appended to ``unset``); a ``None``
    inside a list has no key to leave out and is refused by tomli-w as it should be."""
    if not isinstance(node, Mapping):
        return node
    kept: dict[str, Any] = {}
    for key, value in node.items():
        here = f"{where}.{key}" if where else str(key)
        if value is None:
            unset.append(here)
        else:
            kept[str(key)] = _without_none(value, here, unset)
    return kept
