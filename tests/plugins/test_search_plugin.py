"""The method-search plugin of docs/effect-diagnosis.md section 11 (``examples/faap-search-plugin``),
registered as a third-party plugin: its generator learns from the detector's input gradients and
its version adds the IoU-weighted box term, both trained a few steps on the tiny detector."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import torch

from faapkit.config import resolve_config
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

SEARCH = Path(__file__).resolve().parents[2] / "examples" / "faap-search-plugin"
FAST = ["train.steps_per_epoch=2", "train.epochs=1", "train.batch_size=4", "data.limit_images=16", "train.val_every=0"]


def _registries(monkeypatch) -> Registries:
    monkeypatch.syspath_prepend(str(SEARCH))
    pm = make_plugin_manager()
    pm.register(importlib.import_module("faap_search"), name="search")
    return Registries.from_plugin_manager(pm)


def test_gradient_aware_generator_reads_the_detectors_input_gradients(monkeypatch, tmp_path, synth_root):
    reg = _registries(monkeypatch)
    cfg = resolve_config(reg, version="level-up", overrides=[*FAST, "generator.name=gradient-aware"])
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    generator = trainer.generator
    images = torch.rand(2, 3, 64, 96)
    context = generator.clean_context(images)
    assert context.shape == (2, 6, 64, 96) and torch.isfinite(context).all()
    rms = context.flatten(2).pow(2).mean(-1)
    assert torch.allclose(rms[:, :3], torch.ones(2, 3), atol=1e-3)  # the confidence gradient, RMS 1 per image
    assert trainer.fit()["global_step"] == 2
    assert generator.grad_full.weight.abs().sum() > 0, "the gradient input stayed unused"
    delta = generator(images)
    assert delta.abs().max() <= generator.epsilon + 1e-6


def test_hard_box_version_adds_its_box_term(monkeypatch, tmp_path, synth_root):
    reg = _registries(monkeypatch)
    assert reg.versions.get("level-up-hardbox").loss == "levelup_hardbox"
    cfg = resolve_config(reg, version="level-up-hardbox", overrides=[*FAST, "loss.gamma=2"])
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    trainer.fit()
    row = trainer.run.read_log()[-1]
    assert math.isfinite(row["hard_box"]) and row["hard_box"] > 0
    assert row["total"] > row["loss_det_dis"]  # the box term is added on top of level-up's loss
