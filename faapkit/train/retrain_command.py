"""``faap probe retrain`` behind one call: the checks, the seeds, the outputs (the loop is
:mod:`faapkit.train.retrain`). The CLI parses the options and prints the result.

``--out DIR`` receives ``DIR/retrain.json`` (the plan, one row per seed as ``faap eval SEEDSET``
shows them, and their spread) and, per seed, ``DIR/seed-N/retrain.json`` (val rows, the chosen
epoch, the test result with ``faap eval``'s keys) and ``DIR/seed-N/detector.pth`` (the chosen
weights, ``{"model": state_dict}``, usable as ``detector.checkpoint``). Every file is written
atomically; an existing one is replaced only with ``--force``, and only when it is one of this
command's (never a run's record nor the shipped weights, which are only read).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.errors import ConfigError

RETRAIN_SCHEMA = "faapkit.retrain/1"  # faapkit.train.retrain.SCHEMA, without torch
REPORT = "retrain.json"
WEIGHTS = "detector.pth"


@dataclass(frozen=True)
class RetrainCommand:
    """The options of one ``faap probe retrain``; ``set_``: ``--set`` overrides of ``level-up``'s
    configuration (``train.epochs``, ``data.limit_images``, ... for a smoke run)."""

    out: Path
    seeds: str = "0-4"
    budget: str = "equal"
    lr: float = 1e-5
    disadvantaged_share: float = 0.5
    data: Path | None = None
    detector: str | None = None
    detector_checkpoint: Path | None = None
    limit_images: int | None = None
    set_: tuple[str, ...] = ()
    device: str = "auto"
    force: bool = False


def check_command(cmd: RetrainCommand) -> list[int]:
    """Refuse what cannot run before anything is loaded; the seeds."""
    from faapkit.distributed import check_device_available
    from faapkit.train.seeds import parse_seeds

    budgets = ("equal", "long")
    if cmd.budget not in budgets:
        raise ConfigError(f"--budget must be one of {', '.join(budgets)}, got '{cmd.budget}'")
    if not 0 < cmd.lr < 1:
        raise ConfigError(f"--lr must be in (0, 1), got {cmd.lr}")
    if not 0 < cmd.disadvantaged_share <= 1:  # NaN fails too
        raise ConfigError(f"--disadvantaged-share must be in (0, 1], got {cmd.disadvantaged_share}")
    if cmd.limit_images is not None and cmd.limit_images < 2:
        raise ConfigError(f"--limit-images must be at least 2, got {cmd.limit_images}")
    check_device_available(cmd.device, "--device")
    return parse_seeds(cmd.seeds)


def check_outputs(out: Path, seeds: Sequence[int], force: bool) -> None:
    """``out`` and every seed's files may be written: refused before any work, naming the file."""
    from faapkit.artifacts.outputs import check_output, ensure_folder, run_folder_of

    held = run_folder_of(out / REPORT)
    if held is not None:
        raise ConfigError(f"--out {out} lies in the run folder or seed set {held}: never written there; name another")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; name a folder")
    ensure_folder(out / REPORT, "--out")
    check_output(out / REPORT, "--out", force=force, replaceable=not_a_report)
    for seed in seeds:
        folder = out / f"seed-{seed}"
        if folder.exists():
            check_output(folder / REPORT, "--out", force=force, replaceable=not_a_report)
            check_output(folder / WEIGHTS, "--out", force=force, weights=True, replaceable=_not_beside_a_report)


