"""Generators as registered components: bounds, shapes, start from the clean image, checkpoints."""

from __future__ import annotations

import pytest
import torch

from faapkit.errors import CheckpointError
from faapkit.evaluate.evaluator import load_generator
from faapkit.generators.subpixel import SubPixelGenerator
from faapkit.io import save_checkpoint


@pytest.mark.parametrize("hw", [(128, 160), (97, 131), (8, 4)])
def test_subpixel_generator_shape_and_bound(hw):
    torch.manual_seed(0)
    gen = SubPixelGenerator(epsilon=0.07, channels=8)
    x = torch.randn(2, 3, *hw)
    assert torch.equal(gen(x), torch.zeros(2, 3, *hw)), "must start from delta = 0"
    for p in gen.parameters():
        torch.nn.init.normal_(p, std=3.0)
    delta = gen(x)
    assert delta.shape == x.shape and delta.abs().max() <= 0.07 + 1e-7 and delta.abs().max() > 0.05


def test_subpixel_delta_of_an_image_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    gen = SubPixelGenerator(channels=8)
    for p in gen.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(4, 3, 64, 80)
    assert torch.allclose(gen(x)[1:2], gen(x[1:2]), atol=1e-5)


def test_registry_builds_each_generator_with_validated_options(registries):
    assert {"unet", "subpixel"} <= set(registries.generators)
    unet = registries.generators.get("unet").build(epsilon=0.1, base_channels=8)
    assert unet.epsilon == 0.1 and unet.base_channels == 8
    with pytest.raises(Exception, match="channels"):
        registries.generators.get("subpixel").build(epsilon=0.1, channels="many")


def test_checkpoint_names_its_generator_and_loads_back(registries, tmp_path):
    gen = registries.generators.get("subpixel").build(epsilon=0.08, channels=8, tile=16)
    torch.nn.init.normal_(gen.head.weight)
    path = tmp_path / "g.pt"
    spec = {"name": "subpixel", "channels": 8, "tile": 16}
    save_checkpoint(path, {"generator": gen.state_dict(), "epsilon": 0.08, "generator_spec": spec})
    loaded, meta = load_generator(path, None, torch.device("cpu"), registries.generators)
    x = torch.randn(1, 3, 32, 48)
    assert meta["generator"] == "subpixel" and torch.equal(loaded(x), gen.eval()(x))
    with pytest.raises(CheckpointError, match="'subpixel' generator"):
        load_generator(path, None, torch.device("cpu"), None)
    # options the installed plugin does not know (a checkpoint from another build): one named error
    save_checkpoint(path, {"generator": gen.state_dict(), "epsilon": 0.08, "generator_spec": {**spec, "refine": 0}})
    with pytest.raises(
        CheckpointError, match=r"g\.pt: its 'subpixel' generator has options the installed one rejects: refine$"
    ):
        load_generator(path, None, torch.device("cpu"), registries.generators)


