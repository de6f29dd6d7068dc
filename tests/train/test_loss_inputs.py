"""What the engine hands a loss strategy to query the frozen detector on images of its own:
the clean batch, its padding and ``detection_on``, which equals ``detection_of`` on the images the
step perturbed and carries its graph back to the input."""

from __future__ import annotations

import torch

from faapkit.config import resolve_config
from faapkit.generators.perturb import clamp_normalized
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

REG = Registries.from_plugin_manager(make_plugin_manager())
FAST = ["train.steps_per_epoch=1", "train.epochs=1", "train.batch_size=4", "data.limit_images=8", "train.val_every=0"]


def test_detection_on_reruns_the_detector_on_given_rows_with_the_graph_to_the_input(tmp_path, synth_root):
    cfg = resolve_config(REG, version="level-up", overrides=FAST)
    trainer = Trainer(cfg, REG, tmp_path / "run")
    trainer.setup()
    batch = next(iter(trainer.loader)).to(trainer.device)
    groups = batch.groups.clamp(max=1)
    x = trainer.loss_inputs(batch, groups, {})
    assert x.images is not None and x.mask is not None and x.delta is not None and x.detection_on is not None
    assert x.detection_of is not None
    b, _, h, w = x.images.shape
    assert x.delta.shape == x.images.shape and x.mask.shape == (b, h, w)
    assert torch.equal(x.images, batch.images)  # the clean batch, before the perturbation
    rows = torch.tensor([b - 1, 0])  # any rows, in any order: their masks and targets follow them
    valid = (~x.mask[rows]).unsqueeze(1).to(x.images.dtype)
    perturbed = clamp_normalized(x.images[rows] + x.delta[rows].detach()) * valid
    again = x.detection_on(perturbed, rows)
    assert again.dim() == 0 and torch.allclose(again, x.detection_of(rows).detach(), rtol=1e-4, atol=1e-5)
    clean = x.images[rows].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(x.detection_on(clean, rows), clean)
    assert grad.shape == clean.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert not any(p.grad is not None for p in trainer.generator.parameters())  # the generator is untouched
