"""``faap eval``: baseline and perturbed per-group COCO metrics, gaps and bootstrap CIs.

One inference pass per setting over the whole split (shape-bucketed batches, so batch size cannot
change an image's result); each group is evaluated by restricting pycocotools to its image ids.
The bootstrap resamples images within each group (stratified) with the same draw for both settings
(paired) and re-accumulates the per-image match records of a single ``evaluate()`` per setting, all
resamples at once (``PerImageRecords.resample_ap_ar``).
Baseline detections are cached per (detector, dataset, split, eval settings) (research P3).

Beside each group, the metrics hold the overall value (one COCO evaluation over every image of the
split), the gap (``advantaged - disadvantaged``; ``max - min`` without a named pair) and the ratio
(``disadvantaged / advantaged``; ``min / max``), and the bootstrap gives a CI for each of them and
for their change. :func:`score` does that from detections alone, so a rescore of saved detections
(:mod:`faapkit.evaluate.detections`) is the same code as an evaluation.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from faapkit import __version__
from faapkit.artifacts.checkpoint import generator_state
from faapkit.artifacts.records import METRICS_FORMAT, checkpoint_payload
from faapkit.data.batching import eval_batches, loader_workers
from faapkit.data.coco import DatasetSplit, GroupedDetectionDataset, load_split
from faapkit.data.synth import default_cache_dir
from faapkit.data.transforms import EvalTransform
from faapkit.detr.frozen import load_detector
from faapkit.distributed import DistInfo, gather_objects, init_from_env
from faapkit.errors import CheckpointError, ConfigError, DataError
from faapkit.evaluate.cocoeval import make_coco
from faapkit.evaluate.detections import image_id_record, to_dataset_ids
from faapkit.evaluate.inference import detect_settings, make_eval_loader
from faapkit.evaluate.requests import EvalRequest
from faapkit.evaluate.scoring import score
from faapkit.fairness import outside_pair, reference_groups
from faapkit.generators.perturb import ResearchUNetGenerator
from faapkit.io import atomic_write_text, load_checkpoint

SCHEMA = METRICS_FORMAT
# Resampling fewer images than this per group gives a CI of (nearly) zero width that looks precise.
MIN_BOOTSTRAP_IMAGES = 2
CACHE_FORMAT = 1


def detector_for_generator(path: Path, registries: Any, checkpoint: Path | None = None) -> Any:
    """The detector a checkpoint's generator was trained against, if that generator reads the
    detector (``GeneratorSpec.uses_detector``), else ``None``. Its weights must be the ones the
    checkpoint records (sha256): another detector's features would be a different input."""
    ckpt = load_checkpoint(path)
    name = str((ckpt.get("generator_spec") or {}).get("name", "unet"))
    if name not in registries.generators or not registries.generators.get(name).uses_detector:
        return None
    record = ckpt.get("detector") or {}
    if record.get("name") not in registries.detectors:
        raise CheckpointError(f"{path}: its generator reads detector {record.get('name')!r}, which is not installed")
    detector = load_detector(registries.detectors.get(record["name"]), checkpoint)
    if record.get("sha256") and detector.sha256 != record["sha256"]:
        raise CheckpointError(
            f"{path}: its generator reads detector '{record['name']}' with weights {str(record['sha256'])[:12]}, "
            f"not {str(detector.sha256)[:12]}; pass that detector's checkpoint"
        )
    return detector


# keys only a faapkit training checkpoint holds (the research scripts' hold epoch, generator,
# proj_head, opt_g and args; a bare generator file holds weights only)
TRAINING_MARKERS = ("format", "run_id", "global_step")


