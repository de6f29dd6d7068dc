"""The headroom oracle on the real tiny detector: bounded, valid-region only, lowers the set loss."""

from __future__ import annotations

import pytest
import torch

from faapkit.config import EvalConfig
from faapkit.data.batching import eval_batches
from faapkit.data.coco import GroupedDetectionDataset, load_split
from faapkit.data.transforms import EvalTransform
from faapkit.errors import ConfigError
from faapkit.evaluate.headroom import oracle_delta, probe_headroom
from faapkit.evaluate.inference import make_eval_loader
from faapkit.evaluate.requests import HeadroomRequest
from faapkit.generators.perturb import clamp_normalized


def _batch(synth_root, n=4):
    data = load_split(synth_root, "val", limit=n)
    ds = GroupedDetectionDataset(data, EvalTransform(128, 213))
    return next(iter(make_eval_loader(ds, eval_batches(data.records, n, 128, 213))))


def test_oracle_delta_is_bounded_and_lowers_the_set_loss(tiny_detector, synth_root):
    batch = _batch(synth_root)
    batch.mask[:, :, -5:] = True  # a padded strip must stay untouched
    delta = oracle_delta(tiny_detector, batch.images, batch.mask, batch.targets, epsilon=0.02, steps=4, step_size=0.005)
    assert delta.abs().max() <= 0.02 + 1e-7 and delta.abs().max() > 0.0
    assert torch.all(delta[..., -5:] == 0)
    valid = (~batch.mask).unsqueeze(1).float()
    with torch.no_grad():
        clean, _, _ = tiny_detector.detection_loss(tiny_detector(batch.images * valid, batch.mask), batch.targets)
        moved_images = clamp_normalized(batch.images + delta) * valid
        moved, _, _ = tiny_detector.detection_loss(tiny_detector(moved_images, batch.mask), batch.targets)
    assert moved < clean


def test_probe_reports_per_group_lift_with_cis_and_the_gap_bound(tiny_detector, synth_root):
    data = load_split(synth_root, "val", limit=8)
    req = HeadroomRequest(
        data=data,
        detector=tiny_detector,
        device=torch.device("cpu"),
        steps=2,
        step_size=0.02,
        epsilon=0.04,
        eval_config=EvalConfig(bootstrap=50),
        disadvantaged="female",
        advantaged="male",
    )
    result = probe_headroom(req)
    assert result["schema"] == "faapkit.headroom/1" and "not a method" in result["what"]
    for g in ("female", "male"):
        lift = result["lift"][g]["AP"]
        assert lift == pytest.approx(result["metrics"]["oracle"][g]["AP"] - result["metrics"]["baseline"][g]["AP"])
        lo, hi = result["lift_ci"][g]["AP"]
        assert lo <= hi
    gap = result["gap_AP"]
    assert gap["change"] == pytest.approx(gap["oracle_on_disadvantaged"] - gap["baseline"])
    assert len(gap["change_ci"]) == 2


def test_probe_refuses_settings_that_cannot_run(tiny_detector, synth_root):
    data = load_split(synth_root, "val", limit=4)
    for bad in ({"steps": 0}, {"step_size": 0.5, "epsilon": 0.1}, {"epsilon": 0.0}):
        with pytest.raises(ConfigError):
            probe_headroom(HeadroomRequest(data=data, detector=tiny_detector, device=torch.device("cpu"), **bad))
