"""The benchmarks' ``deploy`` section at one repeat: its rows and table (no timing is asserted:
the machine is shared)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.deploy import DetectorOnly, fair_detector, section_deploy, table


@pytest.mark.slow  # traces and exports four modules (~25 s on a busy 2-core machine)
def test_rows_pair_the_detector_alone_with_the_fair_detector_per_runtime_and_batch():
    rows = section_deploy(repeat=1, batches=(1,), runtimes=("eager", "torchscript"), warmup=0)
    assert [(r["generator"], r["runtime"]) for r in rows] == [
        ("transformer-aware", "eager"),
        ("subpixel", "eager"),
        ("transformer-aware", "torchscript"),
        ("subpixel", "torchscript"),
    ]
    for r in rows:
        assert r["ratio"] == r["fair_ms"].median / r["detector_ms"].median > 0
        assert (r["bound"] is None) == (r["generator"] == "subpixel" or r["runtime"] != "eager")
    assert "transformer-aware" in table(rows) and "torchscript" in table(rows)


def test_the_timed_modules_give_detections_of_one_shape(tiny_detector):
    images = torch.rand(2, 3, 64, 80)
    boxes, scores, labels = DetectorOnly(tiny_detector)(images)
    fair_boxes, fair_scores, _ = fair_detector("subpixel", tiny_detector)(images)
    assert boxes.shape == fair_boxes.shape == (2, tiny_detector.num_queries, 4)
    assert scores.shape == fair_scores.shape == labels.shape
