"""Benchmarks: ``python -m benchmarks.run [--device cpu|cuda]
[--sections flops,detector,train,eval,bootstrap,effect,coco-backend] [--compile] [--repeats N]``.

Every ratio is between numbers measured in the same run. The train section times the engine's own
``Trainer.train_step`` (sampling aside), the eval section times ``faapkit.evaluate.evaluator.evaluate``
against a re-enactment of the research evaluation (four passes, DETR's ``CocoEvaluator``), the
bootstrap section ``scoring.bootstrap`` against the former per-resample loop, the effect section
(``benchmarks/effect.py``) what each generator buys per second of level-up training, the
coco-backend section (``benchmarks/coco_backend.py``) pycocotools against faster-coco-eval. Sections
that repeat show min / median / max over ``--repeats``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.spread import Spread
from faapkit.config import resolve_config
from faapkit.data.batching import Batch
from faapkit.detr.frozen import FrozenDetector, load_detector
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

REG = Registries.from_plugin_manager(make_plugin_manager())


def timeit(fn: Callable[[], object], device: torch.device, warmup: int = 2, repeat: int = 5) -> Spread:
    """Seconds per call of ``fn``, each of ``repeat`` calls timed on its own (min / median / max)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return Spread.of(times)


def rate(items: int, seconds: Spread) -> Spread:
    """Items per second from seconds per call (the slowest call gives the min)."""
    return Spread(items / seconds.max, items / seconds.median, items / seconds.min)


def detector_for(name: str, device: torch.device) -> FrozenDetector:
    """The shipped weights where there are some, else random weights (same cost). Random DETRs get
    a bias towards class 1 so that, like a trained person detector, every query predicts the class
    the ground truth uses and pycocotools does the full matching work."""
    spec = REG.detectors.get(name)
    if spec.weights:
        return load_detector(spec, device=device)
    torch.manual_seed(0)
    det = FrozenDetector(spec.build(), name=name)
    with torch.no_grad():
        det.model.class_embed.bias[1] += 8.0
    return det.to(device)


def make_batch(bs: int, h: int, w: int, device: torch.device) -> Batch:
    targets = [
        {
            "boxes": torch.tensor([[0.5, 0.5, 0.3, 0.6], [0.3, 0.4, 0.2, 0.3]], device=device),
            "labels": torch.tensor([1, 1], device=device),
        }
        for _ in range(bs)
    ]
    return Batch(
        torch.randn(bs, 3, h, w, device=device),
        torch.zeros(bs, h, w, dtype=torch.bool, device=device),
        targets,
        torch.tensor([i % 2 for i in range(bs)], device=device),
    )


def autocast(device: torch.device, bf16: bool) -> Any:
    return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and device.type == "cuda" else contextlib.nullcontext()


def floor_step(det: FrozenDetector, batch: Batch, bf16: bool, channels_last: bool) -> Callable[[], None]:
    """The floor: frozen detector forward + backward to the input alone (no generator, no optimiser)."""
    x = batch.images.contiguous(memory_format=torch.channels_last) if channels_last else batch.images

    def step() -> None:
        xi = x.detach().requires_grad_(True)
        with autocast(batch.images.device, bf16):
            out = det(xi, batch.mask)
        loss, _, _ = det.detection_loss(out, batch.targets)
        loss.backward()

    return step


def configs(device: torch.device, r50_size: int) -> list[tuple[str, int, int, int]]:
    if device.type == "cuda":
        return [("detr-synth-tiny", 64, 128, 160), ("detr-r50", 8, r50_size, round(r50_size * 1.36))]
    return [("detr-synth-tiny", 8, 128, 160), ("detr-r50", 1, 384, 512)]


CHANNELS_LAST = (False, True)  # NCHW, then NHWC


def section_detector(device: torch.device, r50_size: int) -> list[dict[str, object]]:
    rows = []
    for name, bs, h, w in configs(device, r50_size):
        det = detector_for(name, device)
        batch = make_batch(bs, h, w, device)
        for bf16 in [False, True] if device.type == "cuda" else [False]:
            for cl in CHANNELS_LAST:
                det.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
                x = batch.images.contiguous(memory_format=torch.channels_last) if cl else batch.images

                def fwd() -> None:
                    with torch.no_grad(), autocast(device, bf16):
                        det(x, batch.mask)

                t_f = timeit(fwd, device)
                t_b = timeit(floor_step(det, batch, bf16, cl), device)
                rows.append(
                    {
                        "detector": name,
                        "batch": f"{bs}x{h}x{w}",
                        "dtype": "bf16" if bf16 else "fp32",
                        "layout": "NHWC" if cl else "NCHW",
                        "forward img/s": rate(bs, t_f),
                        "fwd+bwd-to-input img/s": rate(bs, t_b),
                        "bwd cost x": t_b.median / t_f.median,
                    }
                )
    return rows


