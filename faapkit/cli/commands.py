"""Top-level commands ``train``, ``eval`` and ``compare``: thin wrappers over faapkit.train and faapkit.evaluate."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from faapkit.cli._console import info, print_json, warn
from faapkit.cli._context import state
from faapkit.cli._launch import launch_torchrun
from faapkit.cli._options import ConfigOpt, JsonOpt, SetOpt, VersionOpt
from faapkit.errors import ConfigError, FaapError, Interrupted

if TYPE_CHECKING:
    from faapkit.config import FaapConfig
    from faapkit.plugins.registry import Registries


def train(
    ctx: typer.Context,
    version: VersionOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default runs/<version>-<time>)")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="continue the run in this folder")] = None,
    epochs: Annotated[int | None, typer.Option(help="shortcut for --set train.epochs=N")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N optimiser steps in total")] = None,
    limit_images: Annotated[int | None, typer.Option(help="use only the first N images of the split")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    nproc: Annotated[int, typer.Option(help="launch N processes with torchrun (DDP)")] = 1,
    seeds: Annotated[
        str | None, typer.Option(help="train one run per seed (0-4, 0,3,7) into OUT/seed-N; --resume OUT continues")
    ] = None,
    jobs: Annotated[int, typer.Option(help="with --seeds: seeds trained at once, each on cores/N threads")] = 1,
    quiet: Annotated[bool, typer.Option(help="no live progress")] = False,
    json_: JsonOpt = False,
) -> None:
    """Train a perturbation generator with a method version (default: 4th on the embedded benchmark)."""
    overrides = list(set_ or [])
    for key, value in (
        ("train.epochs", epochs),
        ("train.max_steps", max_steps),
        ("data.limit_images", limit_images),
        ("train.device", device),
    ):
        if value is not None:
            overrides.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    _check_counts(jobs, nproc)
    from faapkit.train.seeds import is_seed_set

    if seeds is not None or (resume is not None and is_seed_set(resume)):
        _train_seeds(state(ctx).registries, version, config, overrides, out, resume, seeds, jobs, nproc, json_)
        return
    if jobs != 1:
        raise ConfigError("--jobs runs several seeds at once: give --seeds")
    if nproc > 1:
        launch_torchrun(nproc)
        return
    st = state(ctx)
    registries: Registries = st.registries
    resolved, run_dir = _resolve_run(registries, version, config, overrides, out, resume)
    from faapkit.cli.progress import TrainReporter
    from faapkit.train.trainer import Trainer

    providers = _providers(st, resolved.version)
    is_main = int(os.environ.get("RANK", "0")) == 0
    reporter = TrainReporter(enabled=not quiet and is_main and not json_)
    trainer = Trainer(resolved, registries, run_dir, resume=resume is not None, providers=providers, reporter=reporter)
    trainer.setup()
    if is_main:
        for line in [*trainer.data.warnings(), *trainer.notes]:
            warn(line)
        info(
            f"run folder: {trainer.run.path}  version {resolved.version}  device {trainer.device}  "
            f"steps/epoch {trainer.steps_per_epoch}  world size {trainer.dist.world_size}"
        )
    try:
        summary = trainer.fit()
    except KeyboardInterrupt:
        raise Interrupted(_interrupted_message(trainer.run.path)) from None
    finally:
        reporter.finish()  # a live progress bar left running would hide the error line
    from faapkit.distributed import shutdown

    shutdown(trainer.dist)
    if is_main:
        _report_done(trainer.run.read_selection(), summary, run_dir, json_)


def _check_counts(jobs: int, nproc: int) -> None:
    for option, count in (("--jobs", jobs), ("--nproc", nproc)):  # --nproc 0 trained as one process
        if count < 1:
            raise ConfigError(f"{option} must be at least 1, got {count}")


def _train_seeds(
    registries: Registries,
    version: str | None,
    config: Path | None,
    overrides: list[str],
    out: Path | None,
    resume: Path | None,
    seeds: str | None,
    jobs: int,
    nproc: int,
    json_: bool,
) -> None:
    """``--seeds``: one run per seed under one parent folder (``faapkit.train.seeds``); the shared
    configuration is resolved and checked here, before any seed starts."""
    from faapkit.config import resolve_config
    from faapkit.train import seeds as seedset

    extra = ["--nproc", str(nproc)] if nproc > 1 else []
    if resume is not None:
        if seeds is not None or version is not None or config is not None or overrides:
            raise ConfigError(
                f"--resume {resume} continues the seed set it holds; give no --seeds, --version, --config or --set"
            )
        if out is not None and out.absolute() != resume.absolute():
            raise ConfigError(f"--out {out} and --resume {resume} name different folders: give one")
        parent, wanted = resume, seedset.read_seed_set(resume)
    else:
        assert seeds is not None
        chosen = seedset.parse_seeds(seeds)
        shared = seedset.shared_overrides(overrides)
        resolved = resolve_config(
            registries, version=version, file=config, overrides=[*shared, f"train.seed={chosen[0]}"]
        )
        parent = out or Path("runs") / f"{resolved.version}-seeds-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        wanted = seedset.SeedSet(
            resolved.version, tuple(chosen), str(config.absolute()) if config else None, tuple(shared)
        )
    from faapkit.artifacts.rundir import RunDir

    created = not seedset.is_seed_set(parent)
    if not created or (resume is None and (not parent.exists() or (parent.is_dir() and not any(parent.iterdir())))):
        # one `faap train --seeds` per set at a time (as per run folder): a second, started together,
        # would train the same seeds into the same folders (refused there, one by one) and could
        # take back a set the first is setting up
        RunDir(parent).lock()
    held = seedset.prepare(parent, wanted, resume=resume is not None)
    info(f"seed set {parent}: version {held.version}, seeds {', '.join(map(str, held.seeds))}, {jobs} at a time")
    try:
        outcome = seedset.run_seeds(parent, held, jobs=jobs, extra=extra, log=info, created=created)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: each seed stopped keeps its last checkpoint; continue with faap train --resume {parent}"
        ) from None
    if json_:
        print_json({"seed_set": str(parent), "version": held.version, "seeds": {str(k): v for k, v in outcome.items()}})
    else:
        info(f"done: {len(held.seeds)} seeds in {parent}; evaluate them all with faap eval {parent}")


def _resolve_run(
    registries: Registries,
    version: str | None,
    config: Path | None,
    overrides: list[str],
    out: Path | None,
    resume: Path | None,
) -> tuple[FaapConfig, Path]:
    """The resolved config and the run folder: a resumed run's stored config and version under
    the file and ``--set`` overrides, or a fresh one (``runs/<version>-<time>`` unless ``--out``)."""
    from faapkit.config import resolve_config

    if resume is None:
        resolved = resolve_config(registries, version=version, file=config, overrides=overrides)
        return resolved, out or Path("runs") / f"{resolved.version}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    from faapkit.artifacts.rundir import RunDir

    if out is not None and out.absolute() != resume.absolute():
        raise ConfigError(f"--out {out} and --resume {resume} name different run folders: give one")
    seed_runs = sorted(p.parent.name for p in resume.glob("seed-*/run.json"))
    if seed_runs and not (resume / "run.json").exists():
        named = ", ".join(seed_runs[:3]) + (", ..." if len(seed_runs) > 3 else "")
        raise FaapError(
            f"cannot resume {resume}: it holds seed runs ({named}) but no seeds.json; "
            f"resume one of them with --resume {resume / seed_runs[0]}"
        )
    manifest = RunDir(resume).read_manifest()
    base_version = manifest["version"]
    if version is not None and registries.versions.get(version).name != base_version:  # an alias is the same
        raise FaapError(f"cannot resume {resume}: it is a '{base_version}' run, not '{version}'")
    resolved = resolve_config(
        registries,
        version=base_version,
        file=config,
        overrides=overrides,
        base=manifest.get("config", {}),
        version_from=f"the run {resume}",
    )
    return resolved, resume


def _report_done(selection: dict[str, Any] | None, summary: dict[str, Any], run_dir: Path, json_: bool) -> None:
    """The end of a run: a missing best.pt said aloud, then the summary."""
    if selection is not None and selection.get("epoch") is None:
        warn(
            f"no validated epoch met the selection rule ({selection['description']}): no best.pt; "
            "faap eval RUN will evaluate the highest step and say so"
        )
    if json_:
        print_json(summary)
    else:
        info(
            f"done: {summary['epochs_done']} epoch(s), {summary['global_step']} steps; "
            f"checkpoints in {run_dir}/checkpoints"
        )


def _interrupted_message(run_dir: Path) -> str:
    """What an interrupted run keeps, and the command that continues it."""
    from faapkit.artifacts.checkpoint import latest_checkpoint, training_position
    from faapkit.artifacts.rundir import RunDir

    last = latest_checkpoint(RunDir(run_dir).checkpoint_files())
    kept = f"the last checkpoint is {last.name} (step {training_position(last)[0]})" if last else "no checkpoint yet"
    return f"interrupted: {kept}; continue with faap train --resume {run_dir}"


def _providers(st: object, version: str) -> dict[str, object]:
    reg = st.registries  # type: ignore[attr-defined]
    spec = reg.versions.get(version)
    items = {"version": (reg.versions, version), "loss": (reg.losses, spec.loss)}
    if spec.head:
        items["head"] = (reg.heads, spec.head)
    for role, name in spec.schedules.items():
        items[f"schedule.{role}"] = (reg.schedules, name)
    out: dict[str, object] = {}
    for key, (registry, name) in items.items():
        found = st.provider(registry, name)  # type: ignore[attr-defined]
        out[key] = {"name": name, **{k: found[k] for k in ("plugin", "distribution", "distribution_version")}}
    return out
