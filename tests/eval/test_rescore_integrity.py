"""``faap eval --rescore`` scores only the detections an evaluation made, and what reads rescores
says what they are: detections edited and re-hashed since are refused (scored at the recorded
settings they must give the recorded numbers), a changed dataset is named before an existing
output, ``faap inspect run`` lists a stale rescore whatever its name, and a rescore of a rescore
whose parent is gone is still the same evaluation in ``faap compare``."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from faapkit.data.synth import SynthSpec, write_synthetic
from tests.conftest import compare_json, faap_in_process, one_error, one_step_4th_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from faapkit.cli import main

    run = one_step_4th_run(tmp_path_factory.mktemp("rescore-integrity"), "eval.bootstrap=12")
    try:
        main(["eval", str(run), "--device", "cpu", "--quiet", "--json"])
    except SystemExit as exc:
        assert not exc.code
    return run


@pytest.fixture
def evaluated(run) -> Path:
    """The run's evaluation; what a test writes beside it is removed after it."""
    (path,) = [p for p in (run / "eval").glob("*.json") if "rescored" not in p.name]
    before = {p: p.read_bytes() for p in (run / "eval").iterdir()}
    yield path
    for p in (run / "eval").iterdir():
        if p not in before:
            p.unlink()
    for p, data in before.items():
        p.write_bytes(data)


def _rehashed_without_first_images(metrics: Path, setting: str = "perturbed") -> Path:
    """The ``setting`` detections with every detection of the first two images dropped, and the
    metrics file's sha256 of them updated to match (an edit that hides itself)."""
    m = json.loads(metrics.read_text())
    det = metrics.parent / m["detections"][setting]["file"]
    doc = json.loads(gzip.decompress(det.read_bytes()))
    first = sorted({d["image_id"] for d in doc["detections"]})[:2]
    doc["detections"] = [d for d in doc["detections"] if d["image_id"] not in first]
    data = gzip.compress(json.dumps(doc).encode(), mtime=0)
    det.write_bytes(data)
    m["detections"][setting].update(sha256=hashlib.sha256(data).hexdigest(), count=len(doc["detections"]))
    metrics.write_text(json.dumps(m))
    return det


def test_edited_and_rehashed_detections_are_refused(evaluated, capsys, tmp_path) -> None:
    det = _rehashed_without_first_images(evaluated)
    out = tmp_path / "r.json"
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(evaluated), "--out", str(out), "--quiet")
    one_error(err, 1, code, f"{det}: scored at the settings {evaluated.name} records, its perturbed detections give")
    assert "not the recorded" in err and not out.exists()


def test_a_rescore_at_other_settings_of_intact_detections_is_scored(evaluated, capsys) -> None:
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(evaluated), "--iou", "0.5", "--quiet")
    assert code == 0, err


def test_a_changed_dataset_is_named_before_an_existing_output(evaluated, capsys, tmp_path) -> None:
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(evaluated), "--quiet")
    assert code == 0, err  # the default output now exists
    other = write_synthetic(tmp_path / "other", SynthSpec(seed=3, splits=(("test", 3, 3),))) / "coco"
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(evaluated), "--data", str(other), "--quiet")
    one_error(err, 1, code, "has fingerprint")
    assert "already holds" not in err


def test_inspect_lists_a_stale_rescore_whatever_its_name(run, evaluated, capsys) -> None:
    mine = run / "eval" / "mine.json"
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(evaluated), "--out", str(mine), "--quiet")
    assert code == 0, err
    _rehashed_without_first_images(evaluated)  # what a new evaluation into the same file does
    code, out, err = faap_in_process(capsys, "inspect", "run", str(run), "--json")
    assert code == 0, err
    assert "changed since" in json.loads(out)["stale_rescores"]["mine.json"]


def test_a_rescore_of_a_rescore_whose_parent_is_gone_is_no_second_row(run, evaluated, capsys) -> None:
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(evaluated), "--set", "eval.seed=3", "--quiet")
    assert code == 0, err
    (first,) = (run / "eval").glob("*_rescored_seed3.json")
    code, _, err = faap_in_process(capsys, "eval", "--rescore", str(first), "--set", "eval.bootstrap=20", "--quiet")
    assert code == 0, err
    (second,) = (run / "eval").glob("*_rescored_seed3_rescored_boot20.json")
    first.unlink()
    found, notes = compare_json(str(run))
    assert len([r for r in found["rows"] if r["split"] == "test"]) == 1
    assert f"{second}: a rescore of {evaluated.name} (the same detections)" in notes.replace("\n", "")
