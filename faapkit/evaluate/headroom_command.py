"""``faap probe headroom`` behind one call: the option and output checks, the detector and split,
the oracle probe (:mod:`faapkit.evaluate.headroom`) and its report written under the output lock.
The CLI parses the options and prints the result."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.evaluate.host import Notes


@dataclass(frozen=True)
class ProbeCommand:
    """The options of ``faap probe headroom`` (see its ``--help``)."""

    split: str
    split_by: str
    data: Path | None
    detector: str | None
    detector_checkpoint: Path | None
    epsilon: float
    steps: int
    step_size: float
    disadvantaged: str
    advantaged: str
    limit_images: int | None
    bootstrap: int
    device: str
    out: Path | None
    force: bool


def run_probe(cmd: ProbeCommand, detectors: Any, say: Notes) -> dict[str, Any]:
    """The headroom report of ``cmd`` (``detectors``: the registry of detector specs); written to
    ``cmd.out`` when given (never over another file, nor over a report without ``force``)."""
    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.evaluate.headroom_checks import check_options, not_a_report
    from faapkit.evaluate.settings import check_bootstrap
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
    from faapkit.config import DEFAULT_DETECTOR
    from faapkit.data.synth import embedded_dataset_for
    from faapkit.detr.frozen import load_detector
    from faapkit.distributed import setup_process
    from faapkit.evaluate.evaluator import load_eval_split
    from faapkit.evaluate.headroom import HeadroomRequest, probe_headroom, refuse_box_level
    from faapkit.evaluate.headroom_checks import check_groups

    spec = detectors.get(cmd.detector or DEFAULT_DETECTOR)
    _, dev = setup_process(cmd.device, key="--device")
    root = cmd.data or embedded_dataset_for(spec, cmd.detector_checkpoint)
    det = load_detector(spec, cmd.detector_checkpoint, device=dev)
    split_data = load_eval_split(root, cmd.split, cmd.split_by, "auto", cmd.limit_images, "fail")
    check_groups(split_data, cmd.disadvantaged, cmd.advantaged)
    refuse_box_level(split_data)
    req = HeadroomRequest(
        data=split_data, detector=det, device=dev, epsilon=cmd.epsilon, steps=cmd.steps, step_size=cmd.step_size,
        bootstrap=cmd.bootstrap, disadvantaged=cmd.disadvantaged, advantaged=cmd.advantaged,
    )  # fmt: skip
    say.info(
        f"oracle: {cmd.steps} signed-gradient steps of {cmd.step_size} per image, |delta| <= {cmd.epsilon} "
        "(an upper bound)"
    )
    return probe_headroom(req)
