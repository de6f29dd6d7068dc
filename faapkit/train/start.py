"""Where a ``faap train`` starts: the resolved configuration and run folder of a fresh or resumed
run, the seed set a ``--seeds`` command trains (resolved and checked before any seed starts), and
what an interrupted run keeps. ``faapkit.cli.commands`` keeps the options and the printing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from faapkit.errors import ConfigError, FaapError

if TYPE_CHECKING:
    from faapkit.config import FaapConfig
    from faapkit.plugins.registry import Registries
    from faapkit.train.seeds import SeedSet


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


def resolve_run(
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
        return resolved, out or Path("runs") / f"{resolved.version}-{_stamp()}"
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


def plan_seed_set(
    registries: Registries,
    version: str | None,
    config: Path | None,
    overrides: list[str],
    out: Path | None,
    resume: Path | None,
    seeds: str | None,
) -> tuple[Path, SeedSet]:
    """The parent folder and the set ``--seeds`` asks for (its shared configuration resolved and
    checked here), or, with ``--resume``, the set the folder holds."""
    from faapkit.config import resolve_config
    from faapkit.train import seeds as seedset

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


def interrupted_message(run_dir: Path) -> str:
    """What an interrupted run keeps, and the command that continues it."""
    from faapkit.artifacts.checkpoint import latest_checkpoint, training_position
    from faapkit.artifacts.rundir import RunDir

    last = latest_checkpoint(RunDir(run_dir).checkpoint_files())
    kept = f"the last checkpoint is {last.name} (step {training_position(last)[0]})" if last else "no checkpoint yet"
    return f"interrupted: {kept}; continue with faap train --resume {run_dir}"
