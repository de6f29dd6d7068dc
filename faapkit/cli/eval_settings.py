"""One source of ``faap eval`` settings: :class:`faapkit.config.EvalConfig`, layered
``defaults < the run's [eval] (or, for --rescore, the rescored file's) < --config < --set < flags``.
Each layer is validated as it is added, so an error names the key and the layer it came from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faapkit.cli._console import warn
from faapkit.cli._options import MIN_RESAMPLES
from faapkit.errors import ConfigError

# settings a rescore cannot change: they decide the detections themselves
INFERENCE_KEYS = ("split", "batch_size", "amp", "channels_last")


def file_layer(path: Path) -> dict[str, Any]:
    """The ``[eval]`` section of a config file; its other (valid) sections do not apply to eval."""
    from faapkit.config import FaapConfig, read_config_file

    raw = read_config_file(path)
    unknown = sorted(set(raw) - set(FaapConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown key '{unknown[0]}' in {path}; valid keys here: {', '.join(sorted(FaapConfig.model_fields))}"
        )
    section = raw.get("eval", {})
    if not isinstance(section, Mapping):
        raise ConfigError(f"'eval' must be a table of settings ({path})")
    others = sorted(k for k in raw if k not in ("eval", "version"))
    if others:
        warn(f"{path}: faap eval reads only its [eval] section (not {', '.join(others)})")
    return dict(section)


def set_layer(items: list[str]) -> dict[str, Any]:
    """``--set eval.key=value`` items (faap eval has no other section to set)."""
    from faapkit.config import parse_override

    layer: dict[str, Any] = {}
    for item in items:
        path, value = parse_override(item)
        if len(path) != 2 or path[0] != "eval":
            raise ConfigError(f"faap eval --set takes eval.<key>=value, got {item!r}")
        layer[path[1]] = value
    return layer


def resolve(layers: list[tuple[str, Mapping[str, Any]]]) -> tuple[Any, dict[str, str]]:
    """The validated :class:`EvalConfig` and, per key, the layer that set it ("default" if none)."""
    from pydantic import ValidationError

    from faapkit.config import EvalConfig, format_validation_error

    merged: dict[str, Any] = {}
    sources = dict.fromkeys(EvalConfig.model_fields, "default")
    for origin, layer in layers:
        merged.update(layer)
        try:
            EvalConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(f"{format_validation_error(exc, EvalConfig, 'eval')} ({origin})") from None
        sources.update(dict.fromkeys(layer, origin))
    cfg = EvalConfig.model_validate(merged)
    if cfg.bootstrap != 0 and cfg.bootstrap < MIN_RESAMPLES:
        raise ConfigError(
            f"eval.bootstrap must be 0 (no CIs) or at least {MIN_RESAMPLES}, got {cfg.bootstrap} "
            f"({sources['bootstrap']})"
        )
    return cfg, sources


def flag_layer(**flags: Any) -> dict[str, Any]:
    """The flags that were given (``None`` = not given); ``iou`` is ``eval.iou_thresholds``."""
    layer = {k: v for k, v in flags.items() if v is not None and k != "iou"}
    if flags.get("iou"):
        layer["iou_thresholds"] = [float(v) for v in flags["iou"]]
    return layer


def flag_layers(layer: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One layer per given flag, named as the user typed it (``--batch-size``, ``--no-amp``), so
    that each key's recorded source is the flag that set it."""
    out = []
    for key, value in layer.items():
        name = "--iou" if key == "iou_thresholds" else "--" + key.replace("_", "-")
        if isinstance(value, bool) and not value:
            name = "--no-" + name[2:]
        out.append((name, {key: value}))
    return out


def run_layer(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The run's stored ``[eval]`` less the keys it holds at their default: a run stores its whole
    resolved section, so only the keys it changed are its own (the others' source is "default")."""
    from faapkit.config import EvalConfig

    return {
        k: v for k, v in stored.items() if k not in EvalConfig.model_fields or v != EvalConfig.model_fields[k].default
    }


def iou_tag(cfg: Any) -> list[str]:
    """File-name tag of non-default IoU thresholds (they change what AP means)."""
    if cfg.iou_thresholds is None:
        return []
    return ["iou" + "-".join(f"{t:g}" for t in cfg.iou_thresholds)]
