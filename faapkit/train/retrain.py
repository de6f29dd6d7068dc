"""The retrain anchor: the frozen detector itself fine-tuned, under the rules a generator is held to.

A perturbation stands in for retraining a detector one cannot touch; this measures what touching
it buys on the same benchmark and budget. It takes ``level-up``'s resolved configuration (the
default version: its train split, training scale, shape-bucketed batches, epochs, steps per epoch,
batch size, validation period, selection guard and rule, and ``[eval]`` settings) and changes two
things only: the detector's weights are what is optimised (the DETR set loss against every
ground-truth box, Hungarian-matched, as in pretraining), and the batches are group-balanced by
default (equal draws of each group; ``level-up`` draws the disadvantaged group alone because its
loss is that group's, while a detector trained on one group forgets the other). ``--disadvantaged-share``
moves the draws toward the disadvantaged group, up to that group alone (1.0), the selection guard
then holding the other group's val AP.

Budget: ``equal`` is ``level-up``'s optimiser steps x batch size (96 x 10 x 8 = 7,680 images by
default); ``long`` multiplies the steps per epoch (validation stays at the same epochs, so both
budgets validate equally often). Each step is one detector forward and one backward into the
weights; a ``level-up`` step is one detector pass over the clean image (what the generator reads),
the generator's forward and backward, and one detector forward and backward into the input.

Selection is :func:`faapkit.train.selection.select_epoch` on the val split, against the shipped
detector's val scores; the chosen weights are scored on the test split against the shipped
detector by :func:`faapkit.evaluate.scoring.score`, the paired bootstrap of ``faap eval`` (same
resamples, seed and confidence), so the columns are those of ``faap eval`` of a ``level-up`` run
(``baseline`` = the shipped detector, ``perturbed`` = the retrained one).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from faapkit.config import FaapConfig
from faapkit.data.batching import BalancedGroupSampler, collate, eval_batches
from faapkit.data.coco import DatasetSplit, GroupedDetectionDataset, load_split, require_groups
from faapkit.data.transforms import EvalTransform, TrainTransform
from faapkit.detr.build import load_state_strict, read_state_dict
from faapkit.detr.frozen import FrozenDetector
from faapkit.detr.misc import NestedTensor
from faapkit.evaluate.across_seeds import seed_row
from faapkit.evaluate.cocoeval import make_coco
from faapkit.evaluate.inference import detect_settings, make_eval_loader
from faapkit.evaluate.scoring import score
from faapkit.fairness import reference_groups
from faapkit.plugins.specs import DetectorSpec
from faapkit.train.schedules import warmup_cosine
from faapkit.train.selection import select_epoch
from faapkit.train.validation import Validator

SCHEMA = "faapkit.retrain/1"
# steps per epoch relative to level-up's: "equal" its optimiser steps and images, "long" four times them
BUDGETS = {"equal": 1, "long": 4}


@dataclass(frozen=True)
class RetrainPlan:
    """How one seed is fine-tuned: ``level-up``'s schedule scaled by the budget, and the optimiser."""

    budget: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    val_every: int
    lr: float
    weight_decay: float
    max_norm: float
    warmup: int
    min_factor: float
    disadvantaged_share: float

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def images(self) -> int:
        return self.steps * self.batch_size


def plan_for(
    config: FaapConfig,
    budget: str,
    *,
    lr: float,
    disadvantaged_share: float = 0.5,
    weight_decay: float = 1e-4,
    max_norm: float = 0.1,
) -> RetrainPlan:
    """``config`` (``level-up``'s resolved) at ``budget``: its epochs, steps, batch and validation
    period, with the steps per epoch multiplied by :data:`BUDGETS`; its learning-rate schedule's
    shape (warmup, then cosine to ``min_factor``) at ``lr``, with the pretraining's weight decay and
    gradient clip (``faapkit.train.pretrain.PretrainPreset``). ``disadvantaged_share``: the
    disadvantaged group's share of the draws (0.5 balanced, 1 that group alone, as ``level-up``)."""
    train = config.train
    if train.steps_per_epoch is None:
        raise ValueError("the configuration names no train.steps_per_epoch: the budget cannot be matched")
    shape = {"warmup": 2, "min_factor": 0.01, **(config.schedules.get("lr") or {})}
    return RetrainPlan(
        budget=budget,
        epochs=train.epochs,
        steps_per_epoch=train.steps_per_epoch * BUDGETS[budget],
        batch_size=train.batch_size,
        val_every=max(1, train.val_every),
        lr=lr,
        weight_decay=weight_decay,
        max_norm=max_norm,
        warmup=int(shape["warmup"]),
        min_factor=float(shape["min_factor"]),
        disadvantaged_share=disadvantaged_share,
    )


@dataclass
class SeedInputs:
    """What every seed shares: the configuration, the shipped detector (frozen, never written), the
    file its weights came from, the dataset root and the device."""

    config: FaapConfig
    spec: DetectorSpec
    shipped: FrozenDetector
    weights: Path
    root: Path
    device: torch.device
    log: Callable[[str], None] = print
    limit: int | None = None  # the first N images of each split (smoke runs)


