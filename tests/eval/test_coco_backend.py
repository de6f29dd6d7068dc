"""``eval.coco_backend = "faster-coco-eval"`` gives pycocotools' numbers: all 12 stats per group
and overall on real detections of the shipped tiny detector (image-level groups of the embedded
benchmark, box-level groups of its mixed variant), the same bootstrap CIs, a recorded backend in
``faap eval``'s JSON, and a one-line refusal naming the extra when the package is missing.

Equality: AR stats are equal bit for bit; AP stats to 1e-15. faster-coco-eval's C++ accumulate
takes precision as ``tp / (tp + fp)`` where pycocotools adds ``np.spacing(1)`` to the
denominator; the two differ only where ``tp + fp == 1`` (1.0 against 1 - 2**-52), i.e. at the
first detection of a curve when it is a true positive, which shows in the 16th digit of an AP
whose precision envelope is set there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from faapkit.data.coco import load_split
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.data.synth_mixed import MixedSpec, write_mixed
from faapkit.distributed import DistInfo
from faapkit.errors import ConfigError
from faapkit.evaluate.coco_backend import BACKENDS, FASTER_COCO_EVAL, PYCOCOTOOLS
from faapkit.evaluate.cocoeval import STAT_KEYS, evaluate_split, make_coco
from faapkit.evaluate.evaluator import run_detections
from faapkit.evaluate.requests import EvalRequest
from faapkit.evaluate.scoring import score
from faapkit.fairness import reference_groups
from tests.conftest import faap_in_process, one_error

AP_TOLERANCE = 1e-15  # see the module docstring
IOUS = (None, [0.5, 0.75], [0.3, 0.5, 0.7])  # COCO's, the two named ones, 0.5 without 0.75


def assert_same_stats(a: dict[str, float | None], b: dict[str, float | None], where: str) -> None:
    """The 12 stats of pycocotools (``a``) and faster-coco-eval (``b``): AR exact, AP to 1e-15."""
    assert list(a) == list(b) == list(STAT_KEYS)
    for key in STAT_KEYS:
        x, y = a[key], b[key]
        if x is None or y is None or key.startswith("AR"):
            assert x == y, f"{where} {key}: {x!r} != {y!r}"
        else:
            assert abs(x - y) <= AP_TOLERANCE, f"{where} {key}: {x!r} != {y!r}"


def assert_same_split(coco_gt: Any, dets: list[dict[str, Any]], groups: dict[str, list[int]]) -> int:
    """Per group and overall, at each of ``IOUS``; returns how many stats were numbers."""
    numbers = 0
    for iou in IOUS:
        per_a, all_a = evaluate_split(coco_gt, dets, groups, iou, PYCOCOTOOLS)
        per_b, all_b = evaluate_split(coco_gt, dets, groups, iou, FASTER_COCO_EVAL)
        assert list(per_a) == list(per_b) == list(groups)
        for g in groups:
            assert_same_stats(per_a[g], per_b[g], f"{g} at IoU {iou}")
            numbers += sum(v is not None for v in per_a[g].values())
        assert_same_stats(all_a, all_b, f"overall at IoU {iou}")
    return numbers


def _detections(data: Any, tiny_detector: Any) -> list[list[dict[str, Any]]]:
    """The baseline detections of ``data`` (one setting)."""
    req = EvalRequest(data=data, detector=tiny_detector, device=torch.device("cpu"), num_workers=0)
    return run_detections(req, [None], DistInfo())


@pytest.fixture(scope="module")
def image_level(gender_detections):
    """48 test images of the embedded benchmark by gender, baseline and perturbed detections."""
    data, base, pert = gender_detections
    return data, (base, pert)


def test_the_backends_are_the_settings_choices():
    from typing import get_args

    from faapkit.config import EvalConfig

    assert get_args(EvalConfig.model_fields["coco_backend"].annotation) == BACKENDS
    assert EvalConfig().coco_backend == PYCOCOTOOLS
    from tests.eval.test_box_groups import BASE, GROUPS, _gt

    with pytest.raises(ConfigError, match="not a faster COCO backend: 'pycocotool'"):
        evaluate_split(make_coco(_gt()), BASE, GROUPS, None, "pycocotool")


def test_image_level_groups_score_the_same(image_level):
    data, (base, pert) = image_level
    groups = data.group_images()
    assert set(groups) == {"female", "male"} and len(base) > 500
    coco_gt = make_coco(data.coco_gt)
    assert assert_same_split(coco_gt, base, groups) > 50
    assert assert_same_split(coco_gt, pert, groups) > 50


def test_box_level_groups_score_the_same(tmp_path, tiny_detector):
    """Mixed images: group g's AP with the other group's boxes as ignore regions."""
    data = load_split(write_mixed(tmp_path / "m", MixedSpec(seed=0, images=36)) / "coco", "test")
    assert data.group_level == "box"
    groups = data.group_images()
    mixed = set(groups["female"]) & set(groups["male"])
    assert mixed and set(groups["female"]) != mixed
    (base,) = _detections(data, tiny_detector)
    coco_gt = make_coco(data.coco_gt)
    assert assert_same_split(coco_gt, base, groups) > 50
    # the ignore regions are applied: a group's AP is not that of every box on its images
    every_box = make_coco({k: v for k, v in data.coco_gt.items() if k != "group_level"})
    per_group, _ = evaluate_split(coco_gt, base, groups, None, FASTER_COCO_EVAL)
    no_ignore, _ = evaluate_split(every_box, base, groups, None, FASTER_COCO_EVAL)
    assert per_group != no_ignore


def test_a_detection_on_another_groups_box_is_ignored_by_both():
    """The hand-made case of tests/eval/test_box_groups.py, scored by each backend."""
    from tests.eval.test_box_groups import BASE, GROUPS, M1, _det, _gt

    coco = make_coco(_gt())
    for dets in (BASE, [*BASE, _det(1, M1, 0.99)], [*BASE, _det(1, M1, 0.99), _det(1, M1, 0.98)]):
        per_a, all_a = evaluate_split(coco, dets, GROUPS, None, PYCOCOTOOLS)
        per_b, all_b = evaluate_split(coco, dets, GROUPS, None, FASTER_COCO_EVAL)
        for g in GROUPS:
            assert_same_stats(per_a[g], per_b[g], g)
        assert_same_stats(all_a, all_b, "overall")


def test_score_and_its_bootstrap_are_the_same(image_level):
    data, (base, pert) = image_level
    groups = data.group_images()
    coco_gt = make_coco(data.coco_gt)
    ref = reference_groups(list(groups), "female", "male")
    settings = {"baseline": base, "perturbed": pert}
    kw: dict[str, Any] = {"resamples": 60, "seed": 4, "confidence": 0.9}
    a = score(coco_gt, settings, groups, ref, backend=PYCOCOTOOLS, **kw)
    b = score(coco_gt, settings, groups, ref, backend=FASTER_COCO_EVAL, **kw)
    assert a["bootstrap"] == b["bootstrap"]  # the per-image records are pycocotools' either way
    assert a["bootstrap"]["gaps"]["AP"]["baseline"][0] < a["bootstrap"]["gaps"]["AP"]["baseline"][1]
    for name in settings:
        assert_same_stats(a["overall"][name], b["overall"][name], name)
        for g in groups:
            assert_same_stats(a["metrics"][name][g], b["metrics"][name][g], f"{name} {g}")
    for m in ("AP", "AR"):
        for name in settings:
            assert a["gaps"][m][name] == pytest.approx(b["gaps"][m][name], abs=2 * AP_TOLERANCE)


def test_a_missing_package_is_refused_naming_the_extra(monkeypatch):
    from faapkit.evaluate.command.settings import resolve

    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # import faster_coco_eval -> ImportError
    with pytest.raises(ConfigError, match=r"\(--set\) needs the faster-coco-eval package: pip install 'faapkit\["):
        resolve([("--set", {"coco_backend": FASTER_COCO_EVAL})])
    cfg, sources = resolve([("--set", {"coco_backend": PYCOCOTOOLS})])
    assert cfg.coco_backend == PYCOCOTOOLS and sources["coco_backend"] == "--set"


def test_faap_eval_refuses_a_missing_package_before_any_work(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)
    out = tmp_path / "m.json"
    code, _, err = faap_in_process(
        capsys, "eval", "--set", "eval.coco_backend=faster-coco-eval", "--device", "cpu", "--out", str(out)
    )
    one_error(err, 2, code, "pip install 'faapkit[fast-coco]'")
    assert not out.exists()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("fast") / "s", SynthSpec(seed=2, splits=(("test", 4, 4),))) / "coco"


def test_faap_eval_records_the_backend_and_a_rescore_may_change_it(small, tmp_path, capsys):
    path = tmp_path / "m.json"
    args = ("--bootstrap", "10", "--device", "cpu", "--quiet")
    code, _, err = faap_in_process(
        capsys, "eval", "--data", str(small), "--set", "eval.coco_backend=faster-coco-eval", *args, "--out", str(path)
    )
    assert code == 0, err
    m = json.loads(path.read_text())
    assert m["eval_config"]["coco_backend"] == FASTER_COCO_EVAL
    assert m["eval_config_sources"]["coco_backend"] == "--set"
    assert m["eval"]["coco_backend"] == FASTER_COCO_EVAL
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(path), "--set", "eval.coco_backend=pycocotools")
    assert code == 0, err
    again = json.loads((tmp_path / "m_rescored_pycocotools.json").read_text())  # tagged: another backend
    assert again["eval"]["coco_backend"] == again["eval_config"]["coco_backend"] == PYCOCOTOOLS
    assert again["bootstrap"] == m["bootstrap"]
    for g, stats in m["metrics"]["baseline"].items():
        assert_same_stats(again["metrics"]["baseline"][g], stats, g)


def test_faap_train_refuses_a_missing_backend_before_its_first_step(monkeypatch, capsys, tmp_path, small):
    """Before, the run trained to its end and was refused only by faap eval."""
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)
    run = tmp_path / "run"
    sets = ["--set", f"data.root={small}", "--set", "eval.coco_backend=faster-coco-eval", "--set", "train.epochs=1"]
    code, _, err = faap_in_process(capsys, "train", "--version", "4th", *sets, "--out", str(run), "--device", "cpu")
    one_error(err, 2, code, "eval.coco_backend = 'faster-coco-eval' (the run's eval.coco_backend, which its")
    assert "pip install 'faapkit[fast-coco]'" in err and not run.exists()
