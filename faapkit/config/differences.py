"""Where two run configurations differ, key by key: what ``--resume`` refuses (a run continued
under another configuration) and what a seed set refuses (seeds that ran different ones). The
keys that change how a run is executed, never what it computes (:data:`RESUMABLE_KEYS`), are
not differences."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from faapkit.config.schema import FaapConfig

# config keys that may change when resuming (they do not change what is computed)
RESUMABLE_KEYS = {
    ("train", "max_steps"),
    ("train", "device"),
    ("data", "num_workers"),
    ("train", "log_every"),
    ("train", "loggers"),
    ("train", "logger_options"),
    ("train", "channels_last"),
    ("train", "compile"),
    ("train", "fused_optimizer"),
    ("train", "val_bootstrap"),
}


def differing(
    old: Mapping[str, Any], new: Mapping[str, Any], ignore: frozenset[tuple[str, ...]] = frozenset()
) -> Iterator[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` of each leaf that differs between two config dumps,
    in key order; ``RESUMABLE_KEYS`` and ``ignore`` left out (a key missing on one side is ``None``)."""
    yield from _differing(old, new, (), RESUMABLE_KEYS | ignore)


def _differing(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: tuple[str, ...], skip: set[tuple[str, ...]]
) -> Iterator[tuple[str, Any, Any]]:
    for key in sorted(set(old) | set(new)):
        path = (*prefix, key)
        if path in skip or path[:2] in skip:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            yield from _differing(a, b, path, skip)
        elif a != b:
            yield ".".join(path), a, b


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dumps, ``RESUMABLE_KEYS`` left out."""
    return [key for key, _, _ in differing(old, new)]


def with_defaults(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run config with the keys added since it was written at their defaults (the
    behaviour the run was trained with), so that resuming an older run compares like with like.
    A config that no longer validates is compared as stored (its differences are then named)."""
    try:
        return FaapConfig.model_validate(dict(stored)).model_dump(mode="json")
    except ValidationError:
        return dict(stored)
