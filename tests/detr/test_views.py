"""``FrozenDetector.transformer_view`` (``faapkit.detr.views``): the backbone's features, the
encoder's memory and the last decoder layer's confidence-weighted cross-attention, computed from
the real detector without changing what it outputs."""

from __future__ import annotations

import pytest
import torch

from faapkit.detr.misc import NestedTensor
from faapkit.errors import ConfigError


def test_the_view_is_the_detectors_own_attention_weighted_by_confidence(tiny_detector):
    images = torch.randn(2, 3, 96, 128)
    mask = torch.zeros(2, 96, 128, dtype=torch.bool)
    model, seen = tiny_detector.model, {}
    last = model.transformer.decoder.layers[-1]
    with torch.no_grad():
        features, memory, attended = tiny_detector.transformer_view(images)
        handle = last.norm1.register_forward_hook(lambda _m, _i, out: seen.update(tgt=out))
        outputs = tiny_detector(images, mask)  # the detector's own forward: the queries it attends with
        handle.remove()
        _, pos = model.backbone(NestedTensor(images, mask))
    assert torch.equal(features, tiny_detector.image_features(images))
    b, d, h, w = memory.shape
    assert (b, d, (h, w)) == (2, tiny_detector.transformer_dim, features.shape[-2:])
    # recomputed by hand: softmax of the scaled dot products of the last layer's projected
    # queries and keys, averaged over heads, weighted by each query's confidence
    with torch.no_grad():
        attn = last.multihead_attn
        w_q, w_k, _ = attn.in_proj_weight.chunk(3)
        b_q, b_k, _ = attn.in_proj_bias.chunk(3)
        query = seen["tgt"] + model.query_embed.weight.unsqueeze(1)
        key = memory.flatten(2).permute(2, 0, 1) + pos[-1].flatten(2).permute(2, 0, 1)
        heads, dh = attn.num_heads, d // attn.num_heads
        qh = torch.nn.functional.linear(query, w_q, b_q).view(query.shape[0], b, heads, dh)
        kh = torch.nn.functional.linear(key, w_k, b_k).view(key.shape[0], b, heads, dh)
        weights = torch.einsum("qbnd,kbnd->bnqk", qh, kh).div(dh**0.5).softmax(-1).mean(1)
        conf = outputs["pred_logits"].softmax(-1)[..., :-1].max(-1).values
    expected = (conf.unsqueeze(-1) * weights).sum(1)
    expected = expected / expected.mean(-1, keepdim=True)
    assert torch.allclose(attended.flatten(1), expected, atol=1e-4)
    assert torch.allclose(attended.flatten(1).mean(-1), torch.ones(2), atol=1e-5)
    with torch.no_grad():
        again = tiny_detector(images, mask)
    assert torch.equal(outputs["pred_logits"], again["pred_logits"])  # no hook left behind


def test_a_detector_without_a_detr_transformer_is_refused_in_one_line(tiny_detector, monkeypatch):
    monkeypatch.delattr(tiny_detector.model, "query_embed")
    with pytest.raises(ConfigError, match=r"not a facebookresearch/detr DETR .*cannot use it; choose .*detector-aware"):
        tiny_detector.transformer_view(torch.zeros(1, 3, 32, 32))


def test_query_confidence_is_the_best_object_class_probability_with_no_object_left_out():
    from faapkit.plugin_api import query_confidence

    # one image, two queries, two object classes and no-object (last)
    logits = torch.log(torch.tensor([[[0.2, 0.1, 0.7], [0.5, 0.3, 0.2]]])).to(torch.bfloat16)
    conf = query_confidence(logits)
    assert conf.shape == (1, 2) and conf.dtype == torch.float32
    # the first query is most likely no object: its confidence is its best object class, 0.2
    assert torch.allclose(conf, torch.tensor([[0.2, 0.5]]), atol=1e-2)
