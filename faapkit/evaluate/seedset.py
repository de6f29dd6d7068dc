"""``faap eval SEEDSET``: every seed's run evaluated as ``faap eval RUN`` evaluates it (its metrics
in its own ``eval/``), then one row per seed and their spread. Every seed's run is checked
before the first seed's inference."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faapkit.errors import ConfigError, FaapError
from faapkit.evaluate import outputs
from faapkit.evaluate.host import Host, Silent
from faapkit.evaluate.request import EvalCommand, SeedsOutcome
from faapkit.evaluate.settings import CommandLayers
from faapkit.evaluate.single import checked_target, evaluate_one

if TYPE_CHECKING:
    from faapkit.plugins.registry import Registries


def evaluate_seeds(cmd: EvalCommand, layers: CommandLayers, reg: Registries, host: Host) -> SeedsOutcome | None:
    """Each seed of the set ``cmd.target`` names, trained to the end, evaluated in turn; ``None``
    on a non-zero rank."""
    from faapkit.evaluate.across_seeds import aggregate, seed_row

    assert cmd.target is not None
    if cmd.out is not None:
        raise ConfigError(f"{cmd.target} is a seed set: each seed's metrics go to its own run folder; drop --out")
    states = host.seed_states(cmd.target)
    missing = [f"seed {s} ({state})" for s, _, state in states if state != "done"]
    if missing:
        raise FaapError(
            f"{cmd.target}: {', '.join(missing)} not trained to the end; continue with faap train --resume {cmd.target}"
        )
    runs = [(seed, run) for seed, run, _ in states]
    for seed, run in runs:  # every seed's checkpoint and output, before the first seed's inference
        with _seed_taken(seed, cmd.target):
            preflight_seed(replace(cmd, target=run), layers)
    rows, results = [], {}
    for seed, run in runs:
        host.info(f"seed {seed}: faap eval {run}")
        with _seed_taken(seed, cmd.target):
            result = evaluate_one(replace(cmd, target=run, progress=False), layers, reg, host)
        if result is None:
            return None  # non-zero ranks
        results[str(seed)] = result
        if "perturbed" in result["metrics"]:
            rows.append(seed_row(seed, result))
    confidence = next(iter(results.values())).get("eval_config", {}).get("confidence", 0.95)
    return SeedsOutcome(cmd.target, rows, aggregate(rows, confidence) if rows else None)


@contextlib.contextmanager
def _seed_taken(seed: int, seed_set: Path) -> Iterator[None]:
    """A seed's result there already, said for the set (the single run's hint names --out, which a
    seed set refuses)."""
    try:
        yield
    except outputs.ResultTaken as exc:
        raise FaapError(
            f"seed {seed}: {exc.path} already holds an evaluation of the same checkpoint and settings; "
            f"pass --force to replace every seed's, or compare them as they are with faap compare {seed_set}"
        ) from None


def preflight_seed(cmd: EvalCommand, layers: CommandLayers) -> None:
    """What :func:`~faapkit.evaluate.single.evaluate_one` would refuse of one seed's run without
    loading data or detector: its checkpoint (``best.pt`` against ``selection.json``), the folder
    its metrics go into, and, without ``--force``, a metrics file there already (its name needs no
    data or detector unless ``--data`` or ``--detector-checkpoint`` add theirs; then the seed's own
    check still refuses it, before its inference). Its notes are said when the seed is evaluated."""
    from faapkit.config import DataConfig, validate_model
    from faapkit.evaluate import settings as layering

    tgt = checked_target(cmd, Silent())
    outputs.check_folder(tgt, None)
    if cmd.force or cmd.data is not None or cmd.detector_checkpoint is not None:
        return
    settings, _ = layering.resolve([("the run's config", layering.run_layer(tgt.config.get("eval", {}))), *layers.eval])
    stored: dict[str, Any] = {**tgt.config.get("data", {}), "limit_images": cmd.limit_images}
    dcfg = validate_model(DataConfig, stored, prefix="data")
    tags = outputs.tags(cmd, layers.sizes, None, None, settings, dcfg)
    path = outputs.output_path(tgt, None, settings.split, cmd.split_by or dcfg.split_by, cmd.limit_images, tags)
    if path is not None:
        outputs.refuse_taken([path])
