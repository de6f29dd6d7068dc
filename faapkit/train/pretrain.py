"""Pretraining of the shipped tiny detector on the embedded synthetic benchmark.

Reproduce the shipped weights with ``faap detector pretrain --preset synth-tiny --epochs 200
--stop-after 150 --device cuda`` and the stronger-bias variant with ``--preset synth-tiny-v2
--epochs 200 --stop-after 150 --device cpu --workers 1`` (34 minutes on 2 CPU cores). The detector is
trained on the biased train split as it is (3 male : 1 female, no balancing): that is how the
research detector met its data, and where the group gap comes from.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from faapkit.config.defaults import TINY_DETECTORS
from faapkit.data.batching import collate, eval_batches
from faapkit.data.coco import GroupedDetectionDataset, load_split
from faapkit.data.synth import embedded_dataset
from faapkit.data.transforms import EvalTransform, TrainTransform
from faapkit.detr.misc import NestedTensor
from faapkit.evaluate.cocoeval import evaluate_groups, make_coco
from faapkit.evaluate.inference import autocast_for, detect, make_eval_loader
from faapkit.io import atomic_write_text, save_checkpoint
from faapkit.plugins.specs import EMBEDDED_MAX_SIZE, EMBEDDED_MIN_SIZE, EMBEDDED_TRAIN_SCALES, DetectorSpec


@dataclass(frozen=True)
class PretrainPreset:
    detector: str = TINY_DETECTORS["v1"]
    epochs: int = 300
    batch_size: int = 64
    lr: float = 2e-4
    weight_decay: float = 1e-4
    max_norm: float = 0.1
    lr_drop_fraction: float = 0.75
    scales: tuple[int, ...] = EMBEDDED_TRAIN_SCALES
    min_size: int = EMBEDDED_MIN_SIZE
    max_size: int = EMBEDDED_MAX_SIZE
    seed: int = 0
    data_seed: int = 0
    shape_buckets: bool = False  # batches of one resized shape: the detector never sees padding
    bias: str = "v1"  # the embedded benchmark's bias (faapkit.data.synth.BIASES)
    # continue a registered detector's shipped weights from this epoch of the schedule (fresh optimiser
    # state) instead of training from random initialisation
    init: str | None = None
    start_epoch: int = 0


# "synth-tiny" reproduces the shipped weights (random batches, hence padded); "synth-tiny-unpadded"
# trains on shape-bucketed batches so that training input looks like evaluation input (no padding);
# "synth-tiny-v2" trains the stronger-bias variant's detector that way on the v2 benchmark.
PRESETS = {
    "synth-tiny": PretrainPreset(),
    "synth-tiny-unpadded": PretrainPreset(shape_buckets=True),
    "synth-tiny-v2": PretrainPreset(detector=TINY_DETECTORS["v2"], shape_buckets=True, bias="v2"),
    # the default detector: detr-synth-tiny-v2's 200-epoch schedule run to its end on the same train
    # images; v3 differs from v2 in its val split only
    "synth-tiny-v3": PretrainPreset(
        detector=TINY_DETECTORS["v3"],
        epochs=200,
        shape_buckets=True,
        bias="v3",
        init=TINY_DETECTORS["v2"],
        start_epoch=150,
    ),
}


class _Shuffled(torch.utils.data.Sampler):
    def __init__(self, n: int, batch_size: int, seed: int, epoch: int) -> None:
        self.n, self.bs, self.seed, self.epoch = n, batch_size, seed, epoch

    def __iter__(self):  # type: ignore[no-untyped-def]
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        seeds = torch.randint(0, 2**31 - 1, (self.n,), generator=g).tolist()
        for i in range(0, self.n - self.bs + 1, self.bs):
            yield [(perm[j], seeds[j]) for j in range(i, i + self.bs)]

    def __len__(self) -> int:
        return self.n // self.bs


class _ShapeBuckets(torch.utils.data.Sampler):
    """Batches of ``(index, seed, scale)``: every image of a batch has the same original size and
    one scale for the whole batch, so they resize to one shape and nothing is padded."""

    def __init__(
        self, sizes: list[tuple[int, int]], batch_size: int, scales: tuple[int, ...], seed: int, epoch: int
    ) -> None:
        self.buckets: dict[tuple[int, int], list[int]] = {}
        for i, hw in enumerate(sizes):
            self.buckets.setdefault(hw, []).append(i)
        self.bs, self.scales, self.seed, self.epoch = batch_size, scales, seed, epoch

    def __iter__(self):  # type: ignore[no-untyped-def]
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        batches = []
        for _, members in sorted(self.buckets.items()):
            perm = [members[j] for j in torch.randperm(len(members), generator=g).tolist()]
            batches += [perm[i : i + self.bs] for i in range(0, len(perm) - self.bs + 1, self.bs)]
        for b in torch.randperm(len(batches), generator=g).tolist():
            scale = self.scales[int(torch.randint(len(self.scales), (1,), generator=g))]
            seeds = torch.randint(0, 2**31 - 1, (self.bs,), generator=g).tolist()
            yield [(i, s, scale) for i, s in zip(batches[b], seeds, strict=True)]

    def __len__(self) -> int:
        return sum(len(m) // self.bs for m in self.buckets.values())


def evaluate_detector(
    detector: Any,
    root: Path,
    split: str,
    *,
    device: torch.device,
    min_size: int,
    max_size: int,
    batch_size: int = 16,
    num_workers: int = 0,
) -> dict[str, dict[str, float | None]]:
    data = load_split(root, split, split_by="gender")
    ds = GroupedDetectionDataset(data, EvalTransform(min_size, max_size))
    loader = make_eval_loader(ds, eval_batches(data.records, batch_size, min_size, max_size), num_workers)
    dets = detect(detector, loader, device=device)
    groups = {g: [r.image_id for r in data.records if r.group == g] for g in data.groups}
    return evaluate_groups(make_coco(data.coco_gt), dets, groups)


def _loader(
    ds: GroupedDetectionDataset, data: Any, preset: PretrainPreset, num_workers: int, dev: torch.device
) -> tuple[_Shuffled | _ShapeBuckets, DataLoader]:
    """The preset's batches (shape-bucketed, or randomly composed and padded) and their loader."""
    sampler: _Shuffled | _ShapeBuckets = (
        _ShapeBuckets([(r.height, r.width) for r in data.records], preset.batch_size, preset.scales, preset.seed, 0)
        if preset.shape_buckets
        else _Shuffled(len(ds), preset.batch_size, preset.seed, 0)
    )
    loader = DataLoader(
        ds,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=dev.type == "cuda",
        persistent_workers=num_workers > 0,
    )
    return sampler, loader


