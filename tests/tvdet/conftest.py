"""Shared by the torchvision detector tests: one seeded random Faster R-CNN checkpoint per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faapkit.tvdet.build import build_torchvision

NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """Seeded random Faster R-CNN MobileNetV3 320 weights, saved as torchvision saves its own."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tv") / f"{NAME}-random.pth"
    torch.save(build_torchvision(NAME).state_dict(), path)
    return path