def section_flops(device: torch.device, r50_size: int) -> list[dict[str, object]]:
    """Arithmetic per image at the research resolution: why a step cannot get close to the floor."""
    from torch.utils.flop_counter import FlopCounterMode

    from faapkit.generators.perturb import ResearchUNetGenerator

    h, w = r50_size, round(r50_size * 1.36)
    x = torch.randn(1, 3, h, w, device=device)
    mask = torch.zeros(1, h, w, dtype=torch.bool, device=device)
    det = detector_for("detr-r50", device)

    def count(fn: Callable[[], None]) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops() / 1e9

    def floor() -> None:
        xi = x.clone().requires_grad_(True)
        det(xi, mask)["pred_boxes"].sum().backward()

    floor_gflop = count(floor)
    rows: list[dict[str, object]] = [
        {"part": f"DETR-R50 fwd+bwd to input, {h}x{w} (floor)", "GFLOP/image": floor_gflop, "x floor": 1.0}
    ]
    for channels in (32, 16):
        gen = ResearchUNetGenerator(channels).to(device)
        g = count(lambda gen=gen: gen(x).sum().backward())
        rows.append({"part": f"generator {channels} ch fwd+bwd", "GFLOP/image": g, "x floor": g / floor_gflop})
        rows.append(
            {"part": f"step lower bound, {channels} ch", "GFLOP/image": g + floor_gflop, "x floor": 1 + g / floor_gflop}
        )
    with torch.no_grad():
        det_fwd = count(lambda: det(x, mask))
        gen_fwd = count(lambda: ResearchUNetGenerator(32).to(device).eval()(x))
    research, cached = gen_fwd + 2 * det_fwd, gen_fwd + det_fwd
    rows.append({"part": "eval, research (perturbed + baseline)", "GFLOP/image": research, "x floor": None})
    rows.append({"part": "eval, cached baseline (perturbed only)", "GFLOP/image": cached, "x floor": None})
    rows.append({"part": "eval arithmetic speed-up bound", "GFLOP/image": research / cached, "x floor": None})
    return rows


class BenchTrainer(Trainer):
    """The real engine with a given detector object (random-weight R50 has no file to load)."""

    detector_object: FrozenDetector

    def build_detector(self) -> FrozenDetector:
        return self.detector_object


def engine_step(
    version: str, det: FrozenDetector, batch: Batch, device: torch.device, overrides: list[str], out: Path
) -> Callable[[], None]:
    cfg = resolve_config(
        REG,
        version=version,
        overrides=[
            f"detector.name='{det.name}'",
            # research size of the U-Net (the embedded default uses 16); other generators as registered
            *(["generator.base_channels=32"] if REG.versions.get(version).generator == "unet" else []),
            f"train.device='{device.type}'",
            "train.val_every=0",
            f"train.batch_size={batch.images.shape[0]}",
            *overrides,
        ],
    )
    trainer = BenchTrainer(cfg, REG, out / f"{version}-{len(list(out.iterdir()))}")
    trainer.detector_object = det
    trainer.setup()
    eps, lr, weights = trainer.epoch_values(0)
    trainer.generator.epsilon = eps
    trainer.generator.train()

    def step() -> None:
        trainer.train_step(batch, weights)

    return step


