"""Image grids for ``faap inspect perturbation``: original / perturbed / amplified delta."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from faapkit.data.transforms import denormalize
from faapkit.generators.perturb import apply_perturbation
from faapkit.io import atomic_write_with


def perturbation_grid(generator: torch.nn.Module, images: list[torch.Tensor], out: Path, amplify: float = 10.0) -> Path:
    """One row per image ``(3, H, W)`` normalised: original, perturbed, ``0.5 + amplify * delta``."""
    rows = []
    generator.eval()
    with torch.no_grad():
        for img in images:
            x = img[None]
            mask = torch.zeros(1, *img.shape[-2:], dtype=torch.bool)
            pert, _ = apply_perturbation(generator, x, mask)
            orig01, pert01 = denormalize(x).clamp(0, 1), denormalize(pert).clamp(0, 1)
            delta01 = (0.5 + amplify * (pert01 - orig01)).clamp(0, 1)
            rows.append(torch.cat([orig01, pert01, delta01], dim=3)[0])
    width = max(r.shape[-1] for r in rows)
    canvas = torch.ones(3, sum(r.shape[-2] for r in rows), width)
    y = 0
    for r in rows:
        canvas[:, y : y + r.shape[-2], : r.shape[-1]] = r
        y += r.shape[-2]
    image = Image.fromarray((canvas.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    atomic_write_with(out, image.save, keep_suffix=True)
    return out
