"""The research U-Net generator and how a perturbation is applied.

Images live in ImageNet-normalised space. ``x' = clamp_normalized(x + delta * valid_mask)`` with
``|delta| <= epsilon`` (normalised units; epsilon 0.1 is about 5.8/255 in pixels).
:func:`signed_descent` searches such a delta directly, by projected signed-gradient descent on a
loss of the perturbed images (the headroom probe's oracle; a loss's teacher).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faapkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, channel_values


def clamp_normalized(x: Tensor) -> Tensor:
    """Clamp ``(B, 3, H, W)`` normalised images to the image of [0, 1] pixels, per channel."""
    mean, std = channel_values(IMAGENET_MEAN, x), channel_values(IMAGENET_STD, x)
    return torch.maximum(torch.minimum(x, (1 - mean) / std), -mean / std)


class ConvBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN-ReLU; keys ``net.{0,1,3,4}`` as the research generator."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class UpBlock(nn.Module):
    """bilinear resize to the skip's size, conv3x3-BN-ReLU; keys ``conv``, ``bn``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        return self.conv_bn_relu(F.interpolate(x, size=size, mode="bilinear", align_corners=False))

    def conv_bn_relu(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class ResearchUNetGenerator(nn.Module):
    """U-Net ``(B, 3, H, W) -> delta (B, 3, H, W)``, ``delta = epsilon * tanh(out)``.

    The 72 state-dict keys equal the research code's ``PerturbationGenerator`` so its checkpoints load;
    ``epsilon`` is therefore a plain attribute, and faapkit checkpoints store it beside the weights
    (research P2).
    With ``base_channels=32`` there are 676,899 trainable parameters.
    """

    def __init__(self, base_channels: int = 32, epsilon: float = 0.05) -> None:
        super().__init__()
        b = base_channels
        self.down1 = ConvBlock(3, b, 1)
        self.down2 = ConvBlock(b, 2 * b, 2)
        self.down3 = ConvBlock(2 * b, 4 * b, 2)
        self.bottleneck = ConvBlock(4 * b, 4 * b, 1)
        self.up2 = UpBlock(4 * b, 2 * b)
        self.up1 = UpBlock(2 * b, b)
        self.out_conv = nn.Conv2d(b, 3, 3, padding=1)
        self.base_channels = b
        self.epsilon = float(epsilon)

    def forward(self, x: Tensor) -> Tensor:
        h1 = self.down1(x)
        h2 = self.down2(h1)
        h3 = self.bottleneck(self.down3(h2))
        u2 = self.up2(h3, (h2.shape[-2], h2.shape[-1])) + h2
        u1 = self.up1(u2, (h1.shape[-2], h1.shape[-1])) + h1
        return self.epsilon * torch.tanh(self.out_conv(u1))


def research_unet(epsilon: float, base_channels: int = 32) -> nn.Module:
    """The ``unet`` generator's factory: the research U-Net (72 state-dict keys, research
    checkpoints load into it)."""
    return ResearchUNetGenerator(base_channels, epsilon=epsilon)


def compile_generator(generator: ResearchUNetGenerator) -> ResearchUNetGenerator:
    """Compile the generator's blocks in place (state-dict keys unchanged).

    Per block, not the whole network: the resize to the skip's size stays eager because inductor
    cannot lower a bilinear resize to a symbolic size (training images change shape every step, so
    graphs are dynamic), and ``epsilon`` stays outside so its schedule never recompiles anything."""
    for block in (generator.down1, generator.down2, generator.down3, generator.bottleneck):
        block.forward = torch.compile(block.forward)  # type: ignore[method-assign]
    for up in (generator.up2, generator.up1):
        up.conv_bn_relu = torch.compile(up.conv_bn_relu)  # type: ignore[method-assign]
    return generator


def apply_perturbation(
    generator: nn.Module, images: Tensor, mask: Tensor, clean_context: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Perturb the valid region only: padding stays zero so the batch composition cannot change an
    image's result (research P4). Returns ``(perturbed (B,3,H,W), delta (B,3,H,W))``.
    ``clean_context``: the generator's kept ``clean_context(images)``, for those that have one."""
    valid = (~mask).unsqueeze(1).to(images.dtype)
    raw = generator(images) if clean_context is None else generator(images, clean_context=clean_context)
    delta = raw * valid
    return clamp_normalized(images + delta) * valid, delta


def signed_descent(
    loss_of: Callable[[Tensor], Tensor],
    images: Tensor,
    mask: Tensor,
    start: Tensor | None = None,
    *,
    epsilon: float,
    steps: int,
    step_size: float,
) -> Tensor:
    """Projected signed-gradient descent on ``loss_of(perturbed)``, a scalar of the perturbed
    images ``(B, 3, H, W)`` (e.g. the detector's set loss against ground truth): ``steps`` steps of
    ``step_size`` from ``start`` (zeros when None), each clipped to ``[-epsilon, epsilon]``, the
    delta applied to the valid region of ``mask (B, H, W)`` (True on padding) exactly as a
    generator's. Returns the ``(B, 3, H, W)`` delta, zero outside the valid region, with no graph:
    nothing flows back into ``start`` or ``images``."""
    valid = (~mask).unsqueeze(1).to(images.dtype)
    images = images.detach()
    delta = torch.zeros_like(images) if start is None else start.detach().to(images.dtype).clamp(-epsilon, epsilon)
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            loss = loss_of(clamp_normalized(images + delta * valid) * valid)
            (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() - step_size * grad.sign()).clamp(-epsilon, epsilon)
    return delta * valid
