"""``faap eval --rescore METRICS_JSON``: score an evaluation's saved detections again (another
bootstrap size, seed, confidence level, set of IoU thresholds, pair of groups for the gap or COCO
backend) without running the detector.

Refused, before any scoring, when a detections file is missing or its sha256 differs from the one
the metrics file recorded, or scored at the recorded settings does not give the recorded point
estimates (edited and re-hashed), when the dataset's fingerprint differs from the recorded one, and when
a setting that decides the detections themselves (split, batch size, amp, channels_last) is
changed. The result is a new metrics file (never one that exists, without ``--force``) that
records what it was rescored from.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faapkit.artifacts.integrity import numbers_sha256
from faapkit.artifacts.records import METRICS_FORMAT, metrics_file, write_metrics_file
from faapkit.errors import ConfigError, FaapError
from faapkit.evaluate.coco_backend import PYCOCOTOOLS
from faapkit.evaluate.command.checkpoint_choice import CHANGED_BEST
from faapkit.evaluate.command.host import Host
from faapkit.evaluate.command.settings import CommandLayers
from faapkit.evaluate.requests import EvalCommand, Progress


def refuse_inference_options(cmd: EvalCommand) -> None:
    """Every option that needs a new inference, refused: a rescore reads the saved detections."""
    given = {
        "TARGET": cmd.target, "--epoch": cmd.epoch, "--epsilon": cmd.epsilon, "--split-by": cmd.split_by,
        "--detector": cmd.detector, "--detector-checkpoint": cmd.detector_checkpoint,
        "--limit-images": cmd.limit_images, "--workers": cmd.workers, CHANGED_BEST: cmd.accept_changed_best or None,
        "--on-invalid": cmd.on_invalid, "--on-corrupt": cmd.on_corrupt, "--no-cache": cmd.no_cache or None,
        "--accept-other-detector": cmd.accept_other_detector or None,
        "--nproc": cmd.nproc if cmd.nproc > 1 else None, "--codec": cmd.codec, "--exported": cmd.exported,
    }  # fmt: skip
    for name, value in given.items():
        if value is not None:
            raise ConfigError(f"--rescore scores the saved detections again; {name} needs a new inference")


def read_metrics(path: Path) -> dict[str, Any]:
    """The metrics file to rescore, refused in one line unless it is one with saved detections."""
    if path.is_dir():
        raise FaapError(f"--rescore {path} is a folder; name the metrics JSON of the evaluation to rescore")
    if not path.is_file():
        raise FaapError(f"not found: {path}")
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FaapError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(metrics, dict) or metrics.get("schema") != METRICS_FORMAT:
        raise FaapError(f"{path}: not a faap eval metrics file (no {METRICS_FORMAT} schema)")
    metrics_file(metrics, path)
    if not metrics.get("detections"):
        raise FaapError(
            f"{path}: no saved detections (evaluated by an older faapkit, with eval.save_detections = false, "
            "or without a metrics file); re-run faap eval"
        )
    _check_keys(path, metrics)
    return metrics


def _check_keys(path: Path, metrics: dict[str, Any]) -> None:
    """What a rescore reads from the file, present and of the right kind (a hand-edited file is
    refused naming the key, not scored or failed on later)."""
    dets, ds = metrics.get("detections"), metrics.get("dataset")
    checks = {
        "detections": isinstance(dets, dict)
        and "baseline" in dets
        and set(dets) <= {"baseline", "perturbed"}
        and all(isinstance(ref, dict) for ref in dets.values()),
        "split": isinstance(metrics.get("split"), str),
        "split_by": isinstance(metrics.get("split_by"), str),
        "groups": isinstance(metrics.get("groups"), dict) and bool(metrics["groups"]),
        "dataset.root": isinstance(ds, dict) and isinstance(ds.get("root"), str),
        "dataset.fingerprint": isinstance(ds, dict) and isinstance(ds.get("fingerprint"), str),
        "eval_config": isinstance(metrics.get("eval_config", {}), dict),
        "reference": isinstance(metrics.get("reference", {}), dict),
        "image_ids": isinstance(metrics.get("image_ids", {}), dict),
    }
    wrong = [key for key, ok in checks.items() if not ok]
    if wrong:
        raise FaapError(f"{path}: '{wrong[0]}' is missing or not what faap eval writes (was the file edited?)")


def output_for(path: Path, metrics: dict[str, Any], cfg: Any, ref: tuple[str, str] | None = None) -> Path:
    """``<stem>_rescored`` plus a tag for each setting that differs from the rescored file's
    (``ref-<disadvantaged>-<advantaged>`` for another pair of groups)."""
    before = metrics.get("eval_config", {})
    tags = []
    if ref is not None and ref != _recorded_pair(metrics):
        tags.append(f"ref-{ref[0]}-{ref[1]}")
    for key, short in (("bootstrap", "boot"), ("seed", "seed"), ("confidence", "conf")):
        if getattr(cfg, key) != before.get(key):
            tags.append(f"{short}{getattr(cfg, key):g}")
    if cfg.iou_thresholds != before.get("iou_thresholds"):
        tags.append("iou" + ("-".join(f"{t:g}" for t in cfg.iou_thresholds) if cfg.iou_thresholds else "coco"))
    if cfg.coco_backend != before.get("coco_backend", PYCOCOTOOLS):  # files before the setting: pycocotools
        tags.append(cfg.coco_backend)
    return path.with_name("_".join([path.stem, "rescored", *tags]) + ".json")


def rescore_metrics(cmd: EvalCommand, layers: CommandLayers, host: Host) -> dict[str, Any]:
    """Verify, score and write ``cmd.rescore``'s detections again; returns the new metrics.
    ``cmd.pair`` (``None`` = the recorded one) picks the gap's groups: every image is perturbed
    alike, so another pair needs no inference. ``layers.sizes`` (``data.min_size`` /
    ``data.max_size``) are refused unless they are the recorded input size."""
    from faapkit.evaluate.command.outputs import check_out

    assert cmd.rescore is not None
    path, out, force = cmd.rescore.absolute(), cmd.out, cmd.force
    metrics = read_metrics(path)
    cfg, sources = _settings(path, metrics, layers.eval)
    _same_input_size(path, metrics, layers.sizes)
    ref = _pair(cmd.pair, metrics.get("reference") or {})
    target = out.absolute() if out is not None else output_for(path, metrics, cfg, ref)
    if target == path:
        raise FaapError(f"--rescore would write over the file it rescores ({path}); pass another --out")
    # what was scored is checked before where it goes: a changed dataset is the cause to name
    split = _same_split(path, metrics, cmd.data)
    dets = _saved_detections(path, metrics, split)
    _reproduces(path, metrics, split, dets)
    if out is not None:
        check_out(target, force=force)
    from faapkit.artifacts.output_lock import OutputLock

    with OutputLock(target, note=host.warn) as lock:  # of two rescores into one file, one writes
        if target.exists() and not force:
            raise FaapError(f"{target} already holds a rescore with these settings; pass --force to replace it")
        result = _score(path, metrics, (split, dets, target), cfg, sources, ref, host.progress(cmd.progress))
        lock.check_unchanged(force)  # written meanwhile by a process that ignored the lock
        write_metrics_file(target, result)
    host.info(f"rescored metrics written to {target}")
    return result


def _score(
    path: Path,
    metrics: dict[str, Any],
    inputs: tuple[Any, dict[str, list[dict[str, Any]]], Path],
    cfg: Any,
    sources: dict[str, str],
    ref: tuple[str, str] | None,
    shown: AbstractContextManager[Progress],
) -> dict[str, Any]:
    """Score the verified split's saved detections and build the rescored metrics (``inputs``:
    the split, its detections per setting and the file they go to; ``shown``: the progress)."""
    from faapkit.evaluate.cocoeval import make_coco
    from faapkit.evaluate.evaluator import MIN_BOOTSTRAP_IMAGES
    from faapkit.evaluate.scoring import score

    split, dets, target = inputs
    group_images = split.group_images()
    if cfg.bootstrap and min(len(ids) for ids in group_images.values()) < MIN_BOOTSTRAP_IMAGES:
        raise FaapError(f"a group of {path.name} has fewer than {MIN_BOOTSTRAP_IMAGES} images: use --bootstrap 0")
    for role, group in zip(("--disadvantaged", "--advantaged"), ref or (), strict=False):
        if group not in split.groups:
            raise ConfigError(
                f"{role} '{group}' is not a group of '{split.split_by}' in split '{split.split}' "
                f"(groups: {', '.join(split.groups)})"
            )
    started = time.perf_counter()
    with shown as reporter:
        scored = score(
            make_coco(split.coco_gt),
            dets,
            group_images,
            ref,
            resamples=cfg.bootstrap,
            seed=cfg.seed,
            confidence=cfg.confidence,
            iou_thrs=cfg.iou_thresholds,
            progress=reporter,
            backend=cfg.coco_backend,
        )
    result = _rescored(metrics, scored, cfg, sources, path, target, ref)
    result["timing_s"]["total"] = round(time.perf_counter() - started, 3)
    result["numbers_sha256"] = numbers_sha256(result)
    return result


def _settings(path: Path, metrics: dict[str, Any], layers: list[tuple[str, Any]]) -> tuple[Any, dict[str, str]]:
    """The recorded settings under the command's layers; one that changes the detections is refused."""
    from faapkit.evaluate.command.settings import INFERENCE_KEYS, resolve

    recorded = metrics.get("eval_config") or {}
    cfg, sources = resolve([(f"the settings recorded in {path.name}", recorded), *layers])
    for key in INFERENCE_KEYS:
        if getattr(cfg, key) != recorded.get(key):
            raise ConfigError(
                f"eval.{key} = {getattr(cfg, key)!r} ({sources[key]}) changes the detections; --rescore keeps the "
                f"saved ones ({key} = {recorded.get(key)!r}): run faap eval without --rescore"
            )
    return cfg, sources


