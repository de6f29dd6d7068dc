"""Where a ``faap train`` starts: the resolved configuration and run folder of a fresh or resumed
run, what ``--resume auto`` means for a folder (continue the run it holds, or start one in it), the
seed set a ``--seeds`` command trains (resolved and checked before any seed starts) and trains, and
what an interrupted run keeps. ``faapkit.cli.train`` keeps the options and the printing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from faapkit.errors import ConfigError, FaapError, Interrupted

if TYPE_CHECKING:
    from faapkit.config import FaapConfig
    from faapkit.distributed.slurm import SlurmOptions, Submitted
    from faapkit.plugins.registry import Registries
    from faapkit.train.seeds import SeedSet

AUTO = "auto"  # --resume auto


@dataclass(frozen=True)
class TrainRequest:
    """What a ``faap train`` command asks for, as given: ``--version``, ``--config``, the ``--set``
    overrides (shortcut options included, :func:`with_shortcuts`), ``--out``, ``--resume`` (a run
    folder, ``auto`` or None) and ``--seeds``. Nothing is resolved or read here."""

    version: str | None = None
    config: Path | None = None
    overrides: tuple[str, ...] = ()
    out: Path | None = None
    resume: str | None = None
    seeds: str | None = None

    @property
    def resume_folder(self) -> Path | None:
        """The folder ``--resume`` names: None for no ``--resume`` and for ``--resume auto``."""
        return None if self.resume is None or self.resume == AUTO else Path(self.resume)


def with_shortcuts(overrides: list[str], shortcuts: dict[str, object]) -> list[str]:
    """The ``--set`` overrides, then ``key=value`` for each shortcut option given (``--epochs N``
    is ``--set train.epochs=N``); a string value is quoted."""
    given = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in shortcuts.items() if v is not None]
    return [*overrides, *given]


def check_counts(jobs: int, nproc: int) -> None:
    """``--jobs`` and ``--nproc`` count processes: at least one each."""
    for option, count in (("--jobs", jobs), ("--nproc", nproc)):  # --nproc 0 trained as one process
        if count < 1:
            raise ConfigError(f"{option} must be at least 1, got {count}")


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def resolve_run(registries: Registries, request: TrainRequest) -> tuple[FaapConfig, Path]:
    """The resolved config and the run folder: a resumed run's stored config and version under
    the file and ``--set`` overrides, or a fresh one (``runs/<version>-<time>`` unless ``--out``)."""
    from faapkit.config import resolve_config

    version, config, overrides, out = request.version, request.config, list(request.overrides), request.out
    resume = request.resume_folder
    if resume is None:
        resolved = resolve_config(registries, version=version, file=config, overrides=overrides)
        return resolved, out or Path("runs") / f"{resolved.version}-{_stamp()}"
    from faapkit.artifacts.rundir import RunDir, seed_runs_inside

    if out is not None and out.absolute() != resume.absolute():
        raise ConfigError(f"--out {out} and --resume {resume} name different run folders: give one")
    seed_runs = seed_runs_inside(resume)
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


def start_run(registries: Registries, request: TrainRequest) -> tuple[FaapConfig, Path, bool]:
    """The resolved config, the run folder and whether the run continues from its folder
    (``--resume RUN``, or ``--resume auto`` finding a run there)."""
    if request.resume == AUTO:
        return resolve_auto(registries, request)
    resolved, run_dir = resolve_run(registries, request)
    return resolved, run_dir, request.resume_folder is not None


def resolve_auto(registries: Registries, request: TrainRequest) -> tuple[FaapConfig, Path, bool]:
    """``--resume auto --out RUN``: continue the run RUN holds, from its last checkpoint, when its
    version and config are the ones this command asks for (the keys ``--resume`` may change
    aside); start one in RUN when it holds no run yet (missing, or holding only empty folders).
    A folder holding anything else is refused, before any work.

    Under several ranks each decides for itself before it joins the process group, so before
    rank 0 has written anything into RUN: all ranks take the same decision."""
    from faapkit.artifacts.rundir import RunDir
    from faapkit.config import resolve_config

    out = request.out
    if out is None:
        raise ConfigError("--resume auto needs --out RUN: the run folder to continue, or to start a run in")
    run = RunDir(out)
    if not run.exists():
        _check_holds_nothing(out)
    resolved = resolve_config(
        registries, version=request.version, file=request.config, overrides=list(request.overrides)
    )
    if not run.exists():
        return resolved, out, False
    from faapkit.train.runfolder import resumable_manifest

    resumable_manifest(run, resolved)
    return resolved, out, True


def _check_holds_nothing(out: Path) -> None:
    """``out`` holds no file but what a run killed while writing its first file leaves (a fresh
    start drops it): the job requeued after that kill must start the run, not be refused."""
    from faapkit.artifacts.rundir import RunDir

    if out.exists() and not out.is_dir():
        raise FaapError(f"--out {out} is a file; name a run folder (new, or a run to continue)")
    if not out.is_dir():
        return
    partial = set(RunDir(out).partial_writes())
    found = next((p for p in sorted(out.rglob("*")) if not p.is_dir() and p.absolute() not in partial), None)
    if found is not None:
        raise FaapError(
            f"--out {out} is not a faapkit run folder (no run.json, but it holds "
            f"{found.relative_to(out)}): choose another --out"
        )


def seed_set_asked(request: TrainRequest, jobs: int = 1) -> tuple[bool, Path | None]:
    """Whether the command trains a seed set, and the set it continues. ``--resume PARENT`` continues
    the set there; ``--resume auto`` with ``--seeds`` is the ``--seeds`` command itself (re-run on
    its folder it continues the set it started), without ``--seeds`` it continues the set in ``--out``.
    ``--jobs`` (seeds trained at once) is refused for anything but a set."""
    asked = _seed_set_asked(request)
    if jobs != 1 and not asked[0]:
        raise ConfigError("--jobs runs several seeds at once: give --seeds")
    return asked


def _seed_set_asked(request: TrainRequest) -> tuple[bool, Path | None]:
    from faapkit.train.seeds import is_seed_set

    seeds, out = request.seeds, request.out
    if request.resume == AUTO:
        if seeds is not None:
            if out is None:
                raise ConfigError("--resume auto needs --out PARENT: the seed set to continue, or to start")
            return True, None
        return (True, out) if out is not None and is_seed_set(out) else (False, None)
    folder = request.resume_folder
    return seeds is not None or (folder is not None and is_seed_set(folder)), folder


def plan_seed_set(registries: Registries, request: TrainRequest, resume: Path | None) -> tuple[Path, SeedSet]:
    """The parent folder and the set ``--seeds`` asks for (its shared configuration resolved and
    checked here), or, with ``resume`` (the set :func:`seed_set_asked` found to continue), the set
    the folder holds."""
    from faapkit.config import resolve_config
    from faapkit.train import seeds as seedset

    version, config, overrides, out, seeds = (
        request.version, request.config, list(request.overrides), request.out, request.seeds
    )  # fmt: skip
    if resume is not None:
        if seeds is not None or version is not None or config is not None or overrides:
            raise ConfigError(
                f"--resume {resume} continues the seed set it holds; give no --seeds, --version, --config or --set"
            )
        if out is not None and out.absolute() != resume.absolute():
            raise ConfigError(f"--out {out} and --resume {resume} name different folders: give one")
        return resume, seedset.read_seed_set(resume)
    assert seeds is not None
    chosen = seedset.parse_seeds(seeds)
    shared = seedset.shared_overrides(overrides)
    resolved = resolve_config(registries, version=version, file=config, overrides=[*shared, f"train.seed={chosen[0]}"])
    parent = out or Path("runs") / f"{resolved.version}-seeds-{_stamp()}"
    wanted = seedset.SeedSet(resolved.version, tuple(chosen), str(config.absolute()) if config else None, tuple(shared))
    return parent, wanted


def take_seed_set(parent: Path, wanted: SeedSet, *, resume: bool) -> tuple[SeedSet, bool]:
    """Hold ``parent`` and prepare the set in it (``faapkit.train.seeds.prepare``); returns the set
    it holds and whether this command created it."""
    from faapkit.artifacts.rundir import RunDir
    from faapkit.train import seeds as seedset

    created = not seedset.is_seed_set(parent)
    if not created or (not resume and (not parent.exists() or (parent.is_dir() and not any(parent.iterdir())))):
        # one `faap train --seeds` per set at a time (as per run folder): a second, started together,
        # would train the same seeds into the same folders (refused there, one by one) and could
        # take back a set the first is setting up
        RunDir(parent).lock()
    return seedset.prepare(parent, wanted, resume=resume), created


def check_set_configuration(registries: Registries, parent: Path, held: SeedSet) -> None:
    """A set continued must be one configuration before any seed trains: its seeds' ``run.json``
    agree with ``seeds.json`` and each other, and, when a seed is still to start, with what
    ``seeds.json`` resolves to now (what that seed would be trained with: an edited manifest, a
    moved config file, defaults changed since are all found here, not in a seed that differs)."""
    from faapkit.artifacts.rundir import RunDir
    from faapkit.artifacts.seedset import check_one_configuration, seed_folder, seed_state
    from faapkit.config import resolve_config

    for seed in held.seeds:  # a folder holding another seed's or version's run: said as such first
        seed_state(seed_folder(parent, seed), seed, held.version)
    new = [seed for seed in held.seeds if not RunDir(seed_folder(parent, seed)).exists()]
    resolved = None
    if new and len(new) < len(held.seeds):
        config = Path(held.config) if held.config else None
        overrides = [*held.overrides, f"train.seed={new[0]}"]
        resolved = resolve_config(registries, version=held.version, file=config, overrides=overrides)
    check_one_configuration(parent, resolved.model_dump(mode="json") if resolved is not None else None)


def plan_submission(registries: Registries, request: TrainRequest) -> tuple[Path, bool]:
    """``--launcher slurm``: the run folder the job trains, absolute, and whether the job's command
    names it ``--out RUN --resume auto`` (a new run, or ``--resume auto``; a requeued job then
    continues it) rather than ``--resume RUN``. Checked here as the job will check it, so that a
    refusal comes before anything is queued."""
    from faapkit.artifacts.rundir import RunDir
    from faapkit.train.seeds import is_seed_set

    out, resume = request.out, request.resume
    if request.seeds is not None:
        raise ConfigError("--launcher slurm trains one run: submit one job per seed (--set train.seed=N)")
    if resume == AUTO and out is None:  # else a fresh runs/<version>-<time> would be submitted
        raise ConfigError("--resume auto needs --out RUN: the run folder to continue, or to start a run in")
    folder = request.resume_folder
    named = folder if folder is not None else out
    if named is not None and is_seed_set(named):  # the job's `--resume auto` would not take it
        raise ConfigError(
            f"--launcher slurm trains one run and {named} is a seed set: submit one job per seed "
            f"(--resume {named / 'seed-N'} continues one)"
        )
    if folder is not None:
        from faapkit.train.runfolder import resumable_manifest

        resolved, run_dir = resolve_run(registries, request)
        resumable_manifest(RunDir(run_dir), resolved)
        return run_dir.absolute(), False
    if resume is None and out is not None and RunDir(out).exists():
        raise FaapError(f"{out} already holds a run; use --resume auto to continue it or choose another --out")
    if out is None:
        out = resolve_run(registries, replace(request, resume=None))[1]
    resolve_auto(registries, replace(request, out=out))
    return out.absolute(), True


def submit_run(
    registries: Registries,
    request: TrainRequest,
    blocked: list[str],
    slurm: SlurmOptions,
    entry: Callable[[list[str]], None],
) -> Submitted:
    """``--launcher slurm``: the run checked as the job will check it (:func:`plan_submission`),
    then submitted as a job whose every task runs ``entry`` (the ``faap`` entry point) with the
    command that trains it (``faapkit.distributed.slurm``); ``blocked``: the plugins ``--disable-plugin`` names."""
    from faapkit.distributed.slurm import require_submitit, submit, train_argv

    require_submitit()
    run, auto = plan_submission(registries, request)
    argv = train_argv(
        run,
        auto=auto,
        version=request.version,
        config=request.config,
        overrides=list(request.overrides),
        blocked=blocked,
    )
    return submit(argv, entry, slurm, run)


def train_seed_set(
    registries: Registries,
    request: TrainRequest,
    resume: Path | None,
    *,
    jobs: int,
    nproc: int,
    log: Callable[[str], None],
) -> tuple[Path, SeedSet, dict[int, str]]:
    """``--seeds``: one run per seed under one parent folder (``faapkit.train.seeds``), the shared
    configuration resolved and checked before any seed starts; the folder, the set and each seed's outcome."""
    from faapkit.train.seeds import run_seeds

    parent, wanted = plan_seed_set(registries, request, resume)
    held, created = take_seed_set(parent, wanted, resume=resume is not None)
    if not created:
        check_set_configuration(registries, parent, held)
    log(f"seed set {parent}: version {held.version}, seeds {', '.join(map(str, held.seeds))}, {jobs} at a time")
    extra = ["--nproc", str(nproc)] if nproc > 1 else []
    try:
        outcome = run_seeds(parent, held, jobs=jobs, extra=extra, log=log, created=created)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: each seed stopped keeps its last checkpoint; continue with faap train --resume {parent}"
        ) from None
    return parent, held, outcome


def interrupted_message(run_dir: Path, where: str = "") -> str:
    """What an interrupted run keeps, and the command that continues it; ``where``: at which
    epoch and step it stopped (:func:`stop_position`)."""
    from faapkit.artifacts.checkpoint import latest_checkpoint, training_position
    from faapkit.artifacts.rundir import RunDir

    last = latest_checkpoint(RunDir(run_dir).checkpoint_files(), [])  # a damaged old file: not the last
    kept = f"the last checkpoint is {last.name} (step {training_position(last)[0]})" if last else "no checkpoint yet"
    return f"interrupted{' ' + where if where else ''}: {kept}; continue with faap train --resume {run_dir}"


def stop_position(epoch: int, step: int, steps_per_epoch: int, global_step: int) -> str:
    """``at epoch 2, step 1 of 3 (global step 7)``: where a run stopped (epochs 0-based, as logged)."""
    return f"at epoch {epoch}, step {step} of {steps_per_epoch} (global step {global_step})"
