"""What ``faap report`` reads of a run or a seed set: the evaluation it shows, the training log
and the checkpoint choice. Torch-free.

A run is shown through one ``faap eval`` result in ``RUN/eval/``: the one of the checkpoint chosen
on val (``best.pt``) on the run's evaluation split when there is one, else the newest. A seed set
(``seeds.json``) is its seeds' runs, each shown the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faapkit.errors import FaapError


@dataclass
class RunInputs:
    """One run's numbers: its folder, the eval result (``faapkit.metrics/1`` as a dict) and its
    file, the training log's rows, ``selection.json`` (or ``None``) and the seed (seed sets)."""

    run: Path
    result_path: Path
    result: dict[str, Any]
    log: list[dict[str, Any]] = field(default_factory=list)
    selection: dict[str, Any] | None = None
    seed: int | None = None


def eval_results(run: Path) -> list[Path]:
    """The run's ``faap eval`` results (metrics files, not rescores' detections), oldest first."""
    from faapkit.artifacts.records import is_metrics_file

    folder = run / "eval"
    found = [p for p in folder.glob("*.json") if p.is_file() and is_metrics_file(p)] if folder.is_dir() else []
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def choose_result(run: Path, given: Path | None = None) -> Path:
    """``given``, else the result of ``best.pt`` on the run's eval split, else the newest result;
    a run with none is refused in one line."""
    if given is not None:
        return given
    found = eval_results(run)
    if not found:
        raise FaapError(f"{run} has no evaluation yet: run faap eval {run} first")
    split = _run_eval_split(run)
    best = [p for p in found if p.name.endswith("_best.json") and (split is None or p.name.startswith(f"{split}_"))]
    return (best or found)[-1]


def _run_eval_split(run: Path) -> str | None:
    try:
        return str(json.loads((run / "run.json").read_text())["config"]["eval"]["split"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_run(run: Path, result: Path | None = None, seed: int | None = None) -> RunInputs:
    """The numbers of one run (``result``: the eval JSON to show instead of the chosen one)."""
    from faapkit.artifacts.records import read_metrics_file

    path = choose_result(run, result)
    metrics = read_metrics_file(path).dump()
    if "perturbed" not in metrics["metrics"]:
        raise FaapError(f"{path} has no perturbed setting: evaluate a checkpoint (faap eval {run})")
    return RunInputs(run, path, metrics, train_log(run), _selection(run), seed)


def train_log(run: Path) -> list[dict[str, Any]]:
    """``RUN/train_log.jsonl``'s rows (one per epoch; ``val`` on validated epochs); none if absent."""
    path = run / "train_log.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by an interrupted run: the curves show the rest
        if isinstance(row, dict) and isinstance(row.get("epoch"), int):
            rows.append(row)
    return rows


def _selection(run: Path) -> dict[str, Any] | None:
    path = run / "selection.json"
    try:
        data = json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_target(target: Path, result: Path | None = None) -> list[RunInputs]:
    """One run, or each evaluated seed of a seed set (in the set's order; one configuration,
    :func:`faapkit.artifacts.seedset.check_one_configuration`); refused in one line when nothing
    there is evaluated. The seeds without an evaluation are :func:`unevaluated_seeds`."""
    from faapkit.artifacts.seedset import check_one_configuration, is_seed_set, seed_runs

    if not target.is_dir():
        raise FaapError(f"{target} is not a run folder or a seed set")
    if not is_seed_set(target):
        return [read_run(target, result)]
    if result is not None:
        raise FaapError("--result names one run's evaluation; a seed set shows each seed's own")
    check_one_configuration(target)
    runs = [read_run(path, seed=seed) for seed, path in seed_runs(target) if eval_results(path)]
    if not runs:
        raise FaapError(f"{target}: no seed has an evaluation yet: run faap eval {target} first")
    return runs


def unevaluated_seeds(target: Path) -> list[str]:
    """Each seed of the set in ``target`` that has no evaluation, with what to run for it (``[]``
    for a run, or a set evaluated throughout)."""
    from faapkit.artifacts.seedset import is_seed_set, seed_runs, seed_state

    if not is_seed_set(target):
        return []
    missing = []
    for seed, path in seed_runs(target):
        if eval_results(path):
            continue
        try:
            done = seed_state(path) == "done"
        except FaapError:
            done = False
        todo = f"faap eval {path}" if done else f"faap train --resume {target}, then faap eval {path}"
        missing.append(f"seed {seed} (no evaluation: {todo})")
    return missing