def _saved_detections(path: Path, metrics: dict[str, Any], split: Any) -> dict[str, list[dict[str, Any]]]:
    """Each setting's saved detections, verified, under faapkit's image ids again: the files
    carry the dataset's own (``image_ids``), the scoring the ids it was done with, so a rescore
    with the same settings gives the same numbers bit for bit."""
    from faapkit.evaluate import detections as saved

    ids = metrics.get("image_ids") or {}
    return {
        s: saved.from_dataset_ids(saved.load_verified(path, s, ref), split, ids, str(path.parent / str(ref["file"])))
        for s, ref in metrics["detections"].items()
    }


def _reproduces(path: Path, metrics: dict[str, Any], split: Any, dets: dict[str, list[dict[str, Any]]]) -> None:
    """The saved detections, scored at the settings ``path`` records (its IoU thresholds and COCO
    backend), give its point estimates (each group's AP and AR, each setting): a detections file
    edited and re-hashed since it was evaluated is refused naming it, never scored as that
    evaluation."""
    from faapkit.evaluate.cocoeval import evaluate_split, make_coco

    recorded = metrics.get("eval_config") or {}
    iou, backend = recorded.get("iou_thresholds"), recorded.get("coco_backend", PYCOCOTOOLS)
    coco, group_images = make_coco(split.coco_gt), split.group_images()
    for setting, ref in metrics["detections"].items():
        again, _ = evaluate_split(coco, dets[setting], group_images, iou, backend)
        for group, stats in (metrics["metrics"].get(setting) or {}).items():
            for stat in ("AP", "AR"):
                want, got = (stats or {}).get(stat), (again.get(group) or {}).get(stat)
                if isinstance(want, int | float) and not (isinstance(got, int | float) and abs(got - want) <= 1e-9):
                    raise FaapError(
                        f"{path.parent / str(ref['file'])}: scored at the settings {path.name} records, its {setting} "
                        f"detections give {group} {stat} {got}, not the recorded {want}: changed since they were "
                        "evaluated (edited and re-hashed?); re-run faap eval"
                    )