def test_detector_aware_generator_reads_the_real_detector_and_saves_only_its_own_weights(
    registries, tiny_detector, tmp_path
):
    spec = registries.generators.get("detector-aware")
    with pytest.raises(Exception, match="reads the detector"):
        spec.build(epsilon=0.09, channels=8)
    gen = spec.build(epsilon=0.09, detector=tiny_detector, channels=8)
    x = torch.randn(2, 3, 96, 128)
    assert torch.equal(gen(x), torch.zeros_like(x)), "must start from delta = 0"
    assert not any(k.startswith(("_detector", "model.")) for k in gen.state_dict())
    assert {p.data_ptr() for p in gen.parameters()}.isdisjoint({p.data_ptr() for p in tiny_detector.parameters()})
    torch.manual_seed(0)
    for p in gen.parameters():
        torch.nn.init.normal_(p, std=0.1)
    delta = gen(x)
    assert delta.abs().max() <= 0.09 + 1e-7 and delta.abs().max() > 0
    delta.square().sum().backward()
    assert gen.context_proj.weight.grad is not None and gen.context_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_detector.parameters()), "the detector is never trained"
    # the detector's features of the image change the delta: a generator blind to them differs
    blind = SubPixelGenerator(epsilon=0.09, channels=8)
    blind.load_state_dict({k: v for k, v in gen.state_dict().items() if not k.startswith("context_proj")})
    assert not torch.allclose(blind(x), gen(x))
    path = tmp_path / "g.pt"
    record = {"name": tiny_detector.name, "sha256": tiny_detector.sha256}
    spec_options = {"name": "detector-aware", "channels": 8, "tile": 16}
    save_checkpoint(
        path, {"generator": gen.state_dict(), "epsilon": 0.09, "generator_spec": spec_options, "detector": record}
    )
    from faapkit.evaluate.evaluator import detector_for_generator

    detector = detector_for_generator(path, registries)
    loaded, _ = load_generator(path, None, torch.device("cpu"), registries.generators, detector=detector)
    assert torch.allclose(loaded(x), gen.eval()(x), atol=1e-6)  # another instance of the same weights
    save_checkpoint(
        path,
        {
            "generator": gen.state_dict(),
            "epsilon": 0.09,
            "generator_spec": spec_options,
            "detector": {**record, "sha256": "feedbeef" * 8},
        },
    )
    with pytest.raises(CheckpointError, match="feedbeef"):
        detector_for_generator(path, registries)


def test_detector_aware_context_is_kept_or_computed_alike_and_projected_before_the_resize(registries, tiny_detector):
    """A kept ``clean_context`` gives the delta computed from scratch; projecting the detector's
    features before resizing them gives what resizing first would (the 1x1 convolution and the
    bilinear resize commute), so the cheaper order changes no result beyond rounding."""
    import torch.nn.functional as F

    gen = registries.generators.get("detector-aware").build(epsilon=0.09, detector=tiny_detector, channels=8)
    torch.manual_seed(0)
    for p in gen.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(2, 3, 98, 130)  # not a multiple of 4: the context is of the padded image
    context = gen.clean_context(x)
    assert context.shape[:2] == (2, tiny_detector.image_feature_dim)
    assert torch.equal(gen(x, clean_context=context), gen(x))
    size = (25, 33)
    resized_first = gen.context_proj(F.interpolate(context, size=size, mode="bilinear", align_corners=False))
    assert torch.allclose(gen.project_context(context, size), resized_first, atol=1e-5)
    assert SubPixelGenerator(channels=8).clean_context(x) is None


def test_transformer_aware_generator_reads_memory_and_attention_and_saves_only_its_own_weights(
    registries, tiny_detector
):
    gen = registries.generators.get("transformer-aware").build(epsilon=0.09, detector=tiny_detector, channels=8)
    x = torch.randn(2, 3, 98, 130)  # not a multiple of 4: the context is of the padded image
    assert torch.equal(gen(x), torch.zeros_like(x)), "must start from delta = 0"
    context = gen.clean_context(x)
    c, d = tiny_detector.image_feature_dim, tiny_detector.transformer_dim
    assert context.shape[:2] == (2, c + d + 1) and torch.isfinite(context).all()
    assert torch.equal(context[:, :c], registries.generators.get("detector-aware").build(
        epsilon=0.09, detector=tiny_detector, channels=8).clean_context(x))  # fmt: skip
    assert not any(k.startswith(("_detector", "model.")) for k in gen.state_dict())
    torch.manual_seed(0)
    for p in gen.parameters():
        torch.nn.init.normal_(p, std=0.1)
    assert torch.equal(gen(x, clean_context=context), gen(x))
    delta = gen(x)
    assert 0 < delta.abs().max() <= 0.09 + 1e-7
    delta.square().sum().backward()
    assert gen.memory_proj.weight.grad is not None and gen.memory_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_detector.parameters()), "the detector is never trained"
