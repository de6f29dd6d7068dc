"""What ``faap eval`` is asked (:class:`EvalCommand`, built by the CLI from its options) and what
it gives back (:class:`EvalOutcome`, printed by the CLI); torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EvalCommand:
    """The options of one ``faap eval``; ``None`` means not given (the run's, else the default).

    ``target``: a run folder, a seed set or a checkpoint (``None``: the baseline only). The
    ``[eval]`` settings (``split`` ... ``save_detections``, ``iou``) are layered under
    ``config`` and ``set_`` by :mod:`faapkit.evaluate.settings`. ``rescore``: score the
    detections saved with this metrics file again instead of inferring. ``progress``: show live
    progress (the CLI turns it off for ``--quiet`` and ``--json``)."""

    target: Path | None = None
    split: str | None = None
    split_by: str | None = None
    data: Path | None = None
    detector: str | None = None
    detector_checkpoint: Path | None = None
    epoch: int | None = None
    epsilon: float | None = None
    disadvantaged: str | None = None
    advantaged: str | None = None
    batch_size: int | None = None
    bootstrap: int | None = None
    seed: int | None = None
    confidence: float | None = None
    iou: tuple[float, ...] | None = None
    config: Path | None = None
    set_: tuple[str, ...] = ()
    rescore: Path | None = None
    device: str = "auto"
    limit_images: int | None = None
    no_cache: bool = False
    workers: int | None = None
    amp: bool | None = None
    channels_last: bool | None = None
    save_detections: bool | None = None
    nproc: int = 1
    out: Path | None = None
    force: bool = False
    accept_changed_best: bool = False
    on_invalid: str | None = None
    progress: bool = True
    codec: str | None = None  # png | jpeg:Q | webp:Q: every image passes through it before the detector
    exported: Path | None = None  # a faap export file scored in place of the checkpoint's generator

    @property
    def pair(self) -> tuple[str | None, str | None]:
        """The gap's groups as given: ``(--disadvantaged, --advantaged)``."""
        return self.disadvantaged, self.advantaged


@dataclass(frozen=True)
class SeedsOutcome:
    """``faap eval SEEDSET``: one row per seed (:func:`faapkit.evaluate.across_seeds.seed_row`)
    and their spread (:func:`~faapkit.evaluate.across_seeds.aggregate`, ``None`` without rows)."""

    seed_set: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"seed_set": str(self.seed_set), "seeds": self.rows, "aggregate": self.summary}


@dataclass(frozen=True)
class EvalOutcome:
    """What to print: one evaluation's (or rescore's) metrics, or a seed set's rows; neither on a
    non-zero rank of a sharded evaluation or in the process that launched torchrun."""

    result: dict[str, Any] | None = None
    seeds: SeedsOutcome | None = field(default=None)