def _same_input_size(path: Path, metrics: dict[str, Any], sizes: list[tuple[str, Any]]) -> None:
    """The input size decides the detections: a layer that sets another than the recorded one
    (``eval.min_size`` / ``eval.max_size`` of the rescored file) is refused."""
    recorded = metrics.get("eval") or {}
    for origin, layer in sizes:
        for key, value in layer.items():
            if value != recorded.get(key):
                raise ConfigError(
                    f"data.{key} = {value!r} ({origin}) changes the detections; --rescore keeps the saved ones "
                    f"({key} = {recorded.get(key)!r}): run faap eval without --rescore"
                )


def _rescored(
    metrics: dict[str, Any],
    scored: dict[str, Any],
    cfg: Any,
    sources: dict[str, str],
    path: Path,
    target: Path,
    ref: tuple[str, str] | None,
) -> dict[str, Any]:
    """The rescored metrics: what is carried over, the new scores and settings (``ref``: the
    gap's pair, recorded when it is not the file's), what was rescored, and the detections
    referenced from ``target``'s folder (timing without its total)."""
    result = _carry_over(metrics)
    timing = scored.pop("timing_s")
    result.update(scored)
    if ref != _recorded_pair(metrics):
        from faapkit.evaluate.evaluator import reference_entry

        result["reference"] = reference_entry(ref, list(metrics.get("groups") or {}))
    result["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    iou = cfg.iou_thresholds or "0.50:0.05:0.95"
    result["eval"] = {**metrics.get("eval", {}), "iou_thresholds": iou, "coco_backend": cfg.coco_backend}
    result["eval_config"] = cfg.model_dump(mode="json")
    result["eval_config_sources"] = sources
    result["rescored_from"] = {"metrics": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    result["detections"] = {
        s: {**ref, "file": os.path.relpath(path.parent / ref["file"], target.parent)}
        for s, ref in metrics["detections"].items()
    }
    result["timing_s"] = {"inference": 0.0, **timing}
    return result


def _pair(given: tuple[str | None, str | None], reference: dict[str, Any]) -> tuple[str, str] | None:
    """The gap's (disadvantaged, advantaged) groups: the given ones, else the recorded ones."""
    dis = given[0] if given[0] is not None else reference.get("disadvantaged")
    adv = given[1] if given[1] is not None else reference.get("advantaged")
    if dis is None and adv is None:
        return None  # max - min over the groups, as recorded
    if dis is None or adv is None:
        raise ConfigError("--rescore with another gap needs both --disadvantaged and --advantaged (the file has none)")
    if dis == adv:
        raise ConfigError(f"--disadvantaged and --advantaged are both '{adv}': the gap needs two groups")
    return str(dis), str(adv)


def _recorded_pair(metrics: dict[str, Any]) -> tuple[str, str] | None:
    """The gap's groups the rescored file recorded (``None``: max - min over the groups)."""
    return _pair((None, None), metrics.get("reference") or {})


def _eval_sizes(metrics: dict[str, Any]) -> tuple[int, int] | None:
    """The ``(min_size, max_size)`` the detections were made at, where the file records them."""
    ev = metrics.get("eval") or {}
    try:
        return int(ev["min_size"]), int(ev["max_size"])
    except (KeyError, TypeError, ValueError):
        return None


def _same_split(path: Path, metrics: dict[str, Any], data: Path | None) -> Any:
    """The evaluated split read as it was (``--data`` may move its root); refused unless its
    fingerprint is the one the detections were made on."""
    from faapkit.evaluate.evaluator import load_eval_split

    ds = metrics.get("dataset") or {}
    root = data.absolute() if data is not None else Path(str(ds.get("root")))
    split = load_eval_split(
        root,
        str(metrics["split"]),
        str(metrics["split_by"]),
        str(ds.get("layout", "auto")),
        ds.get("limit_images"),
        str(ds.get("on_corrupt", "fail")),
        str(ds.get("on_invalid", "fail")),
        str(metrics.get("group_level", "image")),
        resize=_eval_sizes(metrics),
    )
    if split.fingerprint != ds.get("fingerprint"):
        raise FaapError(
            f"dataset {root} (split '{split.split}') has fingerprint {split.fingerprint}, not the "
            f"{ds.get('fingerprint')} that {path.name} was evaluated on: its detections do not belong to these images"
        )
    return split


# what a rescore recomputes; everything else (checkpoint, detector, dataset, selection) is carried over
SCORED = ("metrics", "overall", "gaps", "ratios", "deltas", "overall_deltas", "bootstrap", "timing_s")


def _carry_over(metrics: dict[str, Any]) -> dict[str, Any]:
    from faapkit import __version__

    kept = {k: v for k, v in metrics.items() if k not in SCORED}
    kept["faapkit"] = __version__
    return kept