def trainable_copy(inputs: SeedInputs) -> Any:
    """A fresh build of the detector's parts with the shipped weights, in train mode: the parameters
    its factory leaves trainable are trained (a frozen backbone stage stays frozen)."""
    parts = inputs.spec.build()
    load_state_strict(
        parts.model, read_state_dict(inputs.weights, inputs.spec.arch), what=f"detector '{inputs.spec.name}'"
    )
    parts.model.to(inputs.device).train()
    if isinstance(parts.criterion, torch.nn.Module):
        parts.criterion.to(inputs.device)
    return parts


def frozen_view(parts: Any, inputs: SeedInputs) -> FrozenDetector:
    """A frozen copy of ``parts`` (validation and test score it; training goes on with the original)."""
    snapshot = copy.deepcopy(parts)
    return FrozenDetector(
        snapshot, name=inputs.spec.name, input_size=inputs.shipped.input_size, sha256=None, checkpoint=None
    ).to(inputs.device)


def train_loader(inputs: SeedInputs, plan: RetrainPlan, seed: int) -> tuple[DataLoader, BalancedGroupSampler]:
    """Shape-bucketed batches of the train split at the configured training scales, each image's
    group drawn with the plan's shares (the disadvantaged group's ``disadvantaged_share``, the
    advantaged group's the rest; other groups are never drawn)."""
    cfg = inputs.config.data
    data = load_split(
        inputs.root, cfg.train_split, split_by=cfg.split_by, layout=cfg.layout, limit=inputs.limit, group_level="image"
    )
    require_groups(data, [cfg.disadvantaged, cfg.advantaged])
    others = [g for g in data.groups if g not in (cfg.disadvantaged, cfg.advantaged)]
    dataset = GroupedDetectionDataset(
        data, TrainTransform(cfg.train_scales, cfg.max_size), groups=[cfg.disadvantaged, cfg.advantaged, *others]
    )
    binary = [g if g in (0, 1) else -1 for g in dataset.record_groups()]
    shapes = [(r.height, r.width) for r in data.records] if cfg.shape_buckets else None
    sampler = BalancedGroupSampler(
        binary,
        batch_size=plan.batch_size,
        num_batches=plan.steps_per_epoch,
        seed=seed,
        weights=[plan.disadvantaged_share, 1 - plan.disadvantaged_share],
        shapes=shapes,
        scales=cfg.train_scales,
    )
    loader = DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, generator=torch.Generator().manual_seed(seed)
    )
    return loader, sampler


def val_scorer(inputs: SeedInputs) -> Validator:
    """The val split's scorer, its baseline the shipped detector's (as ``level-up``'s validation)."""
    cfg = inputs.config.data
    data = load_split(
        inputs.root, cfg.val_split, split_by=cfg.split_by, layout=cfg.layout, limit=inputs.limit, group_level="image"
    )
    min_size, max_size = inputs.shipped.sizes(cfg.min_size, cfg.max_size)
    return Validator(
        data,
        inputs.shipped,
        inputs.device,
        disadvantaged=cfg.disadvantaged,
        advantaged=cfg.advantaged,
        min_size=min_size,
        max_size=max_size,
    )


def _epoch(parts: Any, loader: DataLoader, opt: torch.optim.Optimizer, plan: RetrainPlan, dev: torch.device) -> float:
    """One epoch of DETR set-loss steps on the detector's weights; the mean loss."""
    params = [p for p in parts.model.parameters() if p.requires_grad]
    total, n = 0.0, 0
    for batch in loader:
        batch = batch.to(dev)
        terms, _ = parts.criterion(parts.model(NestedTensor(batch.images, batch.mask)), batch.targets)
        loss = parts.criterion.total(terms)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if plan.max_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, plan.max_norm)
        opt.step()
        total += float(loss.detach())
        n += 1
    return total / max(1, n)


