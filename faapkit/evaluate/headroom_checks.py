"""What ``faap probe headroom`` refuses before the probe runs, naming the option (the probe itself,
``faapkit.evaluate.headroom``, refuses them too, later and without the option's name): option
values that cannot run, groups the split does not have, and an ``--out`` that is no earlier
headroom report. Torch-free: the probe imports torch, these checks must not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faapkit.errors import ConfigError

HEADROOM_SCHEMA = "faapkit.headroom/1"  # what faapkit.evaluate.headroom writes (SCHEMA there, with torch)


def check_options(
    epsilon: float, steps: int, step_size: float, limit_images: int | None, pair: tuple[str, str], device: str
) -> None:
    """Refuse option values that cannot run, before any data or detector is loaded (``pair``:
    ``--disadvantaged``, ``--advantaged``)."""
    from faapkit.distributed import check_device_available

    if not 0 < epsilon <= 1:
        raise ConfigError(f"--epsilon must be in (0, 1], got {epsilon}")
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if not 0 < step_size <= epsilon:
        raise ConfigError(f"--step-size must be in (0, --epsilon={epsilon}], got {step_size}")
    if limit_images is not None and limit_images < 2:
        raise ConfigError(f"--limit-images must be at least 2, got {limit_images}")
    if pair[0] == pair[1]:
        raise ConfigError(f"--disadvantaged and --advantaged are both '{pair[1]}': the gap needs two groups")
    check_device_available(device, "--device")


def check_groups(split_data: Any, disadvantaged: str, advantaged: str) -> None:
    """The named groups are groups of the split (named by option)."""
    for flag, group in (("--disadvantaged", disadvantaged), ("--advantaged", advantaged)):
        if group not in split_data.groups:
            raise ConfigError(
                f"{flag} '{group}' is not a group of '{split_data.split_by}' in split '{split_data.split}' "
                f"(groups: {', '.join(split_data.groups)})"
            )


def not_a_report(path: Path) -> str | None:
    """Why an existing ``path`` may not be replaced by a headroom report: it is none."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8")).get("schema")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        schema = None
    return None if schema == HEADROOM_SCHEMA else "is no faap probe headroom report"
