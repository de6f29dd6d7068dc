"""Overall metrics, ratios, CIs of every reported stat, IoU thresholds, saved detections and the
evaluator's progress: checked against pycocotools and against the plain (pinned) bootstrap."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pytest
import torch

from faapkit.config import EvalConfig
from faapkit.data.coco import load_split
from faapkit.errors import FaapError
from faapkit.evaluate import detections as saved
from faapkit.evaluate.cocoeval import PerImageRecords, load_results, make_coco, per_image_eval, run_cocoeval
from faapkit.evaluate.evaluator import evaluate_with_detections
from faapkit.evaluate.requests import EvalRequest
from faapkit.evaluate.scoring import bootstrap, reported_stats, score
from tests.eval.test_bootstrap import _synthetic


def _restrict(new, old):
    """``new`` cut down to the keys ``old`` has, recursively."""
    if isinstance(old, dict):
        return {k: _restrict(new[k], v) for k, v in old.items()}
    return new


@pytest.mark.parametrize("ref", [None, ("b", "a")])
def test_full_bootstrap_keeps_the_plain_cis_bit_for_bit(ref):
    gt, dets, groups = _synthetic()
    coco_gt = make_coco(gt)
    settings = {"baseline": dets, "perturbed": [{**d, "score": round(d["score"] * 0.9, 2)} for d in dets]}
    plain = bootstrap(coco_gt, settings, groups, ref, 150, 4, 0.9)
    full = bootstrap(coco_gt, settings, groups, ref, 150, 4, 0.9, full=True)
    assert _restrict(full, plain) == plain  # the pinned entries are unchanged (tests/eval/test_bootstrap.py)
    assert full["stats"] == ["AP", "AR", "AP50", "AP75"]
    for m in full["stats"]:
        for name in settings:
            lo, hi = full["overall"][name][m]
            assert lo <= hi and full["groups"][name]["a"][m][0] <= full["groups"][name]["a"][m][1]
        if m in ("AP", "AR"):  # AP75 of the sparse synthetic set is 0 in some resample: no ratio CI (None)
            assert full["ratios"][m] is not None
        if full["ratios"][m] is not None:
            lo, hi = full["ratios"][m]["change"]
            assert lo <= hi and full["ratios"][m]["significant"] == (lo > 0 or hi < 0)
    assert set(full["overall_deltas"]) == set(full["stats"])


def test_score_overall_is_one_cocoeval_and_ratio_is_disadvantaged_over_advantaged():
    gt, dets, groups = _synthetic(2)
    coco_gt = make_coco(gt)
    out = score(coco_gt, {"baseline": dets}, groups, ("b", "a"), resamples=0, seed=0, confidence=0.95)
    every = sorted(i for ids in groups.values() for i in ids)
    stats = run_cocoeval(coco_gt, load_results(coco_gt, dets), every).stats
    assert out["overall"]["baseline"]["AP"] == stats[0] and out["overall"]["baseline"]["AR"] == stats[8]
    per = out["metrics"]["baseline"]
    assert out["ratios"]["AP"]["baseline"] == per["b"]["AP"] / per["a"]["AP"]
    assert out["gaps"]["AP"]["baseline"] == per["a"]["AP"] - per["b"]["AP"]
    assert "bootstrap" not in out
    three = score(coco_gt, {"baseline": dets}, groups, None, resamples=0, seed=0, confidence=0.95)
    values = [v["AR"] for v in three["metrics"]["baseline"].values()]
    assert three["ratios"]["AR"]["baseline"] == min(values) / max(values)


def test_resampled_ap50_ap75_with_every_image_once_equal_pycocotools():
    gt, dets, groups = _synthetic(3)
    coco_gt = make_coco(gt)
    ids = groups["a"]
    rec = PerImageRecords(per_image_eval(coco_gt, dets, sorted(i for g in groups.values() for i in g)))
    pos = rec.position()
    p = np.array([pos[i] for i in ids])
    got = rec.resample_stats(p, np.arange(len(p))[None])
    stats = run_cocoeval(coco_gt, load_results(coco_gt, dets), ids).stats
    # the same values; with two categories the mean may sum them in another order (last bit)
    for key, k in (("AP", 0), ("AP50", 1), ("AP75", 2), ("AR", 8)):
        assert got[key][0] == pytest.approx(stats[k], abs=1e-12), key


def test_iou_thresholds_change_what_ap_averages():
    gt, dets, groups = _synthetic(4)
    coco_gt = make_coco(gt)
    default = score(coco_gt, {"baseline": dets}, groups, ("b", "a"), resamples=0, seed=0, confidence=0.95)
    at50 = score(coco_gt, {"baseline": dets}, groups, ("b", "a"), resamples=20, seed=0, confidence=0.95, iou_thrs=[0.5])
    for g, m in at50["metrics"]["baseline"].items():
        assert m["AP"] == m["AP50"] == default["metrics"]["baseline"][g]["AP50"]
        assert m["AP75"] is None  # 0.75 is not evaluated: no value, never 0
    assert reported_stats([0.5]) == ["AP", "AR", "AP50"] and "AP75" not in at50["gaps"]
    assert at50["bootstrap"]["stats"] == ["AP", "AR", "AP50"]


# ----------------------------------------------------------------------------- saved detections


@pytest.fixture(scope="module")
def real(synth_root, tiny_detector):
    """The shipped detector's clean detections of 8 test images, with the evaluator's progress calls."""
    data = load_split(synth_root, "test", limit=8)
    calls: list[tuple[str, int, int]] = []
    req = EvalRequest(
        data=data,
        detector=tiny_detector,
        device=torch.device("cpu"),
        num_workers=0,
        eval_config=EvalConfig(bootstrap=20),
        cache=False,
        progress=lambda *a: calls.append(a),
    )
    result, dets = evaluate_with_detections(req)
    return data, result, dets["baseline"], calls


def test_progress_counts_every_image_and_resample(real):
    data, result, _, calls = real
    inference = [c for c in calls if c[0] == "inference"]
    assert sum(c[1] for c in inference) == len(data.records) == inference[0][2]
    boot = [c for c in calls if c[0] == "bootstrap"]
    assert sum(c[1] for c in boot) == boot[0][2] == 20 * (len(data.groups) + 1)  # groups and overall, 1 setting
    assert "overall" in result and "ratios" in result and result["bootstrap"]["overall"]["baseline"]["AP"]


def test_detections_round_trip_exactly_and_deterministically(real, tmp_path):
    _, _, dets, _ = real
    data = saved.encode("baseline", dets)
    assert data == saved.encode("baseline", dets)  # no time in the gzip header: same bytes, same sha256
    doc = json.loads(gzip.decompress(data))
    assert doc["values"] == "float32" and len(doc["detections"]) == len(dets)
    assert saved.decode(data, "x") == dets  # every float restored bit for bit
    doubles = [{**d, "score": d["score"] + 1e-12} for d in dets[:5]]  # not float32: written in full
    assert saved.decode(saved.encode("baseline", doubles), "x") == doubles
    metrics = tmp_path / "m.json"
    ref = saved.save(saved.detections_path(metrics, "baseline"), "baseline", dets)
    assert ref["sha256"] == hashlib.sha256(data).hexdigest() and ref["file"] == "m.baseline.dets.json.gz"
    assert saved.load_verified(metrics, "baseline", ref) == dets
    with pytest.raises(FaapError, match="sha256 differs"):
        saved.load_verified(metrics, "baseline", {**ref, "sha256": "0" * 64})
    (tmp_path / ref["file"]).unlink()
    with pytest.raises(FaapError, match="is missing"):
        saved.load_verified(metrics, "baseline", ref)
