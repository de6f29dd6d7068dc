"""``faap train --launcher slurm``: one training run submitted as a SLURM job through submitit.

The job runs ``faap train --out RUN --resume auto`` in every task. Each task maps SLURM's
placement (submitit's :class:`submitit.JobEnvironment`: global rank, local rank, number of tasks,
the job's hosts) onto the variables torchrun would set (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``), so the command joins its process group through
:func:`faapkit.distributed.init_from_env` exactly as under ``--nproc``. When SLURM warns that the
job is about to be preempted or to run out of time, submitit calls :meth:`TrainJob.checkpoint`,
which asks for the same command again: the requeued job continues from the run's last checkpoint
(``--resume auto``) without anyone resubmitting it.

submitit is an optional extra (``pip install 'faapkit[slurm]'``), imported only when a job is
submitted or run; ``FAAP_SUBMITIT_CLUSTER=local`` runs the same job through submitit's local
executor (one node, tasks as processes of this machine) to try a submission without a cluster.
This module needs no torch itself (the package `faapkit.distributed` imports it).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.distributed.launch import cores_per_process
from faapkit.errors import ConfigError, FaapError

EXTRA_HINT = "pip install 'faapkit[slurm]'"
CLUSTER_ENV = "FAAP_SUBMITIT_CLUSTER"
# seconds between SLURM's warning signal (USR2) and the job's end: time to leave cleanly
SIGNAL_DELAY_S = 120
# requeues after a time-out; a long schedule in short time slots needs many (preemptions do not count)
MAX_TIMEOUTS = 100
PORT_BASE, PORT_SPAN = 20000, 20000


@dataclass(frozen=True)
class SlurmOptions:
    """What the job asks SLURM for. ``tasks_per_node`` defaults to one task per GPU (one, without GPUs)."""

    nodes: int
    gpus_per_node: int
    timeout_min: int | None
    tasks_per_node: int | None = None
    partition: str | None = None
    folder: Path | None = None

    def tasks(self) -> int:
        return self.tasks_per_node if self.tasks_per_node is not None else max(1, self.gpus_per_node)

    def check(self) -> None:
        """Counts that make a job, refused before anything is submitted."""
        if self.timeout_min is None:
            raise ConfigError("--launcher slurm needs --timeout MINUTES (the job's time limit; it is requeued then)")
        for option, value, least in (
            ("--nodes", self.nodes, 1),
            ("--gpus-per-node", self.gpus_per_node, 0),
            ("--tasks-per-node", self.tasks(), 1),
            ("--timeout", self.timeout_min, 1),
        ):
            if value < least:
                raise ConfigError(f"{option} must be at least {least}, got {value}")


LAUNCHERS = ("local", "slurm")


def slurm_options(
    launcher: str,
    *,
    nproc: int,
    jobs: int,
    nodes: int | None,
    gpus_per_node: int | None,
    tasks_per_node: int | None,
    timeout_min: int | None,
    partition: str | None,
    folder: Path | None,
) -> SlurmOptions | None:
    """The job ``--launcher slurm`` asks for (one GPU per node unless told), None for ``--launcher
    local``; a SLURM option given to the local launcher, or a count that makes no job, is refused."""
    given = {
        "--nodes": nodes,
        "--gpus-per-node": gpus_per_node,
        "--tasks-per-node": tasks_per_node,
        "--timeout": timeout_min,
        "--partition": partition,
        "--slurm-folder": folder,
    }
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if launcher == "local":
        named = [option for option, value in given.items() if value is not None]
        if named:
            raise ConfigError(f"{named[0]} is an option of --launcher slurm (this is --launcher local)")
        return None
    if nproc != 1:
        raise ConfigError("--launcher slurm places the processes itself: give --tasks-per-node, not --nproc")
    if jobs != 1:
        raise ConfigError("--launcher slurm trains one run: --jobs is for --seeds on this machine")
    gpus = 1 if gpus_per_node is None else gpus_per_node
    options = SlurmOptions(1 if nodes is None else nodes, gpus, timeout_min, tasks_per_node, partition, folder)
    options.check()
    return options


def require_submitit() -> Any:
    """The submitit module, or a one-line error naming the extra that installs it."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(f"--launcher slurm needs submitit: {EXTRA_HINT}") from None
    return submitit


