"""``faap train``: the options and the printing; where a run starts is ``faapkit.train.start``,
the training itself ``faapkit.train.trainer``, a seed set ``faapkit.train.seeds`` and a SLURM job
``faapkit.distributed.slurm``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from faapkit.cli._console import info, print_json, warn
from faapkit.cli._context import state
from faapkit.cli._launch import launch_torchrun
from faapkit.cli._options import ConfigOpt, JsonOpt, SetOpt, VersionOpt
from faapkit.config.defaults import DEFAULT_VERSION
from faapkit.errors import Interrupted

if TYPE_CHECKING:
    from faapkit.cli.progress import TrainReporter
    from faapkit.train.seeds import SeedSet
    from faapkit.train.trainer import Trainer


HELP = f"Train a perturbation generator with a method version (default: {DEFAULT_VERSION} on the embedded benchmark)."


def train(
    ctx: typer.Context,
    version: VersionOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default runs/<version>-<time>)")] = None,
    resume: Annotated[
        str | None, typer.Option(help="continue the run in this folder; auto: the run in --out, else start it there")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="shortcut for --set train.epochs=N")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N optimiser steps in total")] = None,
    limit_images: Annotated[int | None, typer.Option(help="use only the first N images of the split")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    nproc: Annotated[int, typer.Option(help="launch N processes with torchrun (DDP)")] = 1,
    seeds: Annotated[
        str | None, typer.Option(help="train one run per seed (0-4, 0,3,7) into OUT/seed-N; --resume OUT continues")
    ] = None,
    jobs: Annotated[int, typer.Option(help="with --seeds: seeds trained at once, each on cores/N threads")] = 1,
    launcher: Annotated[str, typer.Option(help="local (this machine) | slurm (a submitit job, requeued)")] = "local",
    nodes: Annotated[int | None, typer.Option(help="slurm: nodes (1)")] = None,
    gpus_per_node: Annotated[int | None, typer.Option(help="slurm: GPUs per node (1)")] = None,
    tasks_per_node: Annotated[int | None, typer.Option(help="slurm: processes per node (one per GPU)")] = None,
    timeout: Annotated[int | None, typer.Option(help="slurm: the job's time limit in minutes")] = None,
    partition: Annotated[str | None, typer.Option(help="slurm: partition")] = None,
    slurm_folder: Annotated[Path | None, typer.Option(help="slurm: job logs (default RUN.slurm)")] = None,
    quiet: Annotated[bool, typer.Option(help="no live progress")] = False,
    json_: JsonOpt = False,
) -> None:
    """Train a perturbation generator (``HELP`` is what ``faap train --help`` shows)."""
    from faapkit.distributed.slurm import slurm_options
    from faapkit.train import start

    shortcuts = {"train.epochs": epochs, "train.max_steps": max_steps, "data.limit_images": limit_images}
    overrides = start.with_shortcuts(set_ or [], {**shortcuts, "train.device": device})
    request = start.TrainRequest(version, config, tuple(overrides), out, resume, seeds)
    start.check_counts(jobs, nproc)
    slurm = slurm_options(
        launcher, nproc=nproc, jobs=jobs, nodes=nodes, gpus_per_node=gpus_per_node, tasks_per_node=tasks_per_node,
        timeout_min=timeout, partition=partition, folder=slurm_folder,
    )  # fmt: skip
    st = state(ctx)
    if slurm is not None:
        from faapkit.cli import main

        job = start.submit_run(st.registries, request, st.blocked, slurm, main)
        if json_:
            return print_json(job.as_json())
        return info(f"submitted job {job.job_id} ({job.cluster}) training {job.run}; its logs in {job.folder}")
    as_set, continued = start.seed_set_asked(request, jobs)
    if as_set:
        kept = start.train_seed_set(st.registries, request, continued, jobs=jobs, nproc=nproc, log=info)
        _report_seeds(*kept, json_)
        return
    if nproc > 1:
        launch_torchrun(nproc)
        return
    resolved, run_dir, resuming = start.start_run(st.registries, request)
    from faapkit.cli.progress import TrainReporter
    from faapkit.plugins.providers import version_providers
    from faapkit.train.trainer import Trainer

    providers = version_providers(st.pm, st.registries, resolved.version)
    is_main = int(os.environ.get("RANK", "0")) == 0
    reporter = TrainReporter(enabled=not quiet and is_main and not json_)
    trainer = Trainer(resolved, st.registries, run_dir, resume=resuming, providers=providers, reporter=reporter)
    trainer.setup()
    if is_main:
        _report_start(trainer)
    summary = _fit(trainer, reporter)
    from faapkit.distributed import shutdown

    shutdown(trainer.dist)
    if is_main:
        _report_done(trainer.run.read_selection(), summary, run_dir, json_)


def _fit(trainer: Trainer, reporter: TrainReporter) -> dict[str, Any]:
    """Train; Ctrl-C is one line saying at which epoch and step it stopped and how to continue."""
    from faapkit.train import start

    try:
        return trainer.fit()
    except KeyboardInterrupt:
        at = trainer.state
        where = start.stop_position(at.epoch, at.position, trainer.steps_per_epoch, at.global_step)
        raise Interrupted(start.interrupted_message(trainer.run.path, where)) from None
    finally:
        reporter.finish()  # a live progress bar left running would hide the error line


def _report_start(trainer: Trainer) -> None:
    """What the data and setup warn of, then where the run trains and how."""
    for line in [*trainer.data.warnings(), *trainer.notes]:
        warn(line)
    info(
        f"run folder: {trainer.run.path}  version {trainer.config.version}  device {trainer.device}  "
        f"steps/epoch {trainer.steps_per_epoch}  world size {trainer.dist.world_size}"
    )


def _report_seeds(parent: Path, held: SeedSet, outcome: dict[int, str], json_: bool) -> None:
    if json_:
        print_json({"seed_set": str(parent), "version": held.version, "seeds": {str(k): v for k, v in outcome.items()}})
    else:
        info(f"done: {len(held.seeds)} seeds in {parent}; evaluate them all with faap eval {parent}")


def _report_done(selection: dict[str, Any] | None, summary: dict[str, Any], run_dir: Path, json_: bool) -> None:
    """The end of a run: a missing best.pt said aloud, then the summary."""
    from faapkit.train.best import no_best_line
    from faapkit.train.start import stop_position

    line = no_best_line(selection)
    if line is not None:
        warn(line)
    if json_:
        print_json(summary)
        return
    stopped = summary.get("stopped")
    if stopped:
        where = stop_position(stopped["epoch"], stopped["step"], stopped["steps_per_epoch"], summary["global_step"])
        return info(
            f"stopped by train.max_steps {where}; checkpoints in {run_dir}/checkpoints; continue with "
            f"faap train --resume {run_dir} --max-steps N (N above {summary['global_step']})"
        )
    info(
        f"done: {summary['epochs_done']} epoch(s), {summary['global_step']} steps; checkpoints in {run_dir}/checkpoints"
    )
