"""``faap probe headroom`` behind one call: the option and output checks, the detector and split,
the oracle probe (:mod:`faapkit.evaluate.headroom`) and its report written under the output lock.
The CLI parses the options and prints the result.

What it refuses before the probe runs names the option (the probe itself refuses them too,
later and without the option's name): option values that cannot run, groups the split does not
have, and an ``--out`` that is no earlier headroom report. Torch-free: the probe imports torch,
these checks must not."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from faapkit.errors import ConfigError
from faapkit.evaluate.command.host import Notes
from faapkit.evaluate.requests import ProbeCommand

HEADROOM_SCHEMA = "faapkit.headroom/1"  # what faapkit.evaluate.headroom writes (SCHEMA there, with torch)


def run_probe(cmd: ProbeCommand, detectors: Any, say: Notes) -> dict[str, Any]:
    """The headroom report of ``cmd`` (``detectors``: the registry of detector specs); written to
    ``cmd.out`` when given (never over another file, nor over a report without ``force``)."""
    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.evaluate.command.settings import check_bootstrap
    from faapkit.io import atomic_write_text

    pair = (cmd.disadvantaged, cmd.advantaged)
    check_options(cmd.epsilon, cmd.steps, cmd.step_size, cmd.limit_images, pair, cmd.device)
    check_bootstrap(cmd.bootstrap)
    if cmd.out is not None:
        from faapkit.artifacts.outputs import check_output

        check_output(cmd.out, "--out", force=cmd.force, replaceable=not_a_report)
    # one probe per report: a second one into the same --out is refused before any work
    with OutputLock(cmd.out, note=say.warn) if cmd.out is not None else contextlib.nullcontext() as lock:
        result = _probe(cmd, detectors, say)
        if isinstance(lock, OutputLock):
            lock.check_unchanged(cmd.force)  # written meanwhile by a process that ignored the lock
            atomic_write_text(lock.output, json.dumps(result, indent=2) + "\n")
            say.info(f"report written to {cmd.out}")
    return result


def _probe(cmd: ProbeCommand, detectors: Any, say: Notes) -> dict[str, Any]:
    from faapkit.config import DEFAULT_DETECTOR, EvalConfig
    from faapkit.data.synth import embedded_dataset_for
    from faapkit.detr.frozen import load_detector
    from faapkit.distributed import setup_process
    from faapkit.evaluate.evaluator import load_eval_split
    from faapkit.evaluate.headroom import probe_headroom, refuse_box_level
    from faapkit.evaluate.requests import HeadroomRequest

    spec = detectors.get(cmd.detector or DEFAULT_DETECTOR)
    _, dev = setup_process(cmd.device, key="--device")
    root = cmd.data or embedded_dataset_for(spec, cmd.detector_checkpoint)
    det = load_detector(spec, cmd.detector_checkpoint, device=dev)
    split_data = load_eval_split(root, cmd.split, cmd.split_by, "auto", cmd.limit_images, "fail", resize=det.sizes())
    check_groups(split_data, cmd.disadvantaged, cmd.advantaged)
    refuse_box_level(split_data)
    req = HeadroomRequest(
        data=split_data, detector=det, device=dev, epsilon=cmd.epsilon, steps=cmd.steps, step_size=cmd.step_size,
        eval_config=EvalConfig(bootstrap=cmd.bootstrap), disadvantaged=cmd.disadvantaged, advantaged=cmd.advantaged,
    )  # fmt: skip
    say.info(
        f"oracle: {cmd.steps} signed-gradient steps of {cmd.step_size} per image, |delta| <= {cmd.epsilon} "
        "(an upper bound)"
    )
    return probe_headroom(req)


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