def _train_epoch(
    model: torch.nn.Module,
    criterion: Any,
    loader: DataLoader,
    opt: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    max_norm: float,
    dev: torch.device,
) -> float:
    """One epoch of DETR set-loss steps; the mean loss (one host sync, at the end)."""
    loss_sum, n = torch.zeros((), device=dev), 0
    for batch in loader:
        batch = batch.to(dev, non_blocking=True)
        with autocast_for(dev, True):
            outputs = model(NestedTensor(batch.images, batch.mask))
        terms, _ = criterion(outputs, batch.targets)
        loss = criterion.total(terms)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        opt.step()
        loss_sum += loss.detach()
        n += 1
    return float(loss_sum) / max(1, n)


def _weights_file(model: torch.nn.Module, preset: PretrainPreset, preset_name: str) -> dict[str, Any]:
    """``{"model": state_dict, "trained": how}``: ``trained`` is what a run given these weights as
    ``detector.checkpoint`` follows (``faapkit.io.checkpoint_training``): its batching and
    its benchmark, which a bare state dict cannot say."""
    trained = {"preset": preset_name, "shape_buckets": preset.shape_buckets, "bias": preset.bias}
    return {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "trained": trained}


def _trainable_parts(spec: DetectorSpec, dev: torch.device) -> Any:
    """The registered factory's parts (a plugin's detector pretrains the same way), in train mode on ``dev``."""
    parts = spec.build()
    parts.model.to(dev).train()
    if isinstance(parts.criterion, torch.nn.Module):  # its buffers (class weights) follow the model
        parts.criterion.to(dev)
    return parts


