"""The ``effect`` section: what each generator buys per second of training.

For each generator, ``level-up`` is trained through the real engine (``Trainer.setup`` and
``Trainer.fit``, what ``faap train --version level-up --set generator.name=...`` runs) for the same
wall-clock budget, then its final generator is scored on the val split (per-group AP,
pycocotools, no bootstrap) against the unperturbed detector. The test split is never read.

The engine has no time-based stop, so the budget is enforced by the progress reporter the engine
calls after every step: the first step that ends past the budget raises :class:`BudgetReached`,
which ends ``fit`` at that step boundary (``train.max_steps`` still caps it, for quick checks).
The timed span runs from the first epoch's start to the last step's end: data loading and the
per-epoch checkpoints ``faap train`` writes are in it; setup and scoring are not.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.spread import Spread
from faapkit.config import FaapConfig, resolve_config
from faapkit.data.coco import load_split
from faapkit.data.synth import embedded_dataset
from faapkit.detr.frozen import load_detector
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer
from faapkit.train.validation import Validator

VERSION = "level-up"
# label -> the --set overrides that pick the generator and the learning rate it learns best at
# (docs/effect-diagnosis.md: subpixel needs 1e-2; the detector features' projection saturates at
# 1e-2 and learns at 1e-3, level-up's default; the U-Net was not tuned, it gets 1e-3 too)
GENERATORS: dict[str, list[str]] = {
    "detector-aware": ["generator.name='detector-aware'", "train.lr=0.001"],
    "subpixel": ["generator.name='subpixel'", "train.lr=0.01"],
    "unet32": ["generator.name='unet'", "generator.base_channels=32", "train.lr=0.001"],
    "unet16": ["generator.name='unet'", "generator.base_channels=16", "train.lr=0.001"],
}
LABELS = {
    "detector-aware": "detector-aware 32, lr 1e-3 (level-up default)",
    "subpixel": "subpixel 32, lr 1e-2 (level-up before)",
    "unet32": "unet 32 (research), lr 1e-3",
    "unet16": "unet 16, lr 1e-3",
}


class BudgetReached(Exception):
    """Raised by :class:`BudgetReporter` after the step that ends past the budget."""


class BudgetReporter:
    """A ``Trainer`` reporter that counts steps and images and stops training at the budget."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start: float | None = None
        self.end = 0.0
        self.steps = 0
        self.images = 0
        self._epoch_images = 0

    def start_epoch(self, epoch: int, total: int, position: int) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        self._epoch_images = 0  # EpochState.images restarts every epoch

    def step(self, state: Any, eps: float, lr: float) -> None:
        self.end = time.perf_counter()
        self.steps += 1
        self.images += state.images - self._epoch_images  # skipped batches add no images
        self._epoch_images = state.images
        assert self.start is not None
        if self.end - self.start >= self.seconds:
            raise BudgetReached

    def end_epoch(self, row: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass

    @property
    def elapsed(self) -> float:
        return self.end - (self.start or self.end)


@dataclass
class EffectRun:
    """One generator trained once: its throughput and its val AP."""

    generator: str
    steps: int
    images: int
    seconds: float
    ap: dict[str, float]

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


def effect_config(
    reg: Registries, generator: str, device: torch.device, seed: int, max_steps: int | None
) -> FaapConfig:
    """level-up as ``faap train`` resolves it, with the generator swapped. Validation is off (the
    final generator is scored afterwards, outside the timed span) and the epoch count is large so
    that the budget, not the schedule, ends training (level-up's schedules are constant)."""
    return resolve_config(
        reg,
        version=VERSION,
        overrides=[
            *GENERATORS[generator],
            f"train.device='{device.type}'",
            f"train.seed={seed}",
            "train.val_every=0",
            "train.epochs=100000",
            *([f"train.max_steps={max_steps}"] if max_steps is not None else []),
        ],
    )


def train_for(cfg: FaapConfig, reg: Registries, seconds: float, validator: Validator, generator: str) -> EffectRun:
    """Train ``cfg`` for ``seconds`` of wall clock in a throwaway run folder; score on val."""
    reporter = BudgetReporter(seconds)
    with tempfile.TemporaryDirectory(prefix="faap-bench-effect-") as tmp:
        trainer = Trainer(cfg, reg, Path(tmp) / "run", reporter=reporter)
        trainer.setup()
        try:
            trainer.fit()
        except BudgetReached:
            pass
        finally:
            trainer.run.unlock()
        scores = validator.score(trainer.generator)
    return EffectRun(generator, reporter.steps, reporter.images, reporter.elapsed, dict(scores["AP"]))


def section_effect(
    reg: Registries,
    device: torch.device,
    *,
    seconds: float = 60.0,
    repeats: int = 3,
    generators: tuple[str, ...] = ("detector-aware", "subpixel", "unet32"),
    max_steps: int | None = None,
    val_images: int | None = None,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Train every generator ``repeats`` times (seed 42 + repeat; generators interleaved within a
    repeat, so machine load drifts over all of them alike). Returns the per-generator table
    (one row per measure, min / median / max over repeats, the unperturbed detector first) and
    the ratios of each generator to the first, taken within each repeat."""
    unknown = [g for g in generators if g not in GENERATORS]
    if unknown:
        raise ValueError(f"unknown generator(s) {', '.join(unknown)} (choose from {', '.join(GENERATORS)})")
    cfg0 = effect_config(reg, generators[0], device, 42, max_steps)
    dis, adv = cfg0.data.disadvantaged, cfg0.data.advantaged
    data = load_split(embedded_dataset(), cfg0.data.val_split, split_by=cfg0.data.split_by, limit=val_images)
    detector = load_detector(reg.detectors.get(cfg0.detector.name), cfg0.detector.checkpoint, device=device)
    validator = Validator(
        data,
        detector,
        device,
        disadvantaged=dis,
        advantaged=adv,
        min_size=cfg0.data.min_size,
        max_size=cfg0.data.max_size,
    )
    base = validator.baseline["AP"]
    runs: dict[str, list[EffectRun]] = {g: [] for g in generators}
    for repeat in range(repeats):
        for g in generators:
            cfg = effect_config(reg, g, device, 42 + repeat, max_steps)
            runs[g].append(train_for(cfg, reg, seconds, validator, g))

    def lift(r: EffectRun) -> float:
        return 100.0 * (r.ap[dis] - base[dis]) / r.seconds

    split = f"{cfg0.data.val_split}, {len(data.records)} images"
    rows: list[dict[str, object]] = [
        {"generator": "none (unperturbed)", "measure": f"{name} ({split})", **Spread.of([value])._asdict()}
        for name, value in ((f"{dis} AP", base[dis]), (f"{adv} AP", base[adv]), ("gap AP", base[adv] - base[dis]))
    ]
    measures = {
        "train img/s": lambda r: r.images_per_s,
        "steps": lambda r: float(r.steps),
        "train seconds": lambda r: r.seconds,
        f"{dis} AP": lambda r: r.ap[dis],
        f"{adv} AP": lambda r: r.ap[adv],
        f"{dis} AP change": lambda r: r.ap[dis] - base[dis],
        f"{adv} AP change": lambda r: r.ap[adv] - base[adv],
        "gap AP change (negative: fairer)": lambda r: (r.ap[adv] - r.ap[dis]) - (base[adv] - base[dis]),
        f"{dis} AP lift per 100 s": lift,
    }
    for g in generators:
        for name, fn in measures.items():
            rows.append({"generator": LABELS[g], "measure": name, **Spread.of([fn(r) for r in runs[g]])._asdict()})
    ratios: list[dict[str, object]] = []
    first = generators[0]
    for g in generators[1:]:
        for name, fn in (("train img/s", measures["train img/s"]), (f"{dis} AP lift per 100 s", lift)):
            pairs = [(fn(a), fn(b)) for a, b in zip(runs[first], runs[g], strict=True)]
            usable = [a / b for a, b in pairs if b > 0]
            note = (
                ""
                if len(usable) == len(pairs)
                else f"{len(pairs) - len(usable)} repeat(s) with {LABELS[g]} <= 0 left out"
            )
            spread = Spread.of(usable)._asdict() if usable else {"min": None, "median": None, "max": None}
            ratios.append({"ratio": f"{name}: {LABELS[first]} / {LABELS[g]}", **spread, "note": note or "-"})
    return rows, ratios
