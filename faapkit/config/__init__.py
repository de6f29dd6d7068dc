"""Validated configuration: pydantic v2 models (strict, ``extra="forbid"``).

A run's configuration is built in layers, later ones winning:
``built-in defaults < version defaults < config file (TOML/YAML) < --set key.path=value``.
Validation happens in two steps because plugins add versions, losses and schedules at run time:
first the fixed sections, then ``loss`` and each ``schedules.<role>`` against the options model of
the component the version (or the user) chose.
"""

from faapkit.config.schema import (
    DEFAULT_DETECTOR,
    DataConfig,
    DetectorConfig,
    EvalConfig,
    FaapConfig,
    check_device,
    format_validation_error,
    parse_override,
    read_config_file,
    resolve_config,
    to_toml,
    validate_model,
)

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
