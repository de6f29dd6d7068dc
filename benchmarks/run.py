"""Benchmarks: ``python -m benchmarks.run [--device cpu|cuda] [--sections detector,train,eval]``."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from datetime import date

import torch

from faapkit.config import resolve_config
from faapkit.core.augment import color_jitter
from faapkit.core.losses.base import LossInputs
from faapkit.core.perturb import PerturbationGenerator, apply_perturbation
from faapkit.detr.build import build_from_spec
from faapkit.detr.frozen import FrozenDetector, load_detector
from faapkit.plugins import make_plugin_manager
from faapkit.registry import Registries

REG = Registries.from_plugin_manager(make_plugin_manager())


def timeit(fn: Callable[[], object], device: torch.device, warmup: int = 2, repeat: int = 5) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat


def detector_for(name: str, device: torch.device) -> FrozenDetector:
    spec = REG.detectors.get(name)
    if spec.weights:
        return load_detector(spec, device=device)
    torch.manual_seed(0)
    return FrozenDetector(*build_from_spec(spec), name=name).to(device)  # random weights: same cost


def make_batch(bs: int, h: int, w: int, device: torch.device, num_classes: int):
    x = torch.randn(bs, 3, h, w, device=device)
    mask = torch.zeros(bs, h, w, dtype=torch.bool, device=device)
    targets = [
        {
            "boxes": torch.tensor([[0.5, 0.5, 0.3, 0.6], [0.3, 0.4, 0.2, 0.3]], device=device),
            "labels": torch.tensor([1, 1], device=device),
        }
        for _ in range(bs)
    ]
    groups = torch.tensor([i % 2 for i in range(bs)], device=device)
    return x, mask, targets, groups


def autocast(device: torch.device, bf16: bool):
    return (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if bf16 and device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )


def floor_step(det: FrozenDetector, x, mask, targets, bf16: bool, device: torch.device) -> Callable[[], None]:
    def step() -> None:
        xi = x.detach().requires_grad_(True)
        with autocast(device, bf16):
            out = det(xi, mask)
        loss, _, _ = det.detection_loss(out, targets)
        loss.backward()

    return step


def configs(device: torch.device, r50_size: int) -> list[tuple[str, int, int, int]]:
    if device.type == "cuda":
        return [("detr-synth-tiny", 64, 128, 160), ("detr-r50", 8, r50_size, round(r50_size * 1.36))]
    return [("detr-synth-tiny", 8, 128, 160), ("detr-r50", 1, 384, 512)]


def section_detector(device: torch.device, r50_size: int) -> list[dict[str, object]]:
    rows = []
    for name, bs, h, w in configs(device, r50_size):
        det = detector_for(name, device)
        x, mask, targets, _ = make_batch(bs, h, w, device, det.num_classes)
        for bf16 in [False, True] if device.type == "cuda" else [False]:

            def fwd() -> None:
                with torch.no_grad(), autocast(device, bf16):
                    det(x, mask)

            t_f = timeit(fwd, device)
            t_b = timeit(floor_step(det, x, mask, targets, bf16, device), device)
            rows.append(
                {
                    "detector": name,
                    "batch": f"{bs}x{h}x{w}",
                    "dtype": "bf16" if bf16 else "fp32",
                    "forward img/s": bs / t_f,
                    "fwd+bwd-to-input img/s": bs / t_b,
                    "bwd cost x": t_b / t_f,
                }
            )
    return rows


def section_train(device: torch.device, r50_size: int) -> list[dict[str, object]]:
    rows = []
    name, bs, h, w = configs(device, r50_size)[0 if device.type == "cpu" else 1]
    det = detector_for(name, device)
    x, mask, targets, groups = make_batch(bs, h, w, device, det.num_classes)
    bf16 = device.type == "cuda"
    t_floor = timeit(floor_step(det, x, mask, targets, bf16, device), device)
    rows.append(
        {"version": "floor (detector fwd+bwd to input)", "detector": name, "img/s": bs / t_floor, "x floor": 1.0}
    )
    for version in sorted(REG.versions):
        cfg = resolve_config(REG, version=version, overrides=["data.root='unused'"])
        gen = PerturbationGenerator(cfg.generator.base_channels).to(device)
        spec = REG.versions.get(version)
        head = REG.heads.get(spec.head).build(feature_dim=det.hidden_dim, **cfg.head).to(device) if spec.head else None
        strategy = REG.losses.get(spec.loss).build(**cfg.loss)
        strategy.attach(head, device)
        params = list(gen.parameters()) + (
            list(head.parameters()) if head is not None and strategy.head_in_generator_optimizer else []
        )
        opt = torch.optim.AdamW(params, lr=1e-4)
        weights = {"beta": 0.5, "contrastive_weight": 1.0}
        jitter_gen = torch.Generator().manual_seed(0)

        def step() -> None:
            with autocast(device, bf16):
                pert, _ = apply_perturbation(gen, x, mask)
                if cfg.train.augment != "none":
                    pert = color_jitter(pert, mask, cfg.train.augment, jitter_gen)
                out = det(pert, mask)
            detection, _, indices = det.detection_loss(out, targets)
            inputs = LossInputs(out, targets, groups, detection, indices, weights, head)
            strategy.before_generator_step(inputs)
            total = strategy(inputs).total
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.train.max_norm)
            opt.step()

        t = timeit(step, device)
        rows.append({"version": version, "detector": name, "img/s": bs / t, "x floor": t / t_floor})
    return rows


def section_eval(device: torch.device) -> list[dict[str, object]]:
    from faapkit.core.cocoeval import evaluate_groups, make_coco
    from faapkit.core.inference import detect, make_eval_loader
    from faapkit.data.batching import eval_batches
    from faapkit.data.coco import GroupedDetectionDataset, load_split
    from faapkit.data.synth import embedded_dataset
    from faapkit.data.transforms import EvalTransform

    det = detector_for("detr-synth-tiny", device)
    data = load_split(embedded_dataset(), "test")
    ds = GroupedDetectionDataset(data, EvalTransform(128, 213))
    torch.manual_seed(0)
    gen = PerturbationGenerator(16, epsilon=0.1).to(device)
    groups = {g: [r.image_id for r in data.records if r.group == g] for g in data.groups}

    def one_pass() -> dict:
        loader = make_eval_loader(ds, eval_batches(data.records, 8, 128, 213))
        coco = make_coco(data.coco_gt)
        base = evaluate_groups(coco, detect(det, loader, device=device), groups)
        pert = evaluate_groups(coco, detect(det, loader, device=device, generator=gen), groups)
        return {"baseline": base, "perturbed": pert}

    def four_pass() -> dict:
        # the research procedure: per group and setting, its own dataset, COCO API and inference pass
        result: dict = {"baseline": {}, "perturbed": {}}
        for setting, g_ in (("perturbed", gen), ("baseline", None)):
            for g, ids in groups.items():
                idx = [i for i, r in enumerate(data.records) if r.group == g]
                sub_gt = {
                    "images": [im for im in data.coco_gt["images"] if im["id"] in set(ids)],
                    "annotations": [a for a in data.coco_gt["annotations"] if a["image_id"] in set(ids)],
                    "categories": data.coco_gt["categories"],
                }
                recs = [data.records[i] for i in idx]
                batches = [[idx[j] for j in b] for b in eval_batches(recs, 8, 128, 213)]
                dets = detect(det, make_eval_loader(ds, batches), device=device, generator=g_)
                result[setting].update(evaluate_groups(make_coco(sub_gt), dets, {g: ids}))
        return result

    start = time.perf_counter()
    a = one_pass()
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    b = four_pass()
    t_four = time.perf_counter() - start
    diff = max(abs(a[s][g]["AP"] - b[s][g]["AP"]) for s in a for g in a[s])
    start = time.perf_counter()
    cached_rerun = evaluate_groups(
        make_coco(data.coco_gt),
        detect(det, make_eval_loader(ds, eval_batches(data.records, 8, 128, 213)), device=device, generator=gen),
        groups,
    )
    t_cached = time.perf_counter() - start
    assert cached_rerun
    return [
        {"approach": "four passes (research)", "seconds": t_four, "speed-up": 1.0, "max |AP diff|": 0.0},
        {
            "approach": "one pass per setting, grouped COCO",
            "seconds": t_one,
            "speed-up": t_four / t_one,
            "max |AP diff|": diff,
        },
        {
            "approach": "one pass, cached baseline (next checkpoint)",
            "seconds": t_cached,
            "speed-up": t_four / t_cached,
            "max |AP diff|": diff,
        },
    ]


def print_table(title: str, rows: list[dict[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key, justify="right")
    for r in rows:
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values()])
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sections", default="detector,train,eval")
    parser.add_argument("--r50-size", type=int, default=800)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"faapkit benchmarks {date.today()} device={device} ({gpu}) torch={torch.__version__} "
        f"threads={torch.get_num_threads()}"
    )
    sections = args.sections.split(",")
    if "detector" in sections:
        print_table("frozen detector", section_detector(device, args.r50_size))
    if "train" in sections:
        print_table("train step per version vs floor", section_train(device, args.r50_size))
    if "eval" in sections:
        print_table("evaluation: one pass vs four passes", section_eval(device))


if __name__ == "__main__":
    main()
