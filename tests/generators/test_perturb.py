import torch

from faapkit.generators.perturb import ResearchUNetGenerator, apply_perturbation, clamp_normalized


def test_research_key_layout_and_size():
    g = ResearchUNetGenerator(32)
    keys = list(g.state_dict())
    assert len(keys) == 72
    assert keys[:3] == ["down1.net.0.weight", "down1.net.0.bias", "down1.net.1.weight"]
    assert keys[-2:] == ["out_conv.weight", "out_conv.bias"]
    assert sum(p.numel() for p in g.parameters()) == 676_899


def test_delta_bounded_and_padding_untouched():
    g = ResearchUNetGenerator(8, epsilon=0.07)
    x = torch.randn(2, 3, 32, 40)
    mask = torch.zeros(2, 32, 40, dtype=torch.bool)
    mask[1, 20:, :] = True
    x[1, :, 20:, :] = 0
    out, delta = apply_perturbation(g, x, mask)
    assert delta.abs().max() <= 0.07 + 1e-6
    assert torch.all(out[1, :, 20:, :] == 0)
    assert torch.equal(out, clamp_normalized(out) * (~mask).unsqueeze(1))