def fine_tune(inputs: SeedInputs, plan: RetrainPlan, seed: int) -> dict[str, Any]:
    """Train one seed; validate every ``plan.val_every`` epochs and at the end; keep the weights of
    the epoch the selection rule chooses so far (ties go to the earlier epoch, so a later epoch
    replaces them only when the rule ranks it strictly better). ``{"rows", "baseline_val",
    "chosen" (row or None), "state" (the chosen weights or None), "train_s"}``."""
    torch.manual_seed(seed)
    parts = trainable_copy(inputs)
    loader, sampler = train_loader(inputs, plan, seed)
    validator = val_scorer(inputs)
    base = validator.baseline
    params = [p for p in parts.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay)
    train_cfg = inputs.config.train
    rows: list[dict[str, Any]] = []
    chosen, state = None, None
    started = time.perf_counter()
    for epoch in range(plan.epochs):
        for group in opt.param_groups:
            group["lr"] = plan.lr * warmup_cosine(epoch, plan.epochs, warmup=plan.warmup, min_factor=plan.min_factor)
        sampler.set_epoch(epoch)
        row: dict[str, Any] = {"epoch": epoch, "loss": _epoch(parts, loader, opt, plan, inputs.device)}
        if (epoch + 1) % plan.val_every == 0 or epoch == plan.epochs - 1:
            validator.detector = frozen_view(parts, inputs)
            row["val"] = validator.score(None)
            rows.append(row)
            now = select_epoch(
                rows,
                base["AP"][base["advantaged"]],
                train_cfg.select_max_advantaged_drop,
                train_cfg.select_rule,
                baseline_gap=base["gap_AP"],
            )
            if now is not None and now["epoch"] == epoch:
                chosen, state = now, {k: v.detach().cpu().clone() for k, v in parts.model.state_dict().items()}
            inputs.log(_progress(seed, row, plan.epochs))
        else:
            rows.append(row)
    return {
        "rows": rows,
        "baseline_val": base,
        "chosen": chosen,
        "state": state,
        "train_s": time.perf_counter() - started,
    }


def _progress(seed: int, row: dict[str, Any], epochs: int) -> str:
    val = row["val"]
    aps = ", ".join(f"{g} {ap:.4f}" for g, ap in val["AP"].items())
    return (
        f"seed {seed}: epoch {row['epoch'] + 1}/{epochs} loss {row['loss']:.3f}  val AP {aps}  gap {val['gap_AP']:+.4f}"
    )


def test_split(inputs: SeedInputs) -> DatasetSplit:
    cfg = inputs.config
    return load_split(
        inputs.root,
        cfg.eval.split,
        split_by=cfg.data.split_by,
        layout=cfg.data.layout,
        limit=inputs.limit,
        group_level="image",
    )


def score_on_test(inputs: SeedInputs, data: DatasetSplit, retrained: FrozenDetector) -> dict[str, Any]:
    """The shipped (``baseline``) and the retrained (``perturbed``) detector on ``data``, scored as
    ``faap eval`` scores a run: per-group and overall COCO stats, gaps, share closed, and the paired
    group-stratified bootstrap with the ``[eval]`` settings (resamples, seed, confidence)."""
    cfg, ev = inputs.config, inputs.config.eval
    min_size, max_size = inputs.shipped.sizes(cfg.data.min_size, cfg.data.max_size)
    ds = GroupedDetectionDataset(data, EvalTransform(min_size, max_size))
    loader = make_eval_loader(ds, eval_batches(data.records, ev.batch_size, min_size, max_size))
    settings: dict[str, list[dict[str, Any]]] = {}
    for name, det in (("baseline", copy.deepcopy(inputs.shipped)), ("perturbed", retrained)):
        (settings[name],) = detect_settings(det, loader, [None], device=inputs.device, channels_last=ev.channels_last)
    ref = reference_groups(data.groups, cfg.data.disadvantaged, cfg.data.advantaged)
    group_images = data.group_images()
    scored = score(
        make_coco(data.coco_gt),
        settings,
        group_images,
        ref,
        resamples=ev.bootstrap,
        seed=ev.seed,
        confidence=ev.confidence,
        iou_thrs=ev.iou_thresholds,
        backend=ev.coco_backend,
    )
    scored.pop("timing_s", None)
    return {
        "split": data.split,
        "split_by": data.split_by,
        "groups": {g: {"images": len(ids)} for g, ids in group_images.items()},
        "reference": {"disadvantaged": ref[0], "advantaged": ref[1]} if ref else None,
        **scored,
    }


def seed_report(inputs: SeedInputs, plan: RetrainPlan, seed: int, tuned: dict[str, Any]) -> dict[str, Any]:
    """One seed's record: the plan, the val rows, the chosen epoch and, when one was chosen, its
    test result (``faap eval``'s keys) and its row of the across-seed table."""
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "seed": seed,
        "plan": {**asdict(plan), "steps": plan.steps, "images": plan.images},
        "detector": {"name": inputs.shipped.name, "sha256": inputs.shipped.sha256},
        "baseline_val": tuned["baseline_val"],
        "val": [r for r in tuned["rows"] if "val" in r],
        "losses": [round(r["loss"], 5) for r in tuned["rows"]],
        "train_seconds": round(tuned["train_s"], 1),
        "selection": {
            "split": inputs.config.data.val_split,
            "rule": inputs.config.train.select_rule,
            "max_advantaged_drop": inputs.config.train.select_max_advantaged_drop,
            "epoch": None if tuned["chosen"] is None else tuned["chosen"]["epoch"],
        },
    }
    if tuned["state"] is None:
        report["test"] = None
        return report
    parts = inputs.spec.build()
    load_state_strict(parts.model, tuned["state"], what="the retrained detector")
    retrained = frozen_view(parts, inputs)
    test = score_on_test(inputs, test_split(inputs), retrained)
    test["epoch"] = tuned["chosen"]["epoch"]
    report["test"] = test
    report["row"] = seed_row(seed, test)
    return report
