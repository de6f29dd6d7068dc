"""A set of runs of one configuration that differ only in ``train.seed``: ``faap train --seeds 0-4``.

The parent folder holds ``seeds.json`` (what the set is: version, seeds, the config file and
``--set`` overrides every seed shares) and one ordinary run folder per seed, ``seed-<N>/``. Each
seed is trained by its own ``faap train`` process (``--jobs K`` runs K at once, each with an equal
share of the cores), so a seed's run is exactly the run ``faap train --set train.seed=N`` makes,
resumes the same way and is read by every command that reads runs. Re-running the same command
on the folder (or ``faap train --resume PARENT``) continues the set seed by seed: finished seeds
are kept, a seed cut short resumes from its last checkpoint, missing ones start.

A result stated from one seed is a sample; ``faap eval PARENT`` evaluates every seed and
``faap compare`` aggregates them into one row (median, range, CI across seeds).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from faapkit.artifacts.seedset import (
    MANIFEST,
    SeedSet,
    configuration_problems,
    is_seed_set,
    read_seed_set,
    seed_folder,
    seed_state,
)
from faapkit.errors import ConfigError, FaapError
from faapkit.io import atomic_write_text

MAX_SEEDS = 1000


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> ``[0, 1, 2, 3, 4]``; ``"0,3,7"`` and ``"0-2,9"`` too; distinct, non-negative, in order given."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ConfigError(f"--seeds {text!r}: '{part}' is not a seed (N) or a range (A-B) of non-negative integers")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"--seeds {text!r}: the range '{part}' runs backwards")
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise ConfigError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds")
        seeds += range(lo, hi + 1)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} names a seed twice")
    return seeds


def shared_overrides(overrides: Sequence[str]) -> tuple[str, ...]:
    kept = tuple(o for o in overrides if not o.replace(" ", "").startswith("train.seed="))
    if len(kept) != len(overrides):
        raise ConfigError("--seeds sets train.seed for each run; drop --set train.seed=...")
    return kept


def prepare(parent: Path, wanted: SeedSet, *, resume: bool) -> SeedSet:
    """The set to train in ``parent``: a new one (``seeds.json`` written), or the recorded one when
    the folder holds it already and ``wanted`` asks for the same set (or ``resume``: whatever it holds).
    A folder holding something else is refused before any work starts."""
    parent = Path(parent)
    if is_seed_set(parent):
        held = read_seed_set(parent)
        if resume:
            return held
        if held != wanted:
            raise FaapError(
                f"{parent} holds the seed set {_describe(held)}; this command asks for {_describe(wanted)}: "
                "choose another --out, or continue it with faap train --resume " + str(parent)
            )
        return held
    if resume:
        raise FaapError(f"{parent} is not a seed set (no {MANIFEST}): start one with faap train --seeds ... --out DIR")
    if parent.exists() and (not parent.is_dir() or any(parent.iterdir())):
        raise FaapError(f"--out {parent} exists and is not an empty folder; a seed set needs a folder of its own")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(parent / MANIFEST, json.dumps(wanted.to_json(), indent=2) + "\n")
    except OSError as exc:
        raise FaapError(f"cannot write the seed set in {parent}: {exc.strerror or exc}") from None
    return wanted


def _describe(s: SeedSet) -> str:
    extra = (f", config {s.config}" if s.config else "") + (f", --set {' '.join(s.overrides)}" if s.overrides else "")
    return f"'{s.version}' seeds {','.join(map(str, s.seeds))}{extra}"


def train_command(s: SeedSet, seed: int, run: Path, state: str, extra: Sequence[str]) -> list[str]:
    """The ``faap train`` argv that trains (or resumes) one seed of the set."""
    exe = [sys.executable, "-m", "faapkit", "train"]
    if state == "partial":
        return [*exe, "--resume", str(run), "--quiet", *extra]
    cmd = [*exe, "--version", s.version, "--out", str(run), "--quiet", *extra]
    if s.config:
        cmd += ["--config", s.config]
    for o in (*s.overrides, f"train.seed={seed}"):
        cmd += ["--set", o]
    return cmd


# long: one scheduler: the launch loop and the reaping of its children share their bookkeeping
def run_seeds(
    parent: Path,
    s: SeedSet,
    *,
    jobs: int = 1,
    extra: Sequence[str] = (),
    log: Callable[[str], None] = print,
    created: bool = False,
) -> dict[int, str]:
    """Train every seed of ``s`` not yet done, ``jobs`` processes at a time; ``{seed: outcome}``.

    Each process gets ``cores // jobs`` torch threads. A seed that fails is reported with its log
    file and does not stop the others; the call fails at the end if any did (exit 2 when every
    failure was a configuration error). A seed refused during setup stops the set from starting
    more (they differ only in seed), and a set this call ``created`` in which nothing was trained
    is removed again."""
    todo: list[tuple[int, Path, str]] = []
    outcome: dict[int, str] = {}
    states = {seed: seed_state(seed_folder(parent, seed), seed, s.version) for seed in s.seeds}  # all, before any
    for seed in s.seeds:
        run = seed_folder(parent, seed)
        state = states[seed]
        if state == "done":
            outcome[seed] = "done before"
            continue
        todo.append((seed, run, state))
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "FAAP_SEED_SET": str(parent)}
    running: list[tuple[int, subprocess.Popen[bytes], Path, float]] = []
    failed: list[str] = []
    codes: list[int] = []
    reasons: list[str] = []  # what each failed seed said, without its log
    refused: list[int] = []  # seeds refused in setup (no run.json): the shared settings cannot train

    def reap() -> None:
        for item in list(running):
            seed, proc, logfile, start = item
            code = proc.poll()
            if code is None:
                continue
            running.remove(item)
            took = time.perf_counter() - start
            if code == 0:
                outcome[seed] = "trained"
                log(f"seed {seed}: trained in {took:.0f} s")
            else:
                why = _last_error(logfile)
                codes.append(code)
                if not (seed_folder(parent, seed) / "run.json").is_file():
                    refused.append(seed)
                outcome[seed] = f"failed (exit {code})"
                reasons.append(f"seed {seed} ({why or f'exit {code}'})")
                failed.append(f"seed {seed} ({why or f'exit {code}'}; log {logfile})")
                log(f"seed {seed}: failed with exit {code}: {why or 'see ' + str(logfile)}")

    with _children_stop_with_us(running, log):
        for seed, run, state in todo:
            while len(running) >= max(1, jobs) and not refused:
                reap()
                if len(running) >= max(1, jobs):
                    time.sleep(0.5)
            if refused:  # the seeds differ only in train.seed: the next would be refused alike
                log(f"seed {seed}: not started (seed {refused[0]} was refused before training)")
                continue
            logfile = parent / f"seed-{seed}.log"
            cmd = train_command(s, seed, run, state, extra)
            log(f"seed {seed}: {'resuming' if state == 'partial' else 'training'} into {run}")
            with logfile.open("ab") as fh:
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
            running.append((seed, proc, logfile, time.perf_counter()))
        while running:
            reap()
            if running:
                time.sleep(0.5)
    if failed:
        skipped = len([seed for seed, _, _ in todo if seed not in outcome])
        _raise_failed(parent, s, (failed, reasons, codes), skipped, created)
    return outcome


def _raise_failed(
    parent: Path, s: SeedSet, failures: tuple[list[str], list[str], list[int]], skipped: int, created: bool
) -> None:
    """The error of a set whose seeds failed (``failures``: each with its log, each without, the
    exit codes): exit 2 when every seed's was a configuration error; a set this call ``created``
    in which nothing was trained is removed again and said so."""
    failed, reasons, codes = failures
    error = ConfigError if codes and all(c == 2 for c in codes) else FaapError
    rest = f"; {skipped} not started" if skipped else ""
    if created and remove_if_nothing_trained(parent):
        raise error(
            f"{len(failed)} of {len(s.seeds)} seeds refused before training{rest}: {'; '.join(reasons)}; "
            f"{parent} removed again (nothing was trained)"
        )
    raise error(f"{len(failed)} of {len(s.seeds)} seeds failed{rest}: {'; '.join(failed)}")


def remove_if_nothing_trained(parent: Path) -> bool:
    """Remove a seed set this command created when no seed wrote a run (every seed started was
    refused during setup): the corrected command can then use the same ``--out``, as for a single
    run refused during setup. Only the set's own files are there to remove. Whether it did."""
    import shutil

    parent = Path(parent)
    ours = {MANIFEST} | {f"seed-{s}.log" for s in read_seed_set(parent).seeds}
    ours |= {f"seed-{s}" for s in read_seed_set(parent).seeds}
    entries = list(parent.iterdir())
    if any(e.name not in ours for e in entries) or any((e / "run.json").exists() for e in entries if e.is_dir()):
        return False
    shutil.rmtree(parent, ignore_errors=True)
    return True