def rank_env(
    *, global_rank: int, local_rank: int, num_tasks: int, num_nodes: int, hostnames: Sequence[str], job_id: str
) -> dict[str, str]:
    """The torchrun variables of one task: its ranks, the world size, and where rank 0 listens.

    Rank 0 runs on the job's first host (SLURM gives global rank 0 to the first node); a one-node
    job uses the loopback address. The port is drawn from the job id, so every task of a job agrees
    on it without talking, and two jobs sharing a node rarely collide."""
    if not 0 <= global_rank < num_tasks or local_rank < 0:
        raise FaapError(f"task rank {global_rank} (local {local_rank}) does not fit a job of {num_tasks} tasks")
    if num_nodes > 1 and not hostnames:
        raise FaapError(f"job {job_id} runs on {num_nodes} nodes but names none of them")
    addr = "127.0.0.1" if num_nodes <= 1 else hostnames[0]
    port = PORT_BASE + zlib.crc32(job_id.encode()) % PORT_SPAN
    return {
        "MASTER_ADDR": addr,
        "MASTER_PORT": str(port),
        "RANK": str(global_rank),
        "LOCAL_RANK": str(local_rank),
        "WORLD_SIZE": str(num_tasks),
        "LOCAL_WORLD_SIZE": str(num_tasks // max(1, num_nodes)),
    }


def task_threads(environ: Mapping[str, str], tasks_on_node: int) -> str:
    """Torch threads per task, unless ``OMP_NUM_THREADS`` is set: SLURM's CPUs per task, else this
    node's cores shared among its tasks (torch would start one thread per core in every task)."""
    given = environ.get("SLURM_CPUS_PER_TASK", "")
    if given.isdigit() and int(given) > 0:
        return given
    return str(cores_per_process(tasks_on_node))


def train_argv(
    run: Path,
    *,
    auto: bool,
    version: str | None,
    config: Path | None,
    overrides: Sequence[str],
    blocked: Sequence[str],
) -> list[str]:
    """The ``faap`` command line every task runs, and every requeue again: the asked-for run in
    ``run``, continued from its last checkpoint if it has one (``--resume auto``), or the run
    ``run`` holds continued (``--resume RUN``, not ``auto``)."""
    folder = str(Path(run).absolute())
    where = ["--out", folder, "--resume", "auto"] if auto else ["--resume", folder]
    argv = [arg for name in blocked for arg in ("--disable-plugin", name)]
    argv += ["train", *where, "--quiet"]
    if version is not None:
        argv += ["--version", version]
    if config is not None:
        argv += ["--config", str(Path(config).absolute())]
    for override in overrides:
        argv += ["--set", override]
    return argv


class JobFailed(FaapError):
    """The command a task ran ended with a non-zero status (its error line is in the task's log)."""


class TrainJob:
    """What submitit runs in every task: the torchrun variables from SLURM, then the command.

    ``entry`` is the ``faap`` entry point (``faapkit.cli.main``, pickled by reference); it ends
    with ``SystemExit`` as a command line does. A status other than 0 is raised as
    :class:`JobFailed` so submitit records the job as failed, except the exit submitit itself
    makes after :meth:`checkpoint` (preempted or timed out: requeued), which passes through."""

    def __init__(self, argv: Sequence[str], entry: Callable[[list[str]], None]) -> None:
        self.argv = list(argv)
        self.entry = entry
        self._requeued = False

    def __call__(self) -> int:
        import submitit

        env = submitit.JobEnvironment()
        ranks = rank_env(
            global_rank=env.global_rank,
            local_rank=env.local_rank,
            num_tasks=env.num_tasks,
            num_nodes=env.num_nodes,
            hostnames=env.hostnames,
            job_id=str(env.job_id),
        )
        os.environ.update(ranks)
        os.environ.setdefault("OMP_NUM_THREADS", task_threads(os.environ, int(ranks["LOCAL_WORLD_SIZE"])))
        try:
            self.entry(list(self.argv))
        except SystemExit as stop:
            if self._requeued:
                raise
            if stop.code in (0, None):  # a command line's way to say it succeeded
                return 0
            raise JobFailed(f"faap {' '.join(self.argv)} ended with status {stop.code} (see this task's log)") from None
        return 0

    def checkpoint(self) -> Any:
        """Called by submitit on rank 0 when the job is preempted or times out: the same command
        again. The run keeps its checkpoints; ``--resume auto`` continues from the last one."""
        import submitit

        self._requeued = True
        return submitit.helpers.DelayedSubmission(TrainJob(self.argv, self.entry))


@dataclass(frozen=True)
class Submitted:
    """A submitted job: its id, where it runs (``slurm``, ``local``), the run it trains, its logs."""

    job_id: str
    cluster: str
    run: Path
    folder: Path

    def as_json(self) -> dict[str, str]:
        return {"job_id": self.job_id, "cluster": self.cluster, "run": str(self.run), "logs": str(self.folder)}


def submit(argv: Sequence[str], entry: Callable[[list[str]], None], options: SlurmOptions, run: Path) -> Submitted:
    """Submit ``argv`` as one job of ``options.nodes`` x ``options.tasks()`` tasks; its logs and
    submitit's files go to ``options.folder`` (default: ``RUN.slurm`` beside the run folder)."""
    submitit = require_submitit()
    options.check()
    folder = (options.folder or run.parent / f"{run.name}.slurm").absolute()
    # named, never detected: submitit would fall back to its local executor where there is no
    # SLURM, and train in the background of this (login) machine instead of refusing
    chosen = os.environ.get(CLUSTER_ENV) or None
    cluster = chosen or "slurm"
    if cluster == "local" and options.nodes > 1:  # before the executor makes its folder
        raise ConfigError(f"--nodes {options.nodes}: submitit's local executor runs one node")
    try:
        executor = submitit.AutoExecutor(
            folder=folder, cluster=cluster, slurm_max_num_timeout=MAX_TIMEOUTS, local_max_num_timeout=MAX_TIMEOUTS
        )
    except (RuntimeError, ValueError) as exc:
        where = f"{CLUSTER_ENV}={chosen}" if chosen else f"no SLURM here (no srun; {CLUSTER_ENV}=local tries it)"
        raise FaapError(f"--launcher slurm cannot submit: {where}: {' '.join(str(exc).split())}") from None
    executor.update_parameters(
        name=f"faap-{run.name}",
        nodes=options.nodes,
        tasks_per_node=options.tasks(),
        gpus_per_node=options.gpus_per_node,
        timeout_min=options.timeout_min,
        slurm_partition=options.partition,
        slurm_signal_delay_s=SIGNAL_DELAY_S,
    )
    try:
        job = executor.submit(TrainJob(argv, entry))
    except Exception as exc:  # sbatch refused (partition, limits) or the folder cannot be written
        raise FaapError(f"--launcher slurm: the job was not submitted: {' '.join(str(exc).split())}") from None
    return Submitted(str(job.job_id), executor.cluster, run, folder)
