"""The method-search plugin of docs/effect-diagnosis.md section 11 (``examples/faap-search-plugin``),
registered as a third-party plugin: its generator learns from the detector's input gradients, its
versions add the IoU-weighted box term, the distillation from a ground-truth teacher and a learned
critic of box quality that the generator climbs at test time, each trained a few steps on the tiny
detector."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch

from faapkit.config import resolve_config
from faapkit.detr.frozen import load_detector
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
    assert reg.versions.get("level-up-hardbox").loss == "level_up_hardbox"
    cfg = resolve_config(reg, version="level-up-hardbox", overrides=[*FAST, "loss.gamma=2"])
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    trainer.fit()
    row = trainer.run.read_log()[-1]
    assert math.isfinite(row["hard_box"]) and row["hard_box"] > 0
    assert row["total"] > row["loss_det_dis"]  # the box term is added on top of level-up's loss


@pytest.mark.slow  # a hypothesis not shipped; its signal gradients are checked below by default
def test_refine_steps_generator_learns_its_test_time_steps(monkeypatch, tmp_path, synth_root):
    reg = _registries(monkeypatch)
    cfg = resolve_config(reg, version="level-up", overrides=[*FAST, "generator.name=refine-steps", "generator.steps=3"])
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    generator = trainer.generator
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():  # as evaluation calls it: the steps take their own gradients
        first = generator(images)
    assert generator.step_sizes.shape == (3, 2) and not generator.step_sizes.any()
    assert trainer.fit()["global_step"] == 2
    assert generator.step_sizes.abs().sum() > 0, "the step sizes stayed at zero"
    with torch.no_grad():
        generator.step_sizes.fill_(0.5)  # steps of half epsilon along sign(g_conf) + sign(g_unc)
        base = type(generator).__mro__[1].forward(generator, images)
        refined = generator(images)
    assert refined.abs().max() <= generator.epsilon + 1e-6
    assert not torch.allclose(refined, base) and first.shape == refined.shape


@pytest.mark.parametrize("name", ["gradient-aware", "refine-steps", "critic-refine"])
def test_signal_gradients_are_taken_under_inference_mode_too(monkeypatch, name):
    """The generators that take the detector's input gradients at test time give the same delta
    under ``torch.inference_mode`` (serving code) as under ``torch.no_grad`` (faap eval): an
    inference-mode caller once got "element 0 of tensors does not require grad"."""
    reg = _registries(monkeypatch)
    detector = load_detector(reg.detectors.get("detr-synth-tiny-v3"))
    generator = reg.generators.get(name).build(epsilon=0.09, detector=detector).eval()
    with torch.no_grad():
        for param in generator.parameters():  # trained-like weights: the gradient paths matter
            param.copy_(torch.randn_like(param) * 0.1)
    images = torch.rand(2, 3, 61, 83)  # not multiples of 4: the padded gradient path too
    with torch.no_grad():
        expected = generator(images)
    with torch.inference_mode():
        delta = generator(images)
    assert delta.shape == images.shape and torch.isfinite(delta).all()
    assert torch.equal(delta, expected)


def test_hard_box_term_counts_the_disadvantaged_peoples_boxes_only(monkeypatch):
    """Box-level data (``faap data synth --mixed``): an image holding both groups contributes its
    disadvantaged people's matched boxes to the hard-box term, never its advantaged people's."""
    _registries(monkeypatch)
    from faap_search import disadvantaged_matches

    from faapkit.losses.base import LossInputs

    targets = [
        {"boxes": torch.rand(3, 4), "groups": torch.tensor([0, 1, 0])},  # both groups
        {"boxes": torch.rand(1, 4), "groups": torch.tensor([1])},  # advantaged only
        {"boxes": torch.rand(2, 4), "groups": torch.tensor([-1, 0])},
    ]
    indices = [
        (torch.tensor([4, 7, 9]), torch.tensor([1, 0, 2])),
        (torch.tensor([2]), torch.tensor([0])),
        (torch.tensor([5, 6]), torch.tensor([0, 1])),
    ]
    x = LossInputs(
        outputs={}, targets=targets, groups=torch.tensor([0, 1, 0]), detection=torch.zeros(()),
        indices=indices, weights={}, head=None,
    )  # fmt: skip
    kept = [(b, q.tolist(), t.tolist()) for b, q, t in disadvantaged_matches(x)]
    assert kept == [(0, [7, 9], [0, 2]), (2, [6], [1])]
    for target in targets:  # image-level data: every matched box of a disadvantaged image
        del target["groups"]
    assert [(b, q.tolist()) for b, q, _ in disadvantaged_matches(x)] == [(0, [4, 7, 9]), (2, [5, 6])]


def test_every_layer_generator_reads_each_decoder_layers_attention(monkeypatch, tmp_path, synth_root):
    """``every-layer-aware``: two maps per decoder layer (confidence-weighted and over every query),
    each of mean 1 per image; its projection starts at zero, so before training it gives
    ``transformer-aware``'s delta, and training moves it."""
    reg = _registries(monkeypatch)
    cfg = resolve_config(reg, version="level-up", overrides=[*FAST, "generator.name=every-layer-aware"])
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    generator = trainer.generator
    layers = len(generator.detector.model.transformer.decoder.layers)
    images = torch.rand(2, 3, 64, 96)
    context = generator.clean_context(images)
    split = generator.context_proj.in_channels + int(generator.detector.transformer_dim)
    maps = context[:, split:]
    assert maps.shape[1] == 2 * layers and torch.isfinite(context).all()
    assert torch.allclose(maps.flatten(2).mean(-1), torch.ones(2, 2 * layers), atol=1e-4)
    assert not generator.memory_proj.weight.any()
    assert trainer.fit()["global_step"] == 2
    assert generator.memory_proj.weight.abs().sum() > 0, "the transformer's view stayed unused"
    assert generator(images).abs().max() <= generator.epsilon + 1e-6


