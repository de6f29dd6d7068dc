"""The shipped tiny detector loads strictly and reproduces its reported baseline."""

import json
from pathlib import Path

import pytest
import torch

import faapkit
from faapkit.train.pretrain import evaluate_detector

REPORT = Path(faapkit.__file__).parent / "weights" / "detr-synth-tiny.json"


def test_reproduces_reported_baseline(tiny_detector, synth_root):
    report = json.loads(REPORT.read_text())
    assert tiny_detector.sha256 == report["sha256"]
    result = evaluate_detector(
        tiny_detector, synth_root, "test", device=torch.device("cpu"), min_size=128, max_size=213
    )
    for group, metrics in report["baseline_cpu"]["test"].items():
        for key in ("AP", "AP50", "AR"):
            assert result[group][key] == pytest.approx(metrics[key], abs=2e-3), (group, key)
    gap = result["male"]["AP"] - result["female"]["AP"]
    assert gap > 0.03
