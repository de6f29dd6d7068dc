"""Layering and resolution: ``resolve_config`` merges built-in defaults < version defaults (or a
resumed run's config) < config file < ``--set``, applies the embedded benchmark's and the detector's
defaults where nothing was said, and validates the result, plugin components included."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faapkit.config.defaults import DEFAULT_VERSION, EMBEDDED_DEFAULTS, EMBEDDED_UNET_DEFAULTS
from faapkit.config.readers import parse_override, read_config_file
from faapkit.config.schema import DetectorConfig, FaapConfig, validate_model
from faapkit.errors import ConfigError, UnknownNameError
from faapkit.plugins.registry import Registries
from faapkit.plugins.specs import VersionSpec


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
        # no dataset named: the embedded benchmark's small defaults (config/defaults.py says why).
        # Explicit values win; `faap config show` prints what applies.
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
    wins), else ``DEFAULT_VERSION``. Two places naming different versions are refused, naming both:
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
    return specs[0][2] if specs else registries.versions.get(DEFAULT_VERSION)


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
