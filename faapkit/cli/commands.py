"""``faap train``: the options and the printing; where a run starts is ``faapkit.train.start``,
the training itself ``faapkit.train.trainer`` and a seed set ``faapkit.train.seeds``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from faapkit.cli._console import info, print_json, warn
from faapkit.cli._context import state
from faapkit.cli._launch import launch_torchrun
from faapkit.cli._options import ConfigOpt, JsonOpt, SetOpt, VersionOpt
from faapkit.errors import ConfigError, Interrupted

if TYPE_CHECKING:
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
    from faapkit.train.seeds import is_seed_set
    from faapkit.train.start import check_counts, interrupted_message, resolve_run, with_shortcuts

    shortcuts = {"train.epochs": epochs, "train.max_steps": max_steps, "data.limit_images": limit_images}
    overrides = with_shortcuts(set_ or [], {**shortcuts, "train.device": device})
    check_counts(jobs, nproc)

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
    resolved, run_dir = resolve_run(registries, version, config, overrides, out, resume)
    from faapkit.cli.progress import TrainReporter
    from faapkit.plugins.providers import version_providers
    from faapkit.train.trainer import Trainer

    providers = version_providers(st.pm, registries, resolved.version)
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
        raise Interrupted(interrupted_message(trainer.run.path)) from None
    finally:
        reporter.finish()  # a live progress bar left running would hide the error line
    from faapkit.distributed import shutdown

    shutdown(trainer.dist)
    if is_main:
        _report_done(trainer.run.read_selection(), summary, run_dir, json_)


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
    configuration is resolved and checked before any seed starts (``faapkit.train.start``)."""
    from faapkit.train.seeds import run_seeds
    from faapkit.train.start import plan_seed_set, take_seed_set

    parent, wanted = plan_seed_set(registries, version, config, overrides, out, resume, seeds)
    held, created = take_seed_set(parent, wanted, resume=resume is not None)
    info(f"seed set {parent}: version {held.version}, seeds {', '.join(map(str, held.seeds))}, {jobs} at a time")
    extra = ["--nproc", str(nproc)] if nproc > 1 else []
    try:
        outcome = run_seeds(parent, held, jobs=jobs, extra=extra, log=info, created=created)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: each seed stopped keeps its last checkpoint; continue with faap train --resume {parent}"
        ) from None
    if json_:
        print_json({"seed_set": str(parent), "version": held.version, "seeds": {str(k): v for k, v in outcome.items()}})
    else:
        info(f"done: {len(held.seeds)} seeds in {parent}; evaluate them all with faap eval {parent}")


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
