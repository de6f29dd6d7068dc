"""Validated configuration: pydantic v2 models (strict, ``extra="forbid"``).

A run's configuration is built in layers, later ones winning:
``built-in defaults < version defaults < config file (TOML/YAML) < --set key.path=value``.
Validation happens in two steps because plugins add versions, losses and schedules at run time:
first the fixed sections, then ``loss`` and each ``schedules.<role>`` against the options model of
the component the version (or the user) chose.

One module per job, behind this one: ``schema`` (the section models, their validation errors),
``readers`` (config files and ``--set`` items), ``layering`` (``resolve_config``), ``writer``
(TOML out) and ``defaults`` (the embedded benchmark's defaults, the built-in names the core uses).
Callers import from ``faapkit.config``.
"""

from faapkit.config.defaults import DEFAULT_DETECTOR
from faapkit.config.layering import resolve_config
from faapkit.config.readers import parse_override, read_config_file
from faapkit.config.schema import (
    DataConfig,
    DetectorConfig,
    EvalConfig,
    FaapConfig,
    check_device,
    format_validation_error,
    validate_model,
)
from faapkit.config.writer import to_toml

__all__ = [
    "DEFAULT_DETECTOR",
    "DataConfig",
    "DetectorConfig",
    "EvalConfig",
    "FaapConfig",
    "check_device",
    "format_validation_error",
    "parse_override",
    "read_config_file",
    "resolve_config",
    "to_toml",
    "validate_model",
]