def section_train(device: torch.device, r50_size: int, compile_: bool) -> list[dict[str, object]]:
    name, bs, h, w = configs(device, r50_size)[0 if device.type == "cpu" else 1]
    det = detector_for(name, device)
    batch = make_batch(bs, h, w, device)
    cuda = device.type == "cuda"
    floors: dict[tuple[bool, bool], Spread] = {}
    for bf16 in [False, True] if cuda else [False]:
        for cl in CHANNELS_LAST:
            det.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            floors[(bf16, cl)] = timeit(floor_step(det, batch, bf16, cl), device)
    best = min(f.median for f in floors.values())  # ratios are of medians
    rows: list[dict[str, object]] = [
        {
            "step": f"floor {'bf16' if bf16 else 'fp32'} {'NHWC' if cl else 'NCHW'}",
            "img/s": rate(bs, t),
            "x own floor": 1.0,
            "x best floor": t.median / best,
        }
        for (bf16, cl), t in floors.items()
    ]
    from faapkit.generators.perturb import ResearchUNetGenerator
    from faapkit.generators.subpixel import SubPixelGenerator

    for gen_name, cl in [*(("unet 32", c) for c in CHANNELS_LAST), ("subpixel 32", False)]:
        fmt = torch.channels_last if cl else torch.contiguous_format
        gen = (ResearchUNetGenerator(32) if gen_name.startswith("unet") else SubPixelGenerator()).to(
            device, memory_format=fmt
        )
        for p in gen.parameters():  # the subpixel head starts at zero; time a trained-like state
            torch.nn.init.normal_(p, std=0.02)
        x = batch.images.contiguous(memory_format=torch.channels_last) if cl else batch.images

        def generator_alone() -> None:
            with autocast(device, cuda):
                out = gen(x)
            out.float().sum().backward()

        t = timeit(generator_alone, device)
        layout = "NHWC" if cl else "NCHW"
        rows.append(
            {
                "step": f"{gen_name} generator alone, fwd+bwd ({'bf16' if cuda else 'fp32'} {layout})",
                "img/s": rate(bs, t),
                "x own floor": t.median / floors[(cuda, cl)].median,
                "x best floor": t.median / best,
            }
        )
    variants: list[tuple[str, list[str]]] = [(v, []) for v in sorted(REG.versions)]
    variants += [
        ("4th", ["train.channels_last=true"]),
        ("4th", ["train.channels_last=true", "train.augment='none'"]),
    ]
    if cuda:
        variants += [("4th", ["train.amp=false"]), ("4th", ["train.amp=false", "train.channels_last=true"])]
    if compile_:
        variants += [("4th", ["train.channels_last=true", "train.compile=true"])]
    with tempfile.TemporaryDirectory() as tmp:
        for version, overrides in variants:
            bf16 = cuda and "train.amp=false" not in overrides
            cl = "train.channels_last=true" in overrides
            det.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            step = engine_step(version, det, batch, device, overrides, Path(tmp))
            warmup = 4 if "train.compile=true" in overrides else 2
            t = timeit(step, device, warmup=warmup)
            label = " ".join([version, *(o.removeprefix("train.") for o in overrides)])
            rows.append(
                {
                    "step": f"{label} ({'bf16' if bf16 else 'fp32'})",
                    "img/s": rate(bs, t),
                    "x own floor": t.median / floors[(bf16, cl)].median,
                    "x best floor": t.median / best,
                }
            )
    return rows


# ----------------------------------------------------------------------------- evaluation