def load_generator(
    path: Path, epsilon: float | None, device: torch.device, generators: Any = None, detector: Any = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A generator from a faapkit or research checkpoint; epsilon from the checkpoint unless given.
    Checkpoints name their generator (``generator_spec``); research ones hold the U-Net.
    ``detector`` is handed to generators that read it (``GeneratorSpec.uses_detector``)."""
    ckpt = load_checkpoint(path)
    if any(key in ckpt for key in TRAINING_MARKERS):  # written by faap train: all of it must hold
        checkpoint_payload(ckpt, path)
    try:
        state, stored_eps = generator_state(ckpt)
    except CheckpointError:
        raise CheckpointError(f"{path} does not hold perturbation-generator weights") from None
    if "epsilon" in ckpt and (stored_eps is None or not 0 < stored_eps <= 1):  # NaN fails too
        raise CheckpointError(f"{path}: its 'epsilon' is {ckpt['epsilon']!r}, not a bound in (0, 1]")
    eps = epsilon if epsilon is not None else stored_eps
    if eps is None:
        raise CheckpointError(_without_epsilon(path, ckpt, state))
    spec_options = dict(ckpt.get("generator_spec") or {"name": "unet"})
    name = str(spec_options.pop("name", "unet"))
    if name == "unet":
        if "down1.net.0.weight" not in state:
            raise CheckpointError(f"{path} does not hold perturbation-generator weights")
        gen: torch.nn.Module = ResearchUNetGenerator(int(state["down1.net.0.weight"].shape[0]), epsilon=eps)
    else:
        if generators is None or name not in generators:
            raise CheckpointError(f"{path} holds a '{name}' generator, which no installed plugin provides")
        try:
            gen = generators.get(name).build(epsilon=eps, detector=detector, **spec_options)
        except ValidationError as exc:
            bad = "; ".join(".".join(map(str, e["loc"])) or e["msg"] for e in exc.errors())
            raise CheckpointError(
                f"{path}: its '{name}' generator has options the installed one rejects: {bad}"
            ) from None
    try:
        gen.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: generator weights do not fit: {str(exc).splitlines()[0]}") from None
    meta: dict[str, Any] = {k: ckpt[k] for k in ("version", "epoch", "global_step") if k in ckpt}
    meta["generator"] = name
    if "selection" in ckpt:  # best.pt: which epoch, chosen on which split, by which rule
        meta["selection"] = ckpt["selection"]
    return gen.to(device).eval(), {
        **meta,
        "epsilon": eps,
        "epsilon_source": "cli" if epsilon is not None else "checkpoint",
    }


def _without_epsilon(path: Path, ckpt: Any, state: dict[str, Any]) -> str:
    """Why a file without a stored epsilon cannot be evaluated, naming what it is."""
    if "generator" in ckpt:
        return f"{path} does not store epsilon (research checkpoint); pass --epsilon"
    if "down1.net.0.weight" in state:
        return f"{path} is a bare generator state dict ({len(state)} tensors, no epsilon stored); pass --epsilon"
    some = ", ".join(sorted(state)[:3]) + (", ..." if len(state) > 3 else "")
    return f"{path} does not hold perturbation-generator weights (a dict of {len(state)} tensors: {some})"


def _cache_key(req: EvalRequest) -> str:
    ident = {
        "format": CACHE_FORMAT,
        "detector": req.detector.name,
        "sha256": req.detector.sha256,
        "dataset": req.data.fingerprint,
        "split": req.data.split,
        "min": req.sizes[0],
        "max": req.sizes[1],
        "amp": req.bf16,
        "channels_last": req.eval_config.channels_last,
        **({"codec": str(req.codec)} if req.codec is not None else {}),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def run_detections(
    req: EvalRequest, generators: list[torch.nn.Module | None], dist_info: DistInfo
) -> list[list[dict[str, Any]]]:
    """Detections of every setting (``None`` = clean) from one data pass, gathered from all ranks."""
    ds = GroupedDetectionDataset(req.data, EvalTransform(*req.sizes))
    batches = eval_batches(
        req.data.records,
        req.eval_config.batch_size,
        *req.sizes,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
    )
    workers = loader_workers(req.num_workers, req.device.type)
    loader = make_eval_loader(ds, batches, workers, pin=req.device.type == "cuda")
    total = sum(len(b) for b in batches)  # this rank's images
    progress = req.progress
    on_batch = None if progress is None else (lambda n: progress("inference", n, total))
    local = detect_settings(
        req.detector,
        loader,
        generators,
        device=req.device,
        amp=req.eval_config.amp,
        channels_last=req.eval_config.channels_last,
        on_batch=on_batch,
        codec=req.codec,
    )
    merged = []
    for setting in range(len(generators)):
        dets = [d for part in gather_objects(local[setting], dist_info) for d in part]
        merged.append(sorted(dets, key=lambda d: (d["image_id"], -d["score"])))
    return merged


def _baseline_cache_path(req: EvalRequest) -> Path:
    return default_cache_dir() / "eval" / f"baseline-{_cache_key(req)}.json"


def cached_baseline(req: EvalRequest) -> list[dict[str, Any]] | None:
    path = _baseline_cache_path(req)
    if req.cache and path.is_file():
        try:
            return list(json.loads(path.read_text())["detections"])
        except (json.JSONDecodeError, KeyError):
            path.unlink(missing_ok=True)
    return None


def store_baseline(req: EvalRequest, dets: list[dict[str, Any]], dist_info: DistInfo) -> None:
    if req.cache and dist_info.is_main:
        atomic_write_text(_baseline_cache_path(req), json.dumps({"detections": dets}))


def evaluate(req: EvalRequest) -> dict[str, Any]:
    """Infer and score: the metrics JSON (``{}`` on ranks other than 0)."""
    return evaluate_with_detections(req)[0]


def evaluate_with_detections(req: EvalRequest) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Infer and score: the metrics JSON and each setting's detections under the dataset's own
    image ids (``image_ids`` in the JSON says which; ``({}, {})`` on ranks other than 0). The
    steps: :func:`check_groups`, :func:`infer`, :func:`score` (with its paired bootstrap),
    :func:`report`."""
    dist_info = init_from_env(req.device.type)
    started = time.perf_counter()
    ref, group_images = check_groups(req)
    coco_gt = make_coco(req.data.coco_gt)
    inferred = infer(req, dist_info)
    if not dist_info.is_main:
        return {}, {}
    scored = score(
        coco_gt,
        inferred.settings,
        group_images,
        ref,
        resamples=req.eval_config.bootstrap,
        seed=req.eval_config.seed,
        confidence=req.eval_config.confidence,
        iou_thrs=req.eval_config.iou_thresholds,
        progress=req.progress,
        backend=req.eval_config.coco_backend,
    )
    result = report(req, ref, group_images, inferred, dist_info.world_size)
    timing = scored.pop("timing_s")
    result.update(scored)
    result["timing_s"] = {
        "inference": round(inferred.seconds, 3),
        **timing,
        "total": round(time.perf_counter() - started, 3),
    }
    return result, {name: to_dataset_ids(dets, req.data) for name, dets in inferred.settings.items()}


def check_groups(req: EvalRequest) -> tuple[tuple[str, str] | None, dict[str, list[Any]]]:
    """The reference pair (or None) and each group's image ids; refuses a split that cannot be
    compared or bootstrapped faithfully."""
    data = req.data
    groups = data.groups
    for g in (req.disadvantaged, req.advantaged):
        if g is not None and g not in groups and len(groups) == 2 and req.disadvantaged in groups:
            raise DataError(f"group '{g}' has no images in split '{data.split}'")
    if len(groups) < 2:
        raise DataError(
            f"split '{data.split}' has a single group for '{data.split_by}' ({groups[0]}): nothing to compare"
        )
    ref = reference_groups(groups, req.disadvantaged, req.advantaged)
    group_images = data.group_images()
    if req.eval_config.bootstrap > 0:
        small = {g: len(ids) for g, ids in group_images.items() if len(ids) < MIN_BOOTSTRAP_IMAGES}
        if small:
            g, n = next(iter(small.items()))
            raise DataError(
                f"group '{g}' of '{data.split_by}' has {n} image(s) in split '{data.split}': a bootstrap CI needs at "
                f"least {MIN_BOOTSTRAP_IMAGES} per group (a single image gives a zero-width CI); use more images "
                "or --bootstrap 0"
            )
    return ref, group_images


@dataclass
class Inferred:
    """Each setting's detections (``baseline``, and ``perturbed`` with a checkpoint) and how they
    were obtained: ``generator`` is the checkpoint's metadata (``{}`` without one), ``inferred``
    the settings run through the detector (the baseline may come from the cache), ``seconds``
    the inference time."""

    settings: dict[str, list[dict[str, Any]]]
    generator: dict[str, Any]
    inferred: list[str]
    baseline_cached: bool
    seconds: float


def infer(req: EvalRequest, dist_info: DistInfo) -> Inferred:
    """Detections of the baseline (cached per detector, dataset and settings: P3) and of the
    checkpoint's perturbation, from one data pass shared by the settings that need inference."""
    gen_meta: dict[str, Any] = {}
    todo: dict[str, torch.nn.Module | None] = {}
    base_dets = cached_baseline(req)
    cached = base_dets is not None
    if base_dets is None:
        todo["baseline"] = None
    if req.exported is not None:  # the exported file stands in for the checkpoint's generator
        from faapkit.artifacts.exported import exported_generator

        todo["perturbed"], gen_meta = exported_generator(req.exported)
    elif req.checkpoint is not None:
        todo["perturbed"], gen_meta = load_generator(
            req.checkpoint, req.epsilon, req.device, req.generators, detector=req.detector
        )
    t0 = time.perf_counter()
    computed = dict(zip(todo, run_detections(req, list(todo.values()), dist_info), strict=True)) if todo else {}
    seconds = time.perf_counter() - t0
    if base_dets is None:
        base_dets = computed["baseline"]
        store_baseline(req, base_dets, dist_info)
    settings: dict[str, list[dict[str, Any]]] = {"baseline": base_dets}
    if "perturbed" in computed:
        settings["perturbed"] = computed["perturbed"]
    return Inferred(settings, gen_meta, list(todo), cached, seconds)


def report(
    req: EvalRequest,
    ref: tuple[str, str] | None,
    group_images: dict[str, list[Any]],
    inferred: Inferred,
    world_size: int,
) -> dict[str, Any]:
    """What was evaluated, on what, how: the metrics JSON without its scores and timing."""
    data, cfg = req.data, req.eval_config
    return {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "faapkit": __version__,
        "split": data.split,
        "split_by": data.split_by,
        "group_level": data.group_level,
        "groups": {g: {"images": len(ids), "boxes": data.group_boxes()[g]} for g, ids in group_images.items()},
        "reference": reference_entry(ref, data.groups),
        "checkpoint": str(req.checkpoint.absolute()) if req.checkpoint else None,
        **inferred.generator,
        "detector": {"name": req.detector.name, "checkpoint": req.detector.checkpoint, "sha256": req.detector.sha256},
        "dataset": {
            "root": str(data.root),
            "layout": data.layout,
            "fingerprint": data.fingerprint,
            "images": len(data.records),
            "skipped_corrupt": len(data.skipped_corrupt),
            "skipped_invalid": data.skipped,
        },
        "image_ids": image_id_record(data),
        "eval": {
            "batch_size": cfg.batch_size,
            "min_size": req.sizes[0],
            "max_size": req.sizes[1],
            "batching": "shape-bucketed (no padding)",
            "detections_per_image": req.detector.num_queries,
            "baseline_cached": inferred.baseline_cached,
            "settings_inferred": inferred.inferred,
            "amp": req.bf16,
            "channels_last": cfg.channels_last,
            "world_size": world_size,
            "iou_thresholds": "0.50:0.05:0.95" if cfg.iou_thresholds is None else list(cfg.iou_thresholds),
            "coco_backend": cfg.coco_backend,
            "codec": str(req.codec) if req.codec is not None else None,
        },
    }


def reference_entry(ref: tuple[str, str] | None, groups: list[str] | None = None) -> dict[str, Any]:
    """How the metrics JSON states its gap and ratio (and the groups of ``groups`` they leave out)."""
    if ref:
        entry: dict[str, Any] = {
            "disadvantaged": ref[0],
            "advantaged": ref[1],
            "gap": "advantaged - disadvantaged",
            "ratio": "disadvantaged / advantaged",
        }
        others = outside_pair(groups or [], ref)
        return {**entry, "other_groups": others} if others else entry
    return {"gap": "max - min over groups", "ratio": "min / max over groups"}


def load_eval_split(
    root: Path,
    split: str,
    split_by: str,
    layout: str,
    limit: int | None,
    on_corrupt: str,
    on_invalid: str = "fail",
    group_level: str = "auto",
    resize: tuple[int, int] | None = None,
) -> DatasetSplit:
    """The split an evaluation scores, of at least two groups; ``resize``: the ``(min_size,
    max_size)`` its images are resized to (an image it would shrink under 1 px is invalid)."""
    data = load_split(
        root,
        split,
        split_by=split_by,
        layout=layout,
        limit=limit,
        on_corrupt=on_corrupt,
        on_invalid=on_invalid,
        group_level=group_level,
        resize=() if resize is None else (resize,),
    )
    if len(data.groups) < 2:
        raise ConfigError(f"split '{split}' has only group {data.groups} for '{split_by}'")
    return data
