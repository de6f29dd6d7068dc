"""What a DETR's transformer makes of an image, for generators and losses that read it: each
query's confidence, the encoder's memory and where the last decoder layer looks
(``FrozenDetector.transformer_view``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from faapkit.detr.misc import NestedTensor


def query_confidence(pred_logits: Tensor) -> Tensor:
    """``(..., Q, C+1) -> (..., Q)`` float32: each query's highest object-class probability
    ``max_c p(c|q)``, the no-object class (the last) excluded."""
    return pred_logits.float().softmax(-1)[..., :-1].max(-1).values


def decoder_attention(
    model: Any, images: Tensor, mask: Tensor, layers: Sequence[int]
) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
    """``images (B, 3, H, W)``, ``mask (B, H, W)`` (True on padding) -> the backbone's last feature
    map ``(B, C, h, w)``, the encoder's memory ``(B, D, h, w)``, the decoder's outputs
    ``hs (L, B, Q, D)`` and, for each index of ``layers``, that decoder layer's cross-attention
    ``(B, Q, hw)`` (mean over heads, as ``nn.MultiheadAttention`` returns it). ``model`` is a
    facebookresearch/detr ``DETR``; no gradient is taken.

    The attention is recomputed from the arguments each layer's ``multihead_attn`` was called
    with, so the detector's own forward keeps ``need_weights=False`` and its numbers are untouched."""
    attentions = [model.transformer.decoder.layers[i].multihead_attn for i in layers]
    calls: list[dict[str, Any]] = [{} for _ in attentions]
    handles = [
        attention.register_forward_pre_hook(
            lambda _module, args, kwargs, called=called: called.update(args=args, kwargs=kwargs), with_kwargs=True
        )
        for attention, called in zip(attentions, calls, strict=True)
    ]
    try:
        with torch.no_grad():
            features, pos = model.backbone(NestedTensor(images, mask))
            src, src_mask = features[-1].decompose()
            hs, memory = model.transformer(model.input_proj(src), src_mask, model.query_embed.weight, pos[-1])
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        weights = [
            attention(*called["args"], **{**called["kwargs"], "need_weights": True})[1]
            for attention, called in zip(attentions, calls, strict=True)
        ]
    return src, memory, hs, weights


def transformer_view(model: Any, images: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``images (B, 3, H, W)``, ``mask (B, H, W)`` (True on padding) -> the backbone's last feature
    map ``(B, C, h, w)``, the encoder's memory ``(B, D, h, w)`` and ``attended (B, 1, h, w)``: the
    last decoder layer's cross-attention (:func:`decoder_attention`), weighted by each query's
    confidence ``max_c p(c|q)`` (no-object excluded), summed over queries and scaled to mean 1 per
    image. No gradient is taken."""
    src, memory, hs, (weights,) = decoder_attention(model, images, mask, [-1])
    with torch.no_grad():
        confidence = query_confidence(model.class_embed(hs[-1]))
        attended = (confidence.unsqueeze(-1) * weights.float()).sum(1)  # (B, hw)
        attended = attended / attended.mean(-1, keepdim=True).clamp_min(1e-12)
    b, _, h, w = memory.shape
    return src, memory, attended.view(b, 1, h, w).to(memory.dtype)
