"""The shipped tiny detector loads strictly, reproduces its reported baselines, and is biased
enough to study: an AP gap of at least 0.08 on val and on test, CIs excluding 0 (issue 16)."""

import json
from pathlib import Path

import pytest
import torch

import faapkit
from faapkit.train.pretrain import evaluate_detector

WEIGHTS = Path(faapkit.__file__).parent / "weights"
REPORT = WEIGHTS / "detr-synth-tiny.json"


@pytest.mark.parametrize("split", ["val", "test"])
def test_reproduces_reported_baseline(tiny_detector, synth_root, split):
    report = json.loads(REPORT.read_text())
    assert tiny_detector.sha256 == report["sha256"]
    result = evaluate_detector(
        tiny_detector, synth_root, split, device=torch.device("cpu"), min_size=128, max_size=213
    )
    for group, metrics in report["baseline_cpu"][split].items():
        for key in ("AP", "AP50", "AR"):
            assert result[group][key] == pytest.approx(metrics[key], abs=2e-3), (group, key)
    gap = result["male"]["AP"] - result["female"]["AP"]
    assert gap >= 0.08
    low, high = report["baseline_gap"][split]["ci95"]
    assert 0 < low < gap < high


def test_the_former_detector_is_kept_for_runs_trained_against_it():
    from faapkit.cli.eval_guards import FORMER_TINY_SHA256
    from faapkit.detr.build import file_sha256

    former = json.loads((WEIGHTS / "detr-synth-tiny-v1.json").read_text())
    assert file_sha256(WEIGHTS / "detr-synth-tiny-v1.pth") == former["sha256"] == FORMER_TINY_SHA256
