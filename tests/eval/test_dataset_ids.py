"""Saved detections carry the dataset's own image ids: another tool (pycocotools, FACET's
scripts) scores them against the original annotation file and gets faap eval's numbers, and
``faap eval --rescore`` still reproduces them bit for bit. Where the dataset's ids repeat across
its annotation files (the research layout), faapkit's ids are kept and the map is in the JSON."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from faapkit.data.synth import SynthSpec, write_synthetic
from tests.conftest import faap_in_process

faap = faap_in_process
FIRST_ID = 397001  # a COCO val2017 image id: where FACET-style subsets start


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """A 3 + 3 image test split in both layouts (ids 1..6, unique across the research files)."""
    return write_synthetic(tmp_path_factory.mktemp("ids") / "s", SynthSpec(seed=2, splits=(("test", 3, 3),)))


@pytest.fixture(scope="module")
def coco_ids(synth, tmp_path_factory) -> Path:
    """The attributes layout with image ids from 397001 and annotation ids from 900001."""
    root = tmp_path_factory.mktemp("coco-ids") / "coco"
    shutil.copytree(synth / "coco", root)
    ann = root / "annotations" / "instances_test.json"
    doc = json.loads(ann.read_text())
    new = {img["id"]: FIRST_ID + i for i, img in enumerate(doc["images"])}
    for img in doc["images"]:
        img["id"] = new[img["id"]]
    for i, a in enumerate(doc["annotations"]):
        a["image_id"], a["id"] = new[a["image_id"]], 900001 + i
    ann.write_text(json.dumps(doc))
    return root


def _evaluate(capsys, root: Path, out: Path) -> dict:
    code, _, err = faap(
        capsys, "eval", "--data", str(root), "--bootstrap", "10", "--device", "cpu", "--quiet", "--out", str(out)
    )
    assert code == 0, err
    return json.loads(out.read_text())


def _detections(metrics_path: Path, m: dict) -> list[dict]:
    return json.loads(gzip.decompress((metrics_path.parent / m["detections"]["baseline"]["file"]).read_bytes()))[
        "detections"
    ]


def _pycocotools_ap(annotations: Path, dets: list[dict], img_ids: list[int] | None = None) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        if img_ids is not None:
            ev.params.imgIds = sorted(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_detections_keep_the_datasets_ids_and_pycocotools_agrees(coco_ids, tmp_path, capsys):
    path = tmp_path / "m.json"
    m = _evaluate(capsys, coco_ids, path)
    dets = _detections(path, m)
    assert {d["image_id"] for d in dets} == set(range(FIRST_ID, FIRST_ID + 6))
    assert m["image_ids"]["detections"] == "dataset" and "map" not in m["image_ids"]
    annotations = coco_ids / "annotations" / "instances_test.json"
    assert _pycocotools_ap(annotations, dets) == m["overall"]["baseline"]["AP"]
    images = json.loads(annotations.read_text())["images"]
    for group in ("female", "male"):
        ids = [img["id"] for img in images if img["attributes"]["gender"] == group]
        assert _pycocotools_ap(annotations, dets, ids) == m["metrics"]["baseline"][group]["AP"]
    code, _, err = faap(capsys, "eval", "--rescore", str(path), "--quiet")
    assert code == 0, err
    again = json.loads((tmp_path / "m_rescored.json").read_text())
    for key in ("metrics", "overall", "gaps", "ratios", "bootstrap"):
        assert again[key] == m[key], key  # bit for bit: the ids are translated back exactly


def test_repeated_ids_keep_faapkits_with_the_map(synth, tmp_path, capsys):
    root = tmp_path / "research"
    shutil.copytree(synth / "research", root)
    for ann in root.glob("*_split/gender_*_test.json"):  # each folder's file numbers its images from 1
        doc = json.loads(ann.read_text())
        new = {img["id"]: i + 1 for i, img in enumerate(doc["images"])}
        for img in doc["images"]:
            img["id"] = new[img["id"]]
        for a in doc["annotations"]:
            a["image_id"] = new[a["image_id"]]
        ann.write_text(json.dumps(doc))
    path = tmp_path / "r.json"
    m = _evaluate(capsys, root, path)
    record = m["image_ids"]
    assert record["detections"] == "faapkit"
    assert sorted(r[0] for r in record["map"]) == list(range(1, 7))  # faapkit id, file, the file's id
    assert {(r[1], r[2]) for r in record["map"]} == {
        (f"gender_{g}_test.json", i) for g in ("women", "men") for i in (1, 2, 3)
    }
    assert {d["image_id"] for d in _detections(path, m)} == set(range(1, 7))
    code, _, err = faap(capsys, "eval", "--rescore", str(path), "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "r_rescored.json").read_text())["metrics"] == m["metrics"]
