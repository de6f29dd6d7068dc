"""What an evaluation is asked and gives back, as records; torch-free (the CLI builds them).

* :class:`EvalCommand`: the options of one ``faap eval`` (built by the CLI), which
  :mod:`faapkit.evaluate.command` resolves into
* :class:`EvalRequest`: one evaluation as :func:`faapkit.evaluate.evaluator.evaluate` takes it,
  its settings one :class:`faapkit.config.EvalConfig`;
* :class:`EvalOutcome` (:class:`SeedsOutcome` for a seed set): what the CLI prints;
* :class:`ProbeCommand` and :class:`HeadroomRequest`: the same pair for ``faap probe headroom``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faapkit.config import EvalConfig
from faapkit.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from faapkit.data.coco import DatasetSplit
    from faapkit.detr.frozen import FrozenDetector

# ``progress(phase, done, total)``: ``done`` more units of ``total`` in phase "inference" (images)
# or "bootstrap" (resamples)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvalCommand:
    """The options of one ``faap eval``; ``None`` means not given (the run's, else the default).

    ``target``: a run folder, a seed set or a checkpoint (``None``: the baseline only). The
    ``[eval]`` settings (``split`` ... ``save_detections``, ``iou``) are layered under
    ``config`` and ``set_`` by :mod:`faapkit.evaluate.command.settings`. ``rescore``: score the
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
    accept_other_detector: bool = False  # a detector-reading generator evaluated with another detector
    on_invalid: str | None = None
    on_corrupt: str | None = None  # fail | skip: undecodable images (default: the run's data.on_corrupt)
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


@dataclass
class EvalRequest:
    """One evaluation: what identifies the data, detector and checkpoint, and its settings
    (``eval_config``; its ``split`` and ``save_detections`` are the command's: ``data`` is that
    split, loaded, and the evaluator saves nothing). ``min_size``/``max_size`` ``None``: the
    detector's (``FrozenDetector.input_size``)."""

    data: DatasetSplit
    detector: FrozenDetector
    device: torch.device
    checkpoint: Path | None = None
    epsilon: float | None = None
    eval_config: EvalConfig = field(default_factory=EvalConfig)
    min_size: int | None = None
    max_size: int | None = None
    disadvantaged: str | None = None
    advantaged: str | None = None
    num_workers: int | None = None
    cache: bool = True
    generators: Any = None  # the generator registry, for checkpoints of generators other than the U-Net
    progress: Progress | None = None
    codec: Any = None  # faapkit.data.codecs.Codec: every setting's images pass through it before the detector
    exported: Path | None = None  # a faap export file, scored in place of the checkpoint's generator

    @property
    def sizes(self) -> tuple[int, int]:
        """``(min_size, max_size)`` images are resized to: the given ones, else the detector's."""
        return self.detector.sizes(self.min_size, self.max_size)

    @property
    def bf16(self) -> bool:
        """Whether inference really runs in bf16 (``amp`` is ignored off CUDA)."""
        return self.eval_config.amp and self.device.type == "cuda"


@dataclass(frozen=True)
class ProbeCommand:
    """The options of ``faap probe headroom`` (see its ``--help``)."""

    split: str
    split_by: str
    data: Path | None
    detector: str | None
    detector_checkpoint: Path | None
    epsilon: float
    steps: int
    step_size: float
    disadvantaged: str
    advantaged: str
    limit_images: int | None
    bootstrap: int
    device: str
    out: Path | None
    force: bool


@dataclass
class HeadroomRequest:
    """One oracle probe (:func:`faapkit.evaluate.headroom.probe_headroom`): the PGD oracle's
    ``epsilon``, ``steps`` and ``step_size``, and the settings it shares with an evaluation
    (``eval_config``: its batch size and bootstrap)."""

    data: DatasetSplit
    detector: FrozenDetector
    device: torch.device
    epsilon: float = 0.09
    steps: int = 10
    step_size: float = 0.005
    eval_config: EvalConfig = field(default_factory=EvalConfig)
    min_size: int | None = None  # None: the detector's (FrozenDetector.input_size)
    max_size: int | None = None
    disadvantaged: str | None = None
    advantaged: str | None = None

    def check(self) -> None:
        if not 0 < self.epsilon <= 1:
            raise ConfigError(f"epsilon must be in (0, 1], got {self.epsilon}")
        if self.steps < 1:
            raise ConfigError(f"steps must be at least 1, got {self.steps}")
        if not 0 < self.step_size <= self.epsilon:
            raise ConfigError(f"step size must be in (0, epsilon={self.epsilon}], got {self.step_size}")
