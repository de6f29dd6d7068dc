"""Number-for-number parity with upstream facebookresearch/detr on deterministic weights."""

from __future__ import annotations

import json
import math

import pytest
import torch

from faapkit.detr.build import load_state_strict
from faapkit.detr.misc import NestedTensor
from tests.conftest import fixture_path

# fixture name -> registered detector whose architecture must reproduce it
CONFIGS = {"detr_r18_d64": "detr-r18-d64", "detr_r50": "detr-r50"}


def deterministic_state(keys_shapes):
    state = {}
    for i, (key, shape) in enumerate(keys_shapes):
        g = torch.Generator().manual_seed(1000 + i)
        if key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) * 0.5 + 0.75
            continue
        n = torch.randn(shape, generator=g)
        if key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * n
        elif len(shape) == 1:
            state[key] = 1 + 0.1 * n
        else:
            state[key] = n / math.sqrt(math.prod(shape[1:]))
    return state


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_matches_upstream(config, registries):
    meta = json.loads(fixture_path("detr_parity", f"{config}_keys.json").read_text())
    parts = registries.detectors.get(CONFIGS[config]).build()
    model, criterion, post = parts.model, parts.criterion, parts.postprocess
    assert list(model.state_dict()) == [k for k, _ in meta["keys_shapes"]] or set(model.state_dict()) == {
        k for k, _ in meta["keys_shapes"]
    }
    assert sum(p.numel() for p in model.parameters()) == meta["num_params"]
    load_state_strict(model, deterministic_state(meta["keys_shapes"]), what=config)
    model.eval()
    exp = torch.load(fixture_path("detr_parity", f"{config}_expected.pt"), weights_only=True)
    with torch.no_grad():
        out = model(NestedTensor(exp["input"], exp["mask"]))
    tol = dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["pred_logits"], exp["pred_logits"], **tol)
    torch.testing.assert_close(out["pred_boxes"], exp["pred_boxes"], **tol)
    torch.testing.assert_close(out["features"], exp["features"], **tol)
    torch.testing.assert_close(
        torch.stack([a["pred_logits"] for a in out["aux_outputs"]]), exp["aux_pred_logits"], **tol
    )
    torch.testing.assert_close(torch.stack([a["pred_boxes"] for a in out["aux_outputs"]]), exp["aux_pred_boxes"], **tol)
    losses, _ = criterion(out, exp["targets"])
    assert set(losses) == set(exp["losses"])
    for k, v in exp["losses"].items():
        torch.testing.assert_close(losses[k], v, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(criterion.total(losses), exp["loss_total"], rtol=1e-4, atol=1e-4)
    results = post(out, torch.tensor([[96, 128], [80, 112]]))
    for i, r in enumerate(results):
        torch.testing.assert_close(r["scores"], exp["post_scores"][i], **tol)
        assert torch.equal(r["labels"], exp["post_labels"][i])
        torch.testing.assert_close(r["boxes"], exp["post_boxes"][i], rtol=1e-4, atol=1e-3)


def test_r50_parameter_count(registries):
    from faapkit.detr.build import describe_detector

    info = describe_detector(registries.detectors.get("detr-r50"))
    assert 41.3e6 <= info["num_params"] <= 41.6e6
    assert any(k == "query_embed.weight" for k, _ in info["keys"])
    assert info["trained_unpadded"] is False  # upstream DETR trains on padded batches
    assert describe_detector(registries.detectors.get("detr-synth-tiny-v2"))["trained_unpadded"] is True
