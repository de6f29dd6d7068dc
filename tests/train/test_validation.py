"""The validator keeps val batches and the generator's clean context without changing a number."""

from __future__ import annotations

import torch

from faapkit.config import resolve_config
from faapkit.evaluate.cocoeval import evaluate_groups
from faapkit.evaluate.inference import detect_settings, make_eval_loader
from faapkit.train.trainer import Trainer
from faapkit.train.validation import Validator

FAST = ["train.batch_size=4", "data.limit_images=24", "train.epochs=1", "train.steps_per_epoch=1", "train.val_every=1"]


def _trainer(registries, tmp_path, *extra: str):
    cfg = resolve_config(registries, version="level-up", overrides=[*FAST, *extra])
    trainer = Trainer(cfg, registries, tmp_path / "r")
    trainer.setup()
    with torch.no_grad():  # a generator whose context path matters (it starts at zero)
        torch.manual_seed(0)
        for param in trainer.generator.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return trainer


def _streamed_ap(validator: Validator, generator) -> dict[str, float]:
    loader = make_eval_loader(validator.dataset, validator.batches)
    dets = detect_settings(validator.detector, loader, [generator], device=validator.device)[0]
    return {g: m["AP"] for g, m in evaluate_groups(validator.coco_gt, dets, validator.group_images).items()}


def test_kept_batches_and_context_give_the_streamed_scores(registries, tmp_path, synth_root):
    trainer = _trainer(registries, tmp_path)
    validator = trainer.validator
    clean = validator.baseline  # first pass: batches kept without a context
    assert len(validator._kept) == len(validator.batches)
    assert all(context is None for _, context in validator._kept)
    first = validator.score(trainer.generator)  # contexts computed and kept
    assert all(context is not None for _, context in validator._kept)
    second = validator.score(trainer.generator)  # everything from memory
    streamed = _streamed_ap(validator, trainer.generator)
    assert first["AP"] == second["AP"]
    for group, ap in streamed.items():
        assert abs(second["AP"][group] - ap) < 1e-9
    assert clean["AP"] != second["AP"]


def test_a_small_budget_keeps_a_prefix_and_scores_the_same(registries, tmp_path, synth_root):
    # seven scorings: half the val images (still a batch per shape, more than the two kept below)
    trainer = _trainer(registries, tmp_path, "train.val_limit_images=12")
    full = trainer.validator
    assert len(full.batches) > 2
    reference = full.score(trainer.generator)
    two = sum(
        b.images.numel() * 4 + b.mask.numel() + (c.numel() * 4 if c is not None else 0) for b, c in full._kept[:2]
    )
    for budget, kept in ((1, 0), (two, 2)):
        small = Validator(
            full.data,
            full.detector,
            full.device,
            disadvantaged=full.disadvantaged,
            advantaged=full.advantaged,
            min_size=trainer.config.data.min_size,
            max_size=trainer.config.data.max_size,
            cache_bytes=budget,
        )
        assert small.score(trainer.generator)["AP"] == reference["AP"]
        assert len(small._kept) == kept
        assert small.score(trainer.generator)["AP"] == reference["AP"]
    trainer.generator.train()
    full.score(trainer.generator)
    assert trainer.generator.training  # the generator's mode is restored


def test_a_validation_records_the_paired_bootstrap_ci_of_its_gap(registries, tmp_path, synth_root):
    """The val gap's CI is ``faap eval``'s paired bootstrap of the same detections (same draws,
    seed 0), the point inside it; the unperturbed CI is the same at every validation."""
    import numpy as np

    from faapkit.evaluate.scoring import bootstrap

    trainer = _trainer(registries, tmp_path)
    validator = trainer.validator
    assert validator.resamples == trainer.config.train.val_bootstrap > 0
    validator.resamples = 30
    calls: list[tuple[int, int]] = []
    validator.progress = lambda done, total: calls.append((done, total))  # the trainer's progress display
    first = validator.score(trainer.generator)
    n = len(validator.data.records)
    assert calls[-1] == (n, n) and all(0 < d <= t == n for d, t in calls)
    pair = (validator.disadvantaged, validator.advantaged)
    dets = validator._detect(trainer.generator)
    boot = bootstrap(
        validator.coco_gt,
        {"baseline": validator._baseline_dets, "perturbed": dets},
        validator.group_images,
        pair,
        30,
        0,
        0.95,
    )
    assert first["gap_AP_ci"] == boot["gaps"]["AP"]["perturbed"]
    assert first["gap_AP_change_ci"] == boot["gaps"]["AP"]["change"]
    assert first["gap_AP_baseline_ci"] == boot["gaps"]["AP"]["baseline"]
    lo, hi = first["gap_AP_ci"]
    assert lo <= hi and np.isfinite([lo, hi]).all()
    assert first["group_images"] == {g: len(ids) for g, ids in validator.group_images.items()}
    assert validator.score(trainer.generator)["gap_AP_baseline_ci"] == first["gap_AP_baseline_ci"]
    validator.resamples = 0  # train.val_bootstrap=0: point estimates only
    assert "gap_AP_ci" not in validator.score(trainer.generator)
