"""torchvision's box ops and FrozenBatchNorm2d stand in for upstream DETR's own copies: same
numbers, same checkpoint keys, same ``num_batches_tracked`` handling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import FrozenBatchNorm2d, box_convert, generalized_box_iou

from faapkit.detr.build import build_detr, load_state_strict

SMALL = dict(
    backbone="resnet18",
    hidden_dim=32,
    nheads=2,
    enc_layers=1,
    dec_layers=1,
    dim_feedforward=64,
    num_queries=5,
    num_classes=3,
)


def upstream_cxcywh_to_xyxy(x: torch.Tensor) -> torch.Tensor:
    """facebookresearch/detr util/box_ops.py, verbatim in substance."""
    x_c, y_c, w, h = x.unbind(-1)
    return torch.stack([(x_c - 0.5 * w), (y_c - 0.5 * h), (x_c + 0.5 * w), (y_c + 0.5 * h)], dim=-1)


def upstream_xyxy_to_cxcywh(x: torch.Tensor) -> torch.Tensor:
    x0, y0, x1, y1 = x.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0), (y1 - y0)], dim=-1)


def upstream_giou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    def area(b: torch.Tensor) -> torch.Tensor:
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    area1, area2 = area(boxes1), area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2 - inter
    iou = inter / union
    lt = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    hull = wh[:, :, 0] * wh[:, :, 1]
    return iou - (hull - union) / hull


def test_box_ops_equal_upstream_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    cxcywh = torch.cat([torch.rand(50, 2, generator=g), 0.05 + 0.5 * torch.rand(50, 2, generator=g)], dim=1)
    xyxy = box_convert(cxcywh, "cxcywh", "xyxy")
    assert torch.equal(xyxy, upstream_cxcywh_to_xyxy(cxcywh))
    assert torch.equal(box_convert(xyxy, "xyxy", "cxcywh"), upstream_xyxy_to_cxcywh(xyxy))
    giou = generalized_box_iou(xyxy[:30], xyxy[30:])
    assert giou.shape == (30, 20)
    assert torch.equal(giou, upstream_giou(xyxy[:30], xyxy[30:]))
    assert torch.allclose(torch.diag(generalized_box_iou(xyxy, xyxy)), torch.ones(50))
    empty = torch.zeros(0, 4)
    assert box_convert(empty, "cxcywh", "xyxy").shape == (0, 4)  # images without boxes
    assert generalized_box_iou(xyxy, empty).shape == (50, 0)


def test_frozen_batchnorm_is_upstreams():
    model, _, _ = build_detr(**SMALL)
    norms = {name: m for name, m in model.named_modules() if isinstance(m, FrozenBatchNorm2d)}
    assert len(norms) == 20  # resnet18: bn1 + 2 per basic block x 8 + 3 downsample
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    assert {m.eps for m in norms.values()} == {1e-5}
    name, bn = next(iter(norms.items()))
    assert name == "backbone.0.body.bn1"
    keys = [k for k in model.state_dict() if k.startswith("backbone.0.body.bn1.")]
    assert keys == [f"backbone.0.body.bn1.{b}" for b in ("weight", "bias", "running_mean", "running_var")]
    assert list(bn.parameters()) == []  # buffers only: nothing for an optimiser to touch

    # the upstream formula: eval-mode batch norm with eps 1e-5
    g = torch.Generator().manual_seed(1)
    c = bn.weight.numel()
    stats = {
        "weight": 1 + 0.1 * torch.randn(c, generator=g),
        "bias": 0.1 * torch.randn(c, generator=g),
        "running_mean": 0.1 * torch.randn(c, generator=g),
        "running_var": 0.5 + torch.rand(c, generator=g),
    }
    bn.load_state_dict(stats)
    x = torch.randn(2, c, 5, 7, generator=g)
    expected = F.batch_norm(x, stats["running_mean"], stats["running_var"], stats["weight"], stats["bias"], eps=1e-5)
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-6)


def test_num_batches_tracked_in_a_checkpoint_is_dropped_on_load():
    """Checkpoints saved from an unfrozen BatchNorm carry ``num_batches_tracked``: they still load."""
    torch.manual_seed(0)
    model, _, _ = build_detr(**SMALL)
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    bn_prefixes = {k.rsplit(".", 1)[0] for k in state if k.endswith("running_var")}
    with_counter = {**state, **{f"{p}.num_batches_tracked": torch.tensor(7) for p in bn_prefixes}}
    bn = model.backbone[0].body.bn1
    bn.load_state_dict({k[len("backbone.0.body.bn1.") :]: v for k, v in with_counter.items() if ".body.bn1." in k})
    load_state_strict(model, with_counter, what="test")
    assert not any(k.endswith("num_batches_tracked") for k in model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
