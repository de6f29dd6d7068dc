"""A file without a stored epsilon is named for what it is: a bare generator state dict (weights
only: pass --epsilon), a dict of unrelated tensors (no generator weights at all), or a research
checkpoint; never all three as 'research checkpoint'."""

from __future__ import annotations

import pytest
import torch

from faapkit.errors import CheckpointError
from faapkit.evaluate.evaluator import load_generator
from faapkit.generators.perturb import ResearchUNetGenerator
from faapkit.io import save_checkpoint


def _refusal(tmp_path, obj) -> str:
    path = tmp_path / "g.pt"
    save_checkpoint(path, obj)
    with pytest.raises(CheckpointError) as exc:
        load_generator(path, None, torch.device("cpu"))
    line = str(exc.value)
    assert "\n" not in line and str(path) in line
    return line


def test_a_bare_generator_state_dict_is_called_one(tmp_path):
    state = ResearchUNetGenerator(8, epsilon=0.05).state_dict()
    line = _refusal(tmp_path, state)
    assert "bare generator state dict" in line and "--epsilon" in line and "research" not in line


def test_a_dict_of_unrelated_tensors_is_not_called_a_checkpoint_without_epsilon(tmp_path):
    line = _refusal(tmp_path, {"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)})
    assert "does not hold perturbation-generator weights" in line and "2 tensors" in line
    assert "research" not in line and "epsilon" not in line


def test_a_research_checkpoint_is_still_called_one(tmp_path):
    line = _refusal(tmp_path, {"generator": ResearchUNetGenerator(8, epsilon=0.05).state_dict(), "epoch": 3})
    assert "research checkpoint" in line and "--epsilon" in line