@contextlib.contextmanager
def _children_stop_with_us(running: list[Any], log: Callable[[str], None]) -> Iterator[None]:
    """Ctrl-C or SIGTERM of the parent stops the seeds it started (each as on its own Ctrl-C: it
    keeps its last checkpoint), instead of leaving them training as orphans; ``--resume`` then
    continues the set."""
    previous = signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if in_main:
        signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    except BaseException:
        for seed, proc, logfile, _ in running:
            if proc.poll() is None:
                log(f"seed {seed}: stopping (its log: {logfile})")
                proc.send_signal(signal.SIGINT)
        for _, proc, _, _ in running:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _last_error(logfile: Path) -> str | None:
    """The ``error: ...`` line a failed ``faap train`` left in its log, without the prefix."""
    try:
        lines = logfile.read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("error: ")]
    return errors[-1].removeprefix("error: ") if errors else None


def describe_seed_set(path: Path) -> dict[str, Any]:
    """What ``faap inspect run`` says of a ``--seeds`` folder: what the set is, whether it is one
    configuration, and where each seed stands (``done``, ``partial``, ``new``, or why its folder
    is not that seed's run), with its evaluations."""
    s = read_seed_set(path)
    info: dict[str, Any] = {"path": str(path), "format": "faapkit seed set", "version": s.version}
    info |= {"seeds": list(s.seeds), "config": s.config, "overrides": list(s.overrides)}
    problems = configuration_problems(path, s)
    info["configuration"] = f"refused: {'; '.join(problems)}" if problems else "one (every seed's run.json agrees)"
    for seed in s.seeds:
        run = seed_folder(path, seed)
        try:
            where = seed_state(run, seed, s.version)
        except FaapError as exc:
            where = f"refused: {exc}"
        evaluated = sorted(p.name for p in (run / "eval").glob("*.json")) if (run / "eval").is_dir() else []
        info[f"seed {seed}"] = f"{where}; {len(evaluated)} evaluation(s)" + (
            f": {', '.join(evaluated)}" if evaluated else ""
        )
    return info
