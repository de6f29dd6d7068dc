"""What ``faap report`` reads of a run or a seed set: the evaluation it shows, the training log
and the checkpoint choice. Torch-free.

A run is shown through one ``faap eval`` result in ``RUN/eval/``: the one of the checkpoint chosen
on val (``best.pt``) on the run's evaluation split when there is one, else the newest. A seed set
(``seeds.json``) is its seeds' runs, each shown the same way.
"""

from __future__ import annotations

import json
import math
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
    return _eval_files(run)[0]


def _eval_files(run: Path) -> tuple[list[Path], dict[Path, str]]:
    """The run's metrics files, oldest first, and the other ``eval/*.json`` with why faapkit
    cannot read them as one (not JSON, another format): an unreadable result is named, never
    taken for no result."""
    from faapkit.artifacts.records import MetricsFileError, read_metrics_file

    folder = run / "eval"
    found, unreadable = [], {}
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            read_metrics_file(p)
        except MetricsFileError as exc:
            if exc.not_metrics:
                unreadable[p] = exc.detail
                continue
        found.append(p)
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name)), unreadable


def choose_result(run: Path, given: Path | None = None) -> Path:
    """``given``, else the result of ``best.pt`` on the run's eval split, else the newest result;
    a run with none is refused in one line, and so is one whose result to show is unreadable."""
    if given is not None:
        return given
    found, unreadable = _eval_files(run)
    split = _run_eval_split(run)
    best = [p for p in found if _is_best_of(p, split)]
    bad_best = [p for p in unreadable if _is_best_of(p, split)]
    if unreadable and (not found or (bad_best and not best)):  # the result to show is unreadable
        path = (bad_best or list(unreadable))[0]
        raise FaapError(
            f"{path}: {unreadable[path]}; not a metrics file faapkit reads (re-run faap eval {run} --force)"
        )
    if not found:
        raise FaapError(f"{run} has no evaluation yet: run faap eval {run} first")
    return (best or found)[-1]


def _is_best_of(path: Path, split: str | None) -> bool:
    return path.name.endswith("_best.json") and (split is None or path.name.startswith(f"{split}_"))


def _run_eval_split(run: Path) -> str | None:
    try:
        return str(json.loads((run / "run.json").read_text())["config"]["eval"]["split"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_run(run: Path, result: Path | None = None, seed: int | None = None) -> RunInputs:
    """The numbers of one run (``result``: the eval JSON to show instead of the chosen one),
    refused in one line unless they are this run's and can be drawn (:func:`check_shown`)."""
    from faapkit.artifacts.records import read_metrics_file

    path = choose_result(run, result)
    metrics = read_metrics_file(path).dump()
    if "perturbed" not in metrics["metrics"]:
        raise FaapError(f"{path} has no perturbed setting: evaluate a checkpoint (faap eval {run})")
    check_shown(path, metrics, run)
    return RunInputs(run, path, metrics, train_log(run), _selection(run), seed)


def check_shown(path: Path, metrics: dict[str, Any], run: Path) -> None:
    """Refuse the metrics file ``path`` shown under ``run``'s name unless it evaluated that run
    (``faap compare``'s check: its ``run_id``, its numbers finite) and every number the report
    draws is there with a CI that holds it (lower <= estimate <= upper): the file and key named."""
    from faapkit.artifacts.integrity import numbers_edited
    from faapkit.compare.reading import check_metrics

    refused, _ = check_metrics(path, metrics, run_id_of(run))
    if refused:
        raise FaapError(f"{path}: {refused}; not shown as {run}'s evaluation")
    if "run_id" in metrics and metrics["run_id"] is None and run_id_of(run) is not None:
        raise FaapError(
            f"{path}: it evaluated no run (run_id null), not {run} (run {run_id_of(run)}); not shown as its evaluation"
        )
    for key, value, ci_key, ci in _drawn(path, metrics):
        if not _finite(value):
            raise FaapError(f"{path}: '{key}' is {json.dumps(value, default=str)[:40]}, not a finite number (edited?)")
        if ci is None:
            continue
        if not (isinstance(ci, list) and len(ci) == 2 and all(_finite(b) for b in ci)):
            raise FaapError(f"{path}: '{ci_key}' is {json.dumps(ci, default=str)[:40]}, not a [lower, upper] CI")
        if ci[0] > ci[1]:
            raise FaapError(f"{path}: '{ci_key}' is [{ci[0]:.6g}, {ci[1]:.6g}]: its lower bound is above its upper")
        # a point outside its CI as faapkit wrote it is real (a percentile CI may exclude its
        # estimate) and drawn as it is; outside an edited file's CI it is refused
        if not ci[0] - TOLERANCE <= value <= ci[1] + TOLERANCE and numbers_edited(metrics):
            raise FaapError(
                f"{path}: '{key}' = {value:.6g} lies outside its CI '{ci_key}' [{ci[0]:.6g}, {ci[1]:.6g}] "
                "(edited? its numbers are not the ones numbers_sha256 recorded)"
            )


TOLERANCE = 1e-6  # as faap compare's gap check


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _drawn(path: Path, m: dict[str, Any]) -> list[tuple[str, Any, str, Any]]:
    """What the forest plot draws: ``(key, value, CI key, CI or None)``; a missing one is refused."""
    boot, out = m.get("bootstrap") or {}, []
    for stat in [s for s in ("AP", "AR") if s in (m.get("gaps") or {})]:
        for g in m["metrics"].get("baseline") or {}:
            for s in ("baseline", "perturbed"):
                key = f"metrics.{s}.{g}.{stat}"
                ci = _at(path, boot, f"groups.{s}.{g}.{stat}", None)
                out.append((key, _at(path, m, key), f"bootstrap.groups.{s}.{g}.{stat}", ci))
        for s in ("baseline", "perturbed", "share_closed"):
            key = f"gaps.{stat}.{s}"
            value = _at(path, m, key, None if s == "share_closed" else ...)
            if value is not None:
                out.append((key, value, f"bootstrap.{key}", _at(path, boot, key, None)))
    return out


def _at(path: Path, tree: Any, key: str, default: Any = ...) -> Any:
    """``tree``'s value at the dotted ``key``; ``default`` where it is absent (``...``: refused)."""
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise FaapError(f"{path}: '{key}' is missing (edited?)")
            return default
        node = node[part]
    return node


def run_id_of(run: Path) -> str | None:
    """The run id ``run/run.json`` records (``None``: none readable)."""
    try:
        value = json.loads((run / "run.json").read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


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
    if not is_seed_set(target) and not (target / "run.json").is_file():
        raise FaapError(f"{target} is not a run folder (no run.json) or a seed set (no seeds.json)")
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
