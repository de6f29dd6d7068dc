"""Backbones: torchvision ResNets with FrozenBatchNorm2d (never downloading weights) and the small
stride-16 conv body of the tiny detector. Both return one feature map ``(B, C, H/s, W/s)`` and its
padding mask; keys are ``backbone.0.body.*`` as upstream.

A detector's ``arch["backbone"]`` names its body: a name of :data:`BODIES`, a torchvision ResNet
(``resnet18`` ... ``resnet152``), or ``"package.module:attr"``, a plugin's callable
``(dilation: bool) -> (body, channels)`` whose body maps ``(B, 3, H, W)`` to ``{"0": (B, channels, h, w)}``."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torchvision
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FrozenBatchNorm2d

from faapkit.detr.misc import NestedTensor, mask_to_feature
from faapkit.detr.position_encoding import PositionEmbeddingSine
from faapkit.errors import ConfigError
from faapkit.plugins.specs import resolve_factory

BodyFactory = Callable[[bool], tuple[nn.Module, int]]
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def _resnet_body(name: str, dilation: bool) -> tuple[nn.Module, int]:
    # torchvision's FrozenBatchNorm2d is upstream DETR's: the same four buffers (so the same
    # checkpoint keys), eps 1e-5, and it drops ``num_batches_tracked`` from loaded state dicts.
    factory = getattr(torchvision.models, name)
    net = factory(weights=None, replace_stride_with_dilation=[False, False, dilation], norm_layer=FrozenBatchNorm2d)
    channels = 512 if name in ("resnet18", "resnet34") else 2048
    return IntermediateLayerGetter(net, return_layers={"layer4": "0"}), channels


class TinyConvBody(nn.Module):
    """Four stride-2 stages of two 3x3 conv-BN-ReLU each: ``(B, 3, H, W) -> {"0": (B, 256, H/16, W/16)}``."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in widths:
            layers += [
                nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.stages = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"0": self.stages(x)}


def _tiny_body(dilation: bool) -> tuple[nn.Module, int]:
    if dilation:
        raise ConfigError("backbone 'tinyconv' has no dilated variant (arch.dilation must be false)")
    return TinyConvBody(), 256


# name -> body factory; the ResNets are added below, plugins name theirs as "module:attr"
BODIES: dict[str, BodyFactory] = {"tinyconv": _tiny_body, **{n: functools.partial(_resnet_body, n) for n in RESNETS}}


def body_factory(name: str) -> BodyFactory:
    """The body factory ``arch["backbone"]`` names; an unknown name is one error listing the known."""
    if name in BODIES:
        return BODIES[name]
    if ":" in name:
        try:
            return resolve_factory(name)  # type: ignore[no-any-return]
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"backbone '{name}' cannot be imported: {exc}") from None
    raise ConfigError(f"unknown backbone '{name}'; known: {', '.join(BODIES)} or 'package.module:attr'")


class Backbone(nn.Module):
    """Feature extractor with mask propagation (upstream ``BackboneBase``)."""

    def __init__(self, name: str, dilation: bool = False) -> None:
        super().__init__()
        self.body, self.num_channels = body_factory(name)(dilation)

    def forward(self, samples: NestedTensor) -> dict[str, NestedTensor]:
        xs = self.body(samples.tensors)
        return {name: NestedTensor(x, mask_to_feature(samples.mask, x.shape[-2:])) for name, x in xs.items()}


class Joiner(nn.Sequential):
    """``backbone.0`` = Backbone, ``backbone.1`` = position encoding (no parameters)."""

    def __init__(self, backbone: Backbone, position_embedding: PositionEmbeddingSine) -> None:
        super().__init__(backbone, position_embedding)
        self.num_channels = backbone.num_channels

    def forward(self, samples: NestedTensor) -> tuple[list[NestedTensor], list[Tensor]]:  # type: ignore[override]
        xs = self[0](samples)
        out, pos = [], []
        for x in xs.values():
            out.append(x)
            pos.append(self[1](x.mask).to(x.tensors.dtype))
        return out, pos
