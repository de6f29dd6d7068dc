"""What the engine hands a loss strategy to query the frozen detector on images of its own:
the clean batch, its padding and ``detection_on``, which equals ``detection_of`` on the images the
step perturbed and carries its graph back to the input."""

from __future__ import annotations

import torch

from faapkit.config import resolve_config
from faapkit.data.synth_mixed import MixedSpec, write_mixed
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
    assert x.generator is trainer.generator  # the module itself, for a loss training a part of it
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


def test_detection_on_counts_one_groups_boxes_on_box_level_data(tmp_path):
    """Box-level groups: with a ``group``, ``detection_on`` is that group's boxes' loss, as
    ``detection_of`` gives it for the step's own forward."""
    root = write_mixed(tmp_path / "m", MixedSpec(seed=1, images=8)) / "coco"
    cfg = resolve_config(
        REG, version="level-up", overrides=[f"data.root={root}", *FAST, "data.disadvantaged_share=0.5"]
    )
    trainer = Trainer(cfg, REG, tmp_path / "run")
    trainer.setup()
    batch = next(iter(trainer.loader)).to(trainer.device)
    x = trainer.loss_inputs(batch, batch.groups.clamp(max=1), {})
    assert x.box_level and x.images is not None and x.mask is not None and x.delta is not None
    assert x.detection_on is not None and x.detection_of is not None
    rows = x.holding(0)
    valid = (~x.mask[rows]).unsqueeze(1).to(x.images.dtype)
    perturbed = clamp_normalized(x.images[rows] + x.delta[rows].detach()) * valid
    own, every = x.detection_on(perturbed, rows, 0), x.detection_on(perturbed, rows)
    assert torch.allclose(own, x.detection_of(rows, 0).detach(), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(own, every)  # the other people's boxes are left out