def test_cosine_restarts_schedule_rises_again_after_each_cycle(monkeypatch):
    reg = _registries(monkeypatch)
    spec = reg.schedules.get("cosine_restarts")
    cfg = resolve_config(
        reg, version="level-up", overrides=["schedules.lr.name=cosine_restarts", "schedules.lr.cycle=4"]
    )
    assert cfg.schedules["lr"]["cycle"] == 4 and cfg.schedules["lr"]["peak_decay"] == 1.0
    f = importlib.import_module("faap_search").cosine_restarts
    factors = [f(e, 12, warmup=2, cycle=4, min_factor=0.01, peak_decay=0.5) for e in range(12)]
    assert factors[:2] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert factors[2] == pytest.approx(1.0) and factors[5] == pytest.approx(0.01)  # the first cycle's ends
    assert factors[6] == pytest.approx(0.5) and factors[9] == pytest.approx(0.01)  # restarts at half the peak
    assert factors[10] == pytest.approx(0.25)
    assert spec.kind == "lr"


def test_distill_teacher_is_bounded_constant_and_better_than_the_student(monkeypatch, tmp_path, synth_root):
    """The teacher of ``level-up-distill``: within epsilon, zero on the padding, no graph, and with
    the lower disadvantaged set loss at the same step (else its target would mean nothing)."""
    reg = _registries(monkeypatch)
    from faap_search import distill_teacher

    cfg = resolve_config(reg, version="level-up-distill", overrides=FAST)
    steps, step = cfg.loss["teacher_steps"], cfg.loss["teacher_step"]
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    batch = next(iter(trainer.loader)).to(trainer.device)
    batch.mask[:, :, -8:] = True  # padding on the right of every image, as a wider batch-mate would leave
    batch.images[:, :, :, -8:] = 0
    x = trainer.loss_inputs(batch, batch.groups.clamp(max=1), {})
    rows = x.index(0)
    assert len(rows)
    teacher, teacher_loss = distill_teacher(x, rows, None, steps=steps, step=step)
    assert teacher.shape == (len(rows), *x.images.shape[1:]) and not teacher.requires_grad
    assert teacher.abs().max() <= x.epsilon + 1e-6
    assert not teacher[..., -8:].any()  # nothing outside the valid region
    assert (teacher - x.delta[rows].detach()).abs().max() <= steps * step * x.epsilon + 1e-6
    out = trainer.strategy(x)
    distill, student, by_teacher = (float(out.terms[k]) for k in ("distill", "loss_det_dis", "loss_det_dis_teacher"))
    assert math.isfinite(distill) and distill > 0
    assert by_teacher < student
    assert float(teacher_loss) == pytest.approx(by_teacher, rel=1e-5)  # the same descent, deterministic


def test_distill_version_trains_end_to_end(monkeypatch, tmp_path, synth_root):
    reg = _registries(monkeypatch)
    assert reg.versions.get("level-up-distill").loss == "level_up_distill"
    cfg = resolve_config(reg, version="level-up-distill", overrides=[*FAST, "loss.distill_weight=2.0"])
    assert cfg.generator["name"] == "transformer-aware"  # level-up's parts
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    assert trainer.fit()["global_step"] == 2
    row = trainer.run.read_log()[-1]
    for key in ("distill", "loss_det_dis", "loss_det_dis_teacher"):
        assert math.isfinite(row[key]), (key, row)
    assert row["distill"] > 0 and row["loss_det_dis_teacher"] < row["loss_det_dis"]
    assert row["total"] == pytest.approx(row["loss_det_dis"] + 2.0 * row["distill"], rel=1e-4)


