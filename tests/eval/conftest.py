"""Shared by the evaluation tests: real detections of the shipped tiny detector, made once."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from faapkit.data.coco import DatasetSplit, load_split
from faapkit.distributed import DistInfo
from faapkit.evaluate.evaluator import run_detections
from faapkit.evaluate.requests import EvalRequest
from faapkit.generators.perturb import ResearchUNetGenerator


def real_detections(data: DatasetSplit, detector: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Baseline and perturbed detections of ``data`` (the perturbation: a seeded 8-channel
    research generator at epsilon 0.1)."""
    torch.manual_seed(0)
    gen = ResearchUNetGenerator(8, epsilon=0.1).eval()
    req = EvalRequest(data=data, detector=detector, device=torch.device("cpu"), num_workers=0)
    base, pert = run_detections(req, [None, gen], DistInfo())
    return base, pert


@pytest.fixture(scope="session")
def gender_detections(synth_root, tiny_detector) -> tuple[DatasetSplit, list[dict[str, Any]], list[dict[str, Any]]]:
    """48 test images of the embedded benchmark grouped by gender, their baseline and perturbed
    detections (:func:`real_detections`)."""
    data = load_split(synth_root, "test", split_by="gender", limit=48)
    return data, *real_detections(data, tiny_detector)