def not_a_report(path: Path) -> str | None:
    """Why an existing ``path`` may not be replaced by a retrain report: it is none."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8")).get("schema")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        schema = None
    return None if schema == RETRAIN_SCHEMA else "is no faap probe retrain report"


def _not_beside_a_report(path: Path) -> str | None:
    """Weights are replaced only where this command wrote them: beside a retrain report."""
    report = path.with_name(REPORT)
    return "lies beside no faap probe retrain report" if not report.is_file() or not_a_report(report) else None


def run_retrain(cmd: RetrainCommand, registries: Any, say: Any) -> dict[str, Any]:
    """Fine-tune, select on val, report on test, for every seed; the summary (also ``out/retrain.json``)."""
    from faapkit.artifacts.output_lock import OutputLock

    seeds = check_command(cmd)
    config = retrain_config(cmd, registries)
    check_outputs(cmd.out, seeds, cmd.force)
    with OutputLock(cmd.out / REPORT, note=say.warn) as lock:
        inputs, plan = _prepare(cmd, config, registries, say)
        summary = _run_seeds(cmd, inputs, plan, seeds, say)
        lock.check_unchanged(cmd.force)
        from faapkit.io import atomic_write_text

        atomic_write_text(lock.output, json.dumps(summary, indent=2) + "\n")
        say.info(f"report written to {cmd.out / REPORT}")
    return summary


def retrain_config(cmd: RetrainCommand, registries: Any) -> Any:
    """``level-up``'s resolved configuration with ``--set`` and ``--detector``, checked before any
    output is touched: ``--data`` with ``data.benchmark`` is refused (one would be ignored)."""
    from faapkit.config import resolve_config
    from faapkit.config.defaults import DEFAULT_VERSION

    overrides = [*cmd.set_]
    if cmd.detector:
        overrides.append(f"detector.name={cmd.detector}")
    config = resolve_config(registries, version=DEFAULT_VERSION, overrides=overrides)
    if cmd.data is not None and config.data.benchmark is not None:
        raise ConfigError(
            f"--data ({cmd.data}) names a dataset and data.benchmark ('{config.data.benchmark}') the embedded "
            "benchmark: give one"
        )
    return config


def _prepare(cmd: RetrainCommand, config: Any, registries: Any, say: Any) -> tuple[Any, Any]:
    """The shipped detector, the dataset and the plan of ``config`` (:func:`retrain_config`)."""
    from faapkit.data.synth import embedded_dataset_for
    from faapkit.detr.build import packaged_path
    from faapkit.detr.frozen import load_detector
    from faapkit.distributed import setup_process
    from faapkit.train.retrain import SeedInputs, plan_for

    spec = registries.detectors.get(config.detector.name)
    _, dev = setup_process(cmd.device, key="--device")
    shipped = load_detector(spec, cmd.detector_checkpoint, device=dev)
    weights = cmd.detector_checkpoint or packaged_path(spec.weights)
    root = cmd.data or embedded_dataset_for(spec, cmd.detector_checkpoint, benchmark=config.data.benchmark)
    plan = plan_for(config, cmd.budget, lr=cmd.lr, disadvantaged_share=cmd.disadvantaged_share)
    share = plan.disadvantaged_share
    draws = "group-balanced" if share == 0.5 else f"{share:.0%} of the draws from '{config.data.disadvantaged}'"
    say.info(
        f"retrain anchor: {spec.name} fine-tuned for {plan.epochs} epochs x {plan.steps_per_epoch} steps x "
        f"{plan.batch_size} images ({plan.steps} steps, {plan.images} images; budget {cmd.budget}), "
        f"{draws}, validated every {plan.val_every} epochs on '{config.data.val_split}', "
        f"reported on '{config.eval.split}'"
    )
    return SeedInputs(config, spec, shipped, Path(weights), root, dev, say.info, cmd.limit_images), plan


def _run_seeds(cmd: RetrainCommand, inputs: Any, plan: Any, seeds: list[int], say: Any) -> dict[str, Any]:
    """Each seed trained, its report and weights written as soon as it ends; the summary."""
    from dataclasses import asdict

    from faapkit.detr.build import file_sha256
    from faapkit.evaluate.across_seeds import aggregate
    from faapkit.io import atomic_write_text, save_checkpoint
    from faapkit.train.retrain import fine_tune, seed_report

    before = file_sha256(inputs.weights)
    rows, files = [], {}
    for seed in seeds:
        tuned = fine_tune(inputs, plan, seed)
        report = seed_report(inputs, plan, seed, tuned)
        folder = cmd.out / f"seed-{seed}"
        if tuned["state"] is not None:
            save_checkpoint(folder / WEIGHTS, {"model": tuned["state"]})
        atomic_write_text(folder / REPORT, json.dumps(report, indent=2) + "\n")
        files[str(seed)] = f"seed-{seed}"
        if report.get("row"):
            rows.append(report["row"])
        else:
            say.warn(f"seed {seed}: no validated epoch narrowed the val gap within the guard; nothing reported on test")
    if file_sha256(inputs.weights) != before:  # read only; a change would void every number above
        raise ConfigError(f"{inputs.weights}: the shipped detector's weights changed during the run")
    return {
        "schema": RETRAIN_SCHEMA,
        "what": "the detector itself fine-tuned (weight access), selected on val, reported on test",
        "budget": cmd.budget,
        "plan": {**asdict(plan), "steps": plan.steps, "images": plan.images},
        "detector": {"name": inputs.shipped.name, "sha256": before, "weights": str(inputs.weights)},
        "dataset": str(inputs.root),
        "seeds": files,
        "rows": rows,
        "summary": aggregate(rows, inputs.config.eval.confidence) if rows else None,
    }