def _start_from(model: torch.nn.Module, preset: PretrainPreset, init_spec: DetectorSpec | None) -> None:
    """Load ``preset.init``'s shipped weights into ``model`` (a preset that continues a schedule)."""
    if preset.init is None:
        return
    if init_spec is None or init_spec.name != preset.init or init_spec.weights is None:
        raise ValueError(f"the preset starts from {preset.init}'s shipped weights: pass its spec as init_spec")
    from faapkit.detr.build import load_state_strict, packaged_path, read_state_dict

    load_state_strict(model, read_state_dict(packaged_path(init_spec.weights)), what=f"detector '{preset.init}'")


def pretrain(
    spec: DetectorSpec,
    out: Path,
    *,
    preset: PretrainPreset,
    device: str = "auto",
    epochs: int | None = None,
    stop_after: int | None = None,
    num_workers: int = 4,
    log: Any = print,
    preset_name: str = "synth-tiny",
    init_spec: DetectorSpec | None = None,
) -> dict[str, Any]:
    """Train ``spec``'s model on the preset's embedded benchmark; write the weights to ``out`` and a
    report beside it. ``init_spec``: the registered detector whose shipped weights ``preset.init``
    names (training then runs epochs ``preset.start_epoch`` .. end of the schedule)."""
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    torch.manual_seed(preset.seed)
    random.seed(preset.seed)
    root = embedded_dataset(preset.data_seed, preset.bias)
    data = load_split(root, "train", split_by="gender")
    ds = GroupedDetectionDataset(data, TrainTransform(preset.scales, preset.max_size, crop_prob=0.3))
    parts = _trainable_parts(spec, dev)
    model, criterion = parts.model, parts.criterion
    _start_from(model, preset, init_spec)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=preset.lr, weight_decay=preset.weight_decay)
    n_epochs = preset.epochs if epochs is None else epochs  # 0 is not "unset" (the CLI refuses it)
    last = n_epochs if stop_after is None else min(n_epochs, stop_after)
    drop_at = math.ceil(n_epochs * preset.lr_drop_fraction)
    start = time.time()
    sampler, loader = _loader(ds, data, preset, num_workers, dev)
    for epoch in range(preset.start_epoch, last):
        sampler.epoch = epoch
        if epoch == max(drop_at, preset.start_epoch) and epoch >= drop_at:
            for group in opt.param_groups:
                group["lr"] = preset.lr * 0.1
        mean_loss = _train_epoch(model, criterion, loader, opt, params, preset.max_norm, dev)
        if epoch % 10 == 0 or epoch == n_epochs - 1:
            log(f"epoch {epoch:4d}  loss {mean_loss:.4f}  {time.time() - start:.0f}s")
        if (epoch + 1) % 50 == 0:  # a usable snapshot if the run is cut short
            save_checkpoint(out.with_suffix(".partial.pth"), _weights_file(model, preset, preset_name))
    model.eval()
    from faapkit.detr.frozen import FrozenDetector

    frozen = FrozenDetector(parts, name=spec.name, input_size=(spec.min_size, spec.max_size))
    baseline = evaluate_detector(frozen, root, "test", device=dev, min_size=preset.min_size, max_size=preset.max_size)
    save_checkpoint(out, _weights_file(model, preset, preset_name))
    report = {
        "detector": spec.name,
        "preset": asdict(preset),
        "epochs": n_epochs,
        "device": str(dev),
        "train_seconds": round(time.time() - start, 1),
        "test_baseline_trained_device": baseline,
        "stop_after": stop_after,
        "command": f"faap detector pretrain --preset {preset_name} --epochs {n_epochs}"
        + (f" --stop-after {stop_after}" if stop_after is not None else "")
        + f" --out {out.name}",
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(report, indent=2))
    return report
