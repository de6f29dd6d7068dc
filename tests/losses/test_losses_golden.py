"""Version losses (``plugins/faap_plugins/v*/loss.py``) and the shared pieces they use (``faapkit/losses/common.py``)
pinned to values and gradients computed by the research code itself."""

from __future__ import annotations

import functools

import pytest
import torch

from faap_plugins.v1st.loss import cross_group_infonce
from faap_plugins.v2nd.loss import rank_split, score_split_contrastive
from faap_plugins.v3rd.loss import group_aware_contrastive
from faap_plugins.v4th.loss import anchor_infonce, feature_mean_alignment
from faapkit.losses.common import image_scores, wasserstein_1d_asymmetric
from tests.conftest import FIXTURES, fixture_path

LOSSES = ("losses", "losses_expected.pt")


@functools.cache
def cases() -> list[dict]:
    return torch.load(fixture_path(*LOSSES), weights_only=True)["cases"]


# One test per research case; without the file, one test that fails (an empty parameter set would skip).
N_CASES = len(cases()) if FIXTURES.joinpath(*LOSSES).exists() else 1


def _check(case, fn, inputs, value_key, grad_keys):
    tensors = [case[k].clone().requires_grad_(True) for k in inputs]
    value = fn(*tensors)
    value.backward()
    assert value.item() == pytest.approx(case[value_key], rel=1e-5, abs=1e-6)
    for t, g in zip(tensors, grad_keys, strict=True):
        grad = t.grad if t.grad is not None else torch.zeros_like(t)
        torch.testing.assert_close(grad, case[g], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("i", range(N_CASES))
def test_research_values_and_gradients(i):
    c = cases()[i]
    _check(
        c,
        lambda f, m: cross_group_infonce(f, m, 0.07, 1.5, 0.5),
        ["proj_f", "proj_m"],
        "v1_infonce",
        ["v1_infonce_grad_f", "v1_infonce_grad_m"],
    )
    _check(
        c,
        wasserstein_1d_asymmetric,
        ["scores_f", "scores_m"],
        "wasserstein",
        ["wasserstein_grad_f", "wasserstein_grad_m"],
    )
    _check(
        c,
        lambda f, m: group_aware_contrastive(f, m, c["scores_f"], c["scores_m"], 0.07, 1.0, 1.5, 0.5),
        ["proj_f", "proj_m"],
        "v3_contrastive",
        ["v3_grad_f", "v3_grad_m"],
    )
    _check(
        c, lambda f, m: anchor_infonce(f, m, 0.1), ["proj_f", "proj_m"], "v4_contrastive", ["v4_grad_f", "v4_grad_m"]
    )
    _check(c, feature_mean_alignment, ["features_f", "features_m"], "v4_align", ["v4_align_grad_f", "v4_align_grad_m"])
    torch.testing.assert_close(image_scores(c["pred_logits"], 5), c["image_score_top5"])


def test_rank_split_is_disjoint_even_with_ties():
    scores = torch.tensor([0.5, 0.2, 0.5, 0.5, 0.9])
    low, high = rank_split(scores)
    assert set(low.tolist()).isdisjoint(high.tolist())
    assert len(low) == 2 and len(high) == 3 and set(low.tolist()) | set(high.tolist()) == set(range(5))


def test_score_split_has_no_trivial_self_positive():
    z = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    s = torch.tensor([0.1, 0.2, 0.3, 0.4])
    loss = score_split_contrastive(z, s, 0.07, 1.5, 0.5)
    assert torch.isfinite(loss)
    assert score_split_contrastive(z[:3], s[:3], 0.07, 1.5, 0.5).item() == 0.0  # a side with < 2 images


def test_wasserstein_edge_cases():
    a = torch.tensor([0.2, 0.4], requires_grad=True)
    assert wasserstein_1d_asymmetric(a, torch.tensor([])).item() == 0.0
    b = torch.tensor([0.9, 0.1, 0.5], requires_grad=True)
    w = wasserstein_1d_asymmetric(a, b)
    w.backward()
    assert b.grad is None and a.grad is not None