class ResearchCocoEvaluator:
    """DETR's ``datasets/coco_eval.CocoEvaluator`` as the research used it: ``loadRes`` and
    ``evaluate()`` per batch, evalImgs concatenated, then ``accumulate`` and ``summarize``."""

    def __init__(self, coco_gt: Any) -> None:
        from pycocotools.cocoeval import COCOeval

        self.coco_gt = coco_gt
        self.coco_eval = COCOeval(coco_gt, iouType="bbox")
        self.img_ids: list[int] = []
        self.eval_imgs: list[np.ndarray] = []

    def update(self, results: list[dict[str, Any]], img_ids: list[int]) -> None:
        from pycocotools.coco import COCO

        self.img_ids.extend(img_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = COCO.loadRes(self.coco_gt, results) if results else COCO()
            ev = self.coco_eval
            ev.cocoDt = coco_dt
            ev.params.imgIds = list(img_ids)
            ev.evaluate()
        p = ev.params
        self.eval_imgs.append(np.asarray(ev.evalImgs).reshape(len(p.catIds), len(p.areaRng), len(p.imgIds)))

    def summarize(self) -> np.ndarray:
        ids, idx = np.unique(np.array(self.img_ids), return_index=True)
        ev = self.coco_eval
        ev.evalImgs = list(np.concatenate(self.eval_imgs, 2)[..., idx].flatten())
        ev.params.imgIds = list(ids)
        ev._paramsEval = copy.deepcopy(ev.params)
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
            ev.summarize()
        return ev.stats


def section_eval(device: torch.device, r50_size: int, repeat: int = 3) -> list[dict[str, object]]:
    """Each approach ``repeat`` times, interleaved (min / median / max seconds; speed-ups within a
    repeat), with the largest AP difference from the reference over every repeat."""
    from faapkit.config import EvalConfig
    from faapkit.data.batching import collate, eval_batches
    from faapkit.data.coco import GroupedDetectionDataset, load_split
    from faapkit.data.synth import embedded_dataset
    from faapkit.data.transforms import EvalTransform
    from faapkit.evaluate.cocoeval import evaluate_groups, make_coco
    from faapkit.evaluate.evaluator import evaluate
    from faapkit.evaluate.inference import coco_records, detect, make_eval_loader
    from faapkit.evaluate.requests import EvalRequest
    from faapkit.generators.perturb import ResearchUNetGenerator, clamp_normalized
    from faapkit.io import save_checkpoint

    cuda = device.type == "cuda"
    name, min_size, max_size = ("detr-r50", r50_size, 1333) if cuda else ("detr-synth-tiny", 128, 213)
    det = detector_for(name, device)
    data = load_split(embedded_dataset(), "test")
    ds = GroupedDetectionDataset(data, EvalTransform(min_size, max_size))
    torch.manual_seed(0)
    gen = ResearchUNetGenerator(32, epsilon=0.1).to(device).eval()
    groups = {g: [r.image_id for r in data.records if r.group == g] for g in data.groups}
    group_idx = {g: [i for i, r in enumerate(data.records) if r.group == g] for g in data.groups}
    workers = 4 if cuda else 0

    def research() -> tuple[dict, float]:
        """Per setting and group: its own dataset, loader (batch 10, file order, padded), COCO API and
        evaluator; the perturbation covers the padding too (research P4)."""
        result: dict = {"perturbed": {}, "baseline": {}}
        coco_s = 0.0
        for setting, g_ in (("perturbed", gen), ("baseline", None)):
            for g, ids in groups.items():
                idx = group_idx[g]
                keep = set(ids)
                coco = make_coco(
                    {
                        "images": [im for im in data.coco_gt["images"] if im["id"] in keep],
                        "annotations": [a for a in data.coco_gt["annotations"] if a["image_id"] in keep],
                        "categories": data.coco_gt["categories"],
                    }
                )
                evaluator = ResearchCocoEvaluator(coco)
                loader = torch.utils.data.DataLoader(
                    torch.utils.data.Subset(ds, idx),
                    batch_size=10,
                    collate_fn=collate,
                    num_workers=workers,
                    pin_memory=cuda,
                )
                with torch.no_grad():
                    for batch in loader:
                        batch = batch.to(device, non_blocking=True)
                        x = batch.images if g_ is None else clamp_normalized(batch.images + g_(batch.images))
                        outputs = det(x, batch.mask)
                        sizes = torch.stack([t["orig_size"] for t in batch.targets]).to(device)
                        ids_b = [int(t["image_id"]) for t in batch.targets]
                        records = coco_records(det.postprocess(outputs, sizes), ids_b)
                        t0 = time.perf_counter()
                        evaluator.update(records, ids_b)
                        coco_s += time.perf_counter() - t0
                t0 = time.perf_counter()
                result[setting][g] = {"AP": float(evaluator.summarize()[0])}
                coco_s += time.perf_counter() - t0
        return result, coco_s

    def four_pass_same_batches() -> tuple[dict, float]:
        """The same four passes with faapkit's shape-bucketed batches: the AP reference."""
        result: dict = {"baseline": {}, "perturbed": {}}
        coco_s = 0.0
        for setting, g_ in (("perturbed", gen), ("baseline", None)):
            for g, ids in groups.items():
                idx = group_idx[g]
                recs = [data.records[i] for i in idx]
                batches = [[idx[j] for j in b] for b in eval_batches(recs, 8, min_size, max_size)]
                dets = detect(det, make_eval_loader(ds, batches, workers, cuda), device=device, generator=g_)
                t0 = time.perf_counter()
                result[setting].update(evaluate_groups(make_coco(data.coco_gt), dets, {g: ids}))
                coco_s += time.perf_counter() - t0
        return result, coco_s

    approaches: list[tuple[str, Callable[[], tuple[dict, float]]]] = [
        ("research: 4 passes, bs 10 padded, per-batch COCOeval", research),
        ("4 passes, faapkit batches (AP reference)", four_pass_same_batches),
    ]
    # per approach and repeat: (seconds, COCO-eval seconds, AP results)
    timed: dict[str, list[tuple[float, float, dict]]] = {}
    cache_before = os.environ.get("FAAP_CACHE_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "generator.pt"
        save_checkpoint(ckpt, {"generator": gen.state_dict(), "epsilon": 0.1})
        req = EvalRequest(
            data=data,
            detector=det,
            device=device,
            checkpoint=ckpt,
            eval_config=EvalConfig(batch_size=8, bootstrap=0),
            min_size=min_size,
            max_size=max_size,
            num_workers=workers,
        )

        def faap_eval() -> tuple[dict, float]:
            m = evaluate(req)
            return m["metrics"], m["timing_s"]["coco_eval"]

        try:
            for r in range(repeat):
                os.environ["FAAP_CACHE_DIR"] = str(Path(tmp) / f"cache-{r}")  # an empty baseline cache per repeat
                for label, fn in [
                    *approaches,
                    ("faap eval, first checkpoint (baseline computed)", faap_eval),
                    ("faap eval, next checkpoint (baseline cached)", faap_eval),
                ]:
                    start = time.perf_counter()
                    res, coco_s = fn()
                    timed.setdefault(label, []).append((time.perf_counter() - start, coco_s, res))
        finally:
            if cache_before is None:
                os.environ.pop("FAAP_CACHE_DIR", None)
            else:
                os.environ["FAAP_CACHE_DIR"] = cache_before
    reference = timed[approaches[1][0]][0][2]
    t_research = [t for t, _, _ in timed[approaches[0][0]]]
    n_images = len(data.records)
    rows: list[dict[str, object]] = []
    for label, runs in timed.items():
        seconds = [t for t, _, _ in runs]
        rows.append(
            {
                "approach": label,
                "seconds": Spread.of(seconds),
                "COCO-eval s (median)": float(np.median([c for _, c, _ in runs])),
                "img/s (2 settings, median)": 2 * n_images / float(np.median(seconds)),
                # the research run of the same repeat over this one
                "speed-up": Spread.of([a / b for a, b in zip(t_research, seconds, strict=True)]),
                # over every repeat: a result that changed between repeats would show here too
                "max |AP diff| vs reference": max(
                    abs(res[s][g]["AP"] - reference[s][g]["AP"]) for _, _, res in runs for s in res for g in res[s]
                ),
            }
        )
    return rows


# ----------------------------------------------------------------------------- bootstrap


def bootstrap_inputs(device: torch.device) -> tuple[Any, dict[str, list[dict[str, Any]]], dict[str, list[int]], Any]:
    """What ``faap eval`` bootstraps on the embedded test split (250 images per group): baseline
    detections of the shipped tiny detector and perturbed ones of a random 32-channel generator
    (epsilon 0.1), the ground truth and the groups."""
    from faapkit.data.coco import load_split
    from faapkit.data.synth import embedded_dataset
    from faapkit.distributed import DistInfo
    from faapkit.evaluate.cocoeval import make_coco
    from faapkit.evaluate.evaluator import run_detections
    from faapkit.evaluate.requests import EvalRequest
    from faapkit.fairness import reference_groups
    from faapkit.generators.perturb import ResearchUNetGenerator

    data = load_split(embedded_dataset(), "test")
    det = detector_for("detr-synth-tiny", device)
    torch.manual_seed(0)
    gen = ResearchUNetGenerator(32, epsilon=0.1).to(device).eval()
    req = EvalRequest(data=data, detector=det, device=device, num_workers=0)
    base, pert = run_detections(req, [None, gen], DistInfo())
    group_images = {g: [r.image_id for r in data.records if r.group == g] for g in data.groups}
    ref = reference_groups(data.groups, None, None)
    return make_coco(data.coco_gt), {"baseline": base, "perturbed": pert}, group_images, ref


def section_bootstrap(device: torch.device, resamples: int = 1000, repeat: int = 3) -> list[dict[str, object]]:
    """``scoring.bootstrap`` (vectorised over resamples) against the former per-resample loop
    (``tests/eval/bootstrap_reference.py``) on the same detections, each timed ``repeat`` times
    (min / median / max), with the largest difference between their CIs."""
    from faapkit.evaluate.scoring import bootstrap
    from tests.eval.bootstrap_reference import reference_bootstrap

    coco_gt, settings, group_images, ref = bootstrap_inputs(device)
    args = (coco_gt, settings, group_images, ref, resamples, 0, 0.95)
    results: dict[str, tuple[list[float], dict[str, Any]]] = {}
    for label, fn in (("former loop (reference)", reference_bootstrap), ("vectorised", bootstrap)):
        times, out = [], {}
        for _ in range(repeat):
            start = time.perf_counter()
            out = fn(*args)
            times.append(time.perf_counter() - start)
        results[label] = (times, out)

    def leaves(x: Any) -> list[float]:
        if isinstance(x, dict):
            return [v for k in sorted(x) for v in leaves(x[k])]
        if isinstance(x, list | tuple):
            return [v for item in x for v in leaves(item)]
        return [float(x)] if isinstance(x, int | float) else []

    (t_old, out_old), (t_new, out_new) = results.values()
    a, b = leaves(out_old), leaves(out_new)
    diff = max(abs(x - y) for x, y in zip(a, b, strict=True)) if len(a) == len(b) else float("nan")
    n_img = sum(len(v) for v in group_images.values())
    rows: list[dict[str, object]] = []
    for label, (times, _) in results.items():
        rows.append(
            {
                "bootstrap": f"{label}, {resamples} resamples, {n_img} images, {len(settings)} settings",
                "min s": min(times),
                "median s": float(np.median(times)),
                "max s": max(times),
                "speed-up (median)": float(np.median(t_old)) / float(np.median(times)),
                "speed-up (min)": min(t_old) / min(times),
                "max |CI diff| vs former": None if times is t_old else diff,
            }
        )
    return rows


def print_table(title: str, rows: list[dict[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key, justify="right")
    for r in rows:
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else "-" if v is None else str(v) for v in r.values()])
    Console(width=200).print(table)  # wide enough that no cell wraps (min / median / max cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sections", default="flops,detector,train,eval,bootstrap,effect")
    parser.add_argument(
        "--repeats",
        "--repeat",
        dest="repeats",
        type=int,
        default=3,
        help="repeats of the eval, bootstrap and effect sections (tables show min / median / max)",
    )
    parser.add_argument("--r50-size", type=int, default=800)
    parser.add_argument("--compile", action="store_true", help="also time the 4th with torch.compile")
    parser.add_argument("--effect-seconds", type=float, default=60.0, help="training budget per generator and repeat")
    parser.add_argument(
        "--effect-generators", default="detector-aware,subpixel,unet32", help="the first is the ratios' numerator"
    )
    parser.add_argument("--effect-max-steps", type=int, default=None, help="cap on steps (quick checks only)")
    parser.add_argument("--effect-val-images", type=int, default=None, help="score on N val images (quick checks only)")
    parser.add_argument("--coco-copies", type=int, default=8, help="coco-backend: the test split repeated N times")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"faapkit benchmarks {date.today()} device={device} ({gpu}) torch={torch.__version__} "
        f"threads={torch.get_num_threads()} repeats={args.repeats}"
    )
    sections = args.sections.split(",")
    if "flops" in sections:
        print_table("arithmetic per image", section_flops(device, args.r50_size))
    if "detector" in sections:
        print_table("frozen detector", section_detector(device, args.r50_size))
    if "train" in sections:
        print_table("engine train step vs the floor", section_train(device, args.r50_size, args.compile))
    if "eval" in sections:
        print_table(
            "evaluation: faap eval vs the research's four passes (seconds: min / median / max)",
            section_eval(device, args.r50_size, repeat=args.repeats),
        )
    if "bootstrap" in sections:
        print_table("bootstrap: vectorised vs the former loop", section_bootstrap(device, repeat=args.repeats))
    if "effect" in sections:
        from benchmarks.effect import section_effect

        rows, ratios = section_effect(
            REG,
            device,
            seconds=args.effect_seconds,
            repeats=args.repeats,
            generators=tuple(args.effect_generators.split(",")),
            max_steps=args.effect_max_steps,
            val_images=args.effect_val_images,
        )
        budget = f"{args.effect_seconds:g} s" + (
            f", at most {args.effect_max_steps} steps" if args.effect_max_steps else ""
        )
        print_table(f"effect: level-up per generator, {budget} of training each, scored on val", rows)
        print_table("effect ratios, within each repeat", ratios)
    if "coco-backend" in sections:  # not in the default sections: it needs the fast-coco extra
        from benchmarks.coco_backend import section_coco_backend

        print_table(
            "COCO scoring: pycocotools vs faster-coco-eval, same detections (seconds: min / median / max)",
            section_coco_backend(device, copies=args.coco_copies, repeat=args.repeats),
        )


if __name__ == "__main__":
    main()
