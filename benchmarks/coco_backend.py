"""The ``coco-backend`` section: ``eval.coco_backend`` pycocotools against faster-coco-eval on the
same detections, in one run.

The detections are those of the ``bootstrap`` section (embedded test split, 500 images, the
shipped tiny detector's baseline and a random 32-channel generator's at epsilon 0.1), the split
repeated ``copies`` times under new image and box ids (``copies`` = 8: 4,000 images, about 64,000
detections per setting), grouped by gender. Two things are timed per backend, interleaved,
``repeat`` times each:

* ``evaluate_split`` of both settings: the 12 COCO stats per group and overall, the part the
  backend computes;
* ``score`` whole, as ``faap eval`` and ``--rescore`` run it: the stats, gaps and ratios, and the
  paired bootstrap (``resamples``) whose per-image records come from pycocotools with either
  backend.

Each row gives seconds (min / median / max), the speed-up over pycocotools (median / median) and
the largest difference of any number from pycocotools' result (stats; CIs for ``score``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.spread import Spread


def repeated(
    coco_gt: Any, settings: dict[str, list[dict[str, Any]]], groups: dict[str, list[int]], copies: int
) -> tuple[Any, dict[str, list[dict[str, Any]]], dict[str, list[int]]]:
    """The split ``copies`` times: copy ``k`` of image ``i`` is image ``i + k * step`` (its boxes
    and detections with it), in the groups of image ``i``."""
    from faapkit.evaluate.cocoeval import make_coco

    gt = coco_gt.dataset
    step = max(img["id"] for img in gt["images"]) + 1
    box_step = max(a["id"] for a in gt["annotations"]) + 1
    out = {k: v for k, v in gt.items() if k not in ("images", "annotations")}
    out["images"] = [{**img, "id": img["id"] + k * step} for k in range(copies) for img in gt["images"]]
    out["annotations"] = [
        {**a, "id": a["id"] + k * box_step, "image_id": a["image_id"] + k * step}
        for k in range(copies)
        for a in gt["annotations"]
    ]
    dets = {
        name: [{**d, "image_id": d["image_id"] + k * step} for k in range(copies) for d in ds]
        for name, ds in settings.items()
    }
    return make_coco(out), dets, {g: [i + k * step for k in range(copies) for i in ids] for g, ids in groups.items()}


def leaves(x: Any) -> list[float]:
    """Every number of a nested result, in a fixed order (``None`` as NaN)."""
    if isinstance(x, dict):
        return [v for k in sorted(x) for v in leaves(x[k])]
    if isinstance(x, list | tuple):
        return [v for item in x for v in leaves(item)]
    if x is None:
        return [float("nan")]
    return [float(x)] if isinstance(x, int | float) and not isinstance(x, bool) else []


def max_diff(a: Any, b: Any) -> float:
    """The largest ``|a - b|`` over every number (NaN where one is missing and the other not)."""
    x, y = np.array(leaves(a)), np.array(leaves(b))
    if x.shape != y.shape or not np.array_equal(np.isnan(x), np.isnan(y)):
        return float("nan")
    both = ~np.isnan(x)
    return float(np.max(np.abs(x[both] - y[both]), initial=0.0))


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def section_coco_backend(
    device: Any, copies: int = 8, repeat: int = 3, resamples: int = 1000
) -> list[dict[str, object]]:
    """Rows per (what, backend): seconds, speed-up over pycocotools and the largest difference."""
    from benchmarks.run import bootstrap_inputs
    from faapkit.evaluate.coco_backend import BACKENDS, PYCOCOTOOLS, check_backend
    from faapkit.evaluate.cocoeval import evaluate_split
    from faapkit.evaluate.scoring import score

    for backend in BACKENDS:
        check_backend(backend, "the coco-backend section")
    coco_gt, settings, groups, ref = bootstrap_inputs(device)
    coco_gt, settings, groups = repeated(coco_gt, settings, groups, copies)
    n_img = sum(len(ids) for ids in groups.values())
    n_det = sum(len(d) for d in settings.values())

    def stats(backend: str) -> Any:
        return {name: evaluate_split(coco_gt, d, groups, None, backend) for name, d in settings.items()}

    def scored(backend: str) -> Any:
        out = score(coco_gt, settings, groups, ref, resamples=resamples, seed=0, confidence=0.95, backend=backend)
        out.pop("timing_s")
        return out

    jobs = {"evaluate_split (12 stats, per group + overall)": stats, f"score (+ bootstrap, {resamples})": scored}
    rows: list[dict[str, object]] = []
    for what, fn in jobs.items():
        times: dict[str, list[float]] = {b: [] for b in BACKENDS}
        results: dict[str, Any] = {}
        for _ in range(repeat):
            for backend in BACKENDS:  # interleaved: both see the same load
                seconds, results[backend] = _timed(lambda b=backend: fn(b))  # type: ignore[misc]
                times[backend].append(seconds)
        base = float(np.median(times[PYCOCOTOOLS]))
        for backend in BACKENDS:
            rows.append(
                {
                    "what": f"{what}, {n_img} images, {n_det} detections",
                    "backend": backend,
                    "seconds": str(Spread.of(times[backend])),
                    "speed-up (median)": base / float(np.median(times[backend])),
                    "max |diff| vs pycocotools": max_diff(results[PYCOCOTOOLS], results[backend]),
                }
            )
    return rows
