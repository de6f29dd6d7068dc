"""The input size comes from the detector (``DetectorSpec.min_size`` / ``max_size`` /
``train_scales``): upstream DETR at 800 / 1333, the tiny detectors at 128 / 213. ``faap train``
and ``faap eval`` use it unless ``data.min_size`` / ``data.max_size`` are set (defaults < the
run's stored config < ``--config`` < ``--set``), and the metrics JSON says which size and where it
came from (``input_size``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from faapkit.config import resolve_config
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from tests.conftest import faap_in_process, one_error

faap = faap_in_process
REG = Registries.from_plugin_manager(make_plugin_manager())
UPSTREAM = (800, 1333, list(range(480, 801, 32)))
TINY = (128, 213, [112, 120, 128, 136, 144])


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("detr-r50", UPSTREAM), ("detr-r101", UPSTREAM), ("detr-r18-d64", UPSTREAM)]
    + [(n, TINY) for n in ("detr-synth-tiny", "detr-synth-tiny-v2", "detr-synth-tiny-v3")],
)
def test_each_detector_has_its_input_size(name, sizes):
    spec = REG.detectors.get(name)
    assert (spec.min_size, spec.max_size, list(spec.train_scales)) == sizes
    data = resolve_config(REG, version="4th", overrides=[f"detector.name='{name}'"]).data
    assert (data.min_size, data.max_size, data.train_scales) == sizes  # faap train follows it


def test_training_sizes_set_by_the_user_or_stored_by_a_run_win():
    cfg = resolve_config(REG, version="4th", overrides=["detector.name='detr-r50'", "data.min_size=640"])
    assert (cfg.data.min_size, cfg.data.max_size) == (640, 1333)  # each key on its own
    stored = cfg.model_dump(mode="json")
    stored["data"].update(min_size=128, max_size=213)  # a run trained before sizes followed the detector
    resumed = resolve_config(REG, version="4th", base=stored)
    assert (resumed.data.min_size, resumed.data.max_size) == (128, 213)  # it keeps what it trained with


@pytest.mark.parametrize(("name", "sizes"), [("detr-r50", UPSTREAM), ("detr-synth-tiny-v3", TINY)])
def test_train_scales_eval_is_the_detectors_eval_scale(name, sizes):
    """``data.train_scales: eval`` means ``[min_size]`` for any detector: level-up asks for it by
    default, and a size the user sets (here or in ``min_size``) is the one it follows."""
    det = f"detector.name='{name}'"
    for version in ("4th", "level-up"):
        extra = ["data.train_scales='eval'"] if version == "4th" else []
        assert resolve_config(REG, version=version, overrides=[det, *extra]).data.train_scales == [sizes[0]]
    moved = resolve_config(REG, version="level-up", overrides=[det, "data.min_size=640"]).data
    assert (moved.min_size, moved.train_scales) == (640, [640])
    mine = resolve_config(REG, version="level-up", overrides=[det, "data.train_scales=[96, 160]"]).data
    assert mine.train_scales == [96, 160]
    assert resolve_config(REG, version="4th", overrides=[det]).data.train_scales == sizes[2]  # others: untouched


@pytest.fixture(scope="module")
def r18(tmp_path_factory) -> tuple[Path, Path]:
    """A 1 + 1 image test split and upstream-layout weights of ``detr-r18-d64`` (random, seeded)."""
    base = tmp_path_factory.mktemp("r18")
    root = write_synthetic(base / "s", SynthSpec(seed=2, splits=(("test", 1, 1),))) / "coco"
    torch.manual_seed(0)
    weights = base / "r18.pth"
    torch.save({"model": REG.detectors.get("detr-r18-d64").build().model.state_dict()}, weights)
    return root, weights


def _eval(capsys, root: Path, weights: Path, out: Path, *extra: str) -> dict:
    args = ["eval", "--data", str(root), "--detector", "detr-r18-d64", "--detector-checkpoint", str(weights)]
    code, _, err = faap(capsys, *args, "--bootstrap", "0", "--device", "cpu", "--quiet", "--out", str(out), *extra)
    assert code == 0, err
    return json.loads(out.read_text())


def test_eval_runs_an_upstream_detr_at_its_size_and_records_it(r18, tmp_path, capsys):
    root, weights = r18
    m = _eval(capsys, root, weights, tmp_path / "m.json")
    assert m["input_size"] == {"min_size": 800, "max_size": 1333, "source": "detector 'detr-r18-d64'"}
    assert (m["eval"]["min_size"], m["eval"]["max_size"]) == (800, 1333)
    m = _eval(capsys, root, weights, tmp_path / "s.json", "--set", "data.min_size=96", "--set", "data.max_size=160")
    assert m["input_size"] == {"min_size": 96, "max_size": 160, "source": "--set"}
    assert (m["eval"]["min_size"], m["eval"]["max_size"]) == (96, 160)
    code, _, err = faap(capsys, "eval", "--rescore", str(tmp_path / "s.json"), "--set", "data.min_size=800")
    one_error(err, 2, code, "data.min_size = 800 (--set) changes the detections")
    code, _, err = faap(capsys, "eval", "--rescore", str(tmp_path / "s.json"), "--set", "data.min_size=96", "--quiet")
    assert code == 0, err  # the recorded size is no change
    rescored = json.loads((tmp_path / "s_rescored.json").read_text())
    assert rescored["input_size"] == m["input_size"] and rescored["metrics"] == m["metrics"]