@pytest.mark.slow  # detection_on's box-level path is tested by default in tests/train/test_loss_inputs.py
def test_distill_version_trains_on_box_level_groups(monkeypatch, tmp_path):
    """Mixed images (people of both groups): the teacher descends the disadvantaged people's loss
    over the images holding one, and still beats the student."""
    from faapkit.data.synth_mixed import MixedSpec, write_mixed

    reg = _registries(monkeypatch)
    root = write_mixed(tmp_path / "m", MixedSpec(seed=1, images=8)) / "coco"
    overrides = [f"data.root={root}", *FAST, "data.limit_images=8", "data.disadvantaged_share=0.5"]
    cfg = resolve_config(reg, version="level-up-distill", overrides=overrides)
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    assert trainer.data.group_level == "box"
    assert trainer.fit()["global_step"] == 2
    row = trainer.run.read_log()[-1]
    assert math.isfinite(row["distill"]) and row["distill"] > 0
    assert row["loss_det_dis_teacher"] < row["loss_det_dis"]


def test_critic_learns_the_matched_iou_and_its_term_trains_the_critic_alone(monkeypatch, tmp_path, synth_root):
    """``level-up-critic``: the critic's target is each query's IoU with its matched ground-truth
    box (0 unmatched); its BCE falls over a few training steps on the same batch; and it reaches
    the critic's parameters only, the generator's gradient being level-up's alone."""
    reg = _registries(monkeypatch)
    from faap_search import build_critic_loss, query_quality

    cfg = resolve_config(reg, version="level-up-critic", overrides=FAST)
    assert cfg.generator["name"] == "critic-refine" and cfg.loss["critic_weight"] == 1.0
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    batch = next(iter(trainer.loader)).to(trainer.device)
    groups = batch.groups.clamp(max=1)
    x = trainer.loss_inputs(batch, groups, {})
    quality = query_quality(x.outputs, x.targets, x.indices)
    matched = sum(len(q) for q, _ in x.indices)
    assert quality.shape == x.logits.shape[:2] and int((quality > 0).sum()) <= matched
    assert float(quality.min()) >= 0 and float(quality.max()) <= 1 and float(quality.max()) > 0.3
    out = trainer.strategy(x)
    level_up = build_critic_loss(0.0, 0.0, 0.0)(x)
    generator = trainer.generator
    critic = list(generator.critic.parameters())
    others = [p for n, p in generator.named_parameters() if not n.startswith("critic.")]
    with_critic = torch.autograd.grad(out.total, others, retain_graph=True, allow_unused=True)
    without = torch.autograd.grad(level_up.total, others, retain_graph=True, allow_unused=True)
    for a, b in zip(with_critic, without, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(out.total, critic))
    before = float(out.terms["critic_bce"])
    for _ in range(6):
        trainer.train_step(batch, {})
    after = float(trainer.strategy(trainer.loss_inputs(batch, groups, {})).terms["critic_bce"])
    assert after < 0.9 * before, (before, after)


def test_critic_refine_steps_up_the_critic_within_epsilon(monkeypatch, synth_root):
    """The test-time steps: none while the step sizes are zero (the transformer-aware delta), a
    different delta within epsilon once they are not, and the critic's predicted quality of the
    confident queries is higher after a step up it than before."""
    reg = _registries(monkeypatch)
    from faap_search import critic_inputs

    from faapkit.plugin_api import clamp_normalized

    detector = load_detector(reg.detectors.get("detr-synth-tiny-v3"))
    generator = reg.generators.get("critic-refine").build(epsilon=0.09, detector=detector).eval()
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        base = type(generator).__mro__[1].forward(generator, images)
        assert torch.equal(generator(images), base)
        generator.step_sizes.fill_(0.5)
        refined = generator(images)
    assert refined.abs().max() <= generator.epsilon + 1e-6
    assert (refined - base).abs().max() <= 0.5 * generator.epsilon + 1e-6 and not torch.allclose(refined, base)

    def predicted(delta: torch.Tensor) -> float:
        mask = torch.zeros(2, 64, 96, dtype=torch.bool)
        features, confidence, boxes = critic_inputs(detector(clamp_normalized(images + delta), mask))
        return float((confidence * generator.critic(features, confidence, boxes).sigmoid()).sum())

    with torch.no_grad():
        generator.step_sizes.fill_(0.02)  # a small step: the first-order ascent holds
        assert predicted(generator(images)) > predicted(base)


@pytest.mark.slow  # two epochs with validation; the critic's pieces are checked above by default
def test_critic_version_trains_end_to_end(monkeypatch, tmp_path, synth_root):
    reg = _registries(monkeypatch)
    cfg = resolve_config(reg, version="level-up-critic", overrides=[*FAST, "train.epochs=2", "train.val_every=1"])
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    assert not trainer.generator.step_sizes.any()
    assert trainer.fit()["global_step"] == 4
    rows = trainer.run.read_log()
    for key in ("critic_bce", "critic_mae", "critic_mae_matched", "loss_det_dis"):
        assert all(math.isfinite(r[key]) for r in rows), key
    assert rows[-1]["total"] == pytest.approx(rows[-1]["loss_det_dis"] + rows[-1]["critic_bce"], rel=1e-4)
    assert trainer.generator.step_sizes.abs().sum() > 0, "the step sizes stayed at zero"
    assert "val" in rows[-1]  # validated with the ground-truth-free steps
