"""``faap eval`` end to end on box-level groups: a tiny mixed-group benchmark written by
``faap data synth --mixed``, the shipped tiny detector, its rescore. Runs ``faap`` in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import faap_in_process, one_error

faap = faap_in_process


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixed") / "m"
    from faapkit.cli import main

    try:
        main(["data", "synth", str(out), "--mixed", "--images", "9", "--seed", "1"])
    except SystemExit as exc:
        assert not exc.code
    return out / "coco"


def test_eval_scores_box_level_groups_and_rescores_them(mixed, tmp_path, capsys):
    out = tmp_path / "m.json"
    args = ["eval", "--data", str(mixed), "--detector", "detr-synth-tiny-v3", "--device", "cpu"]
    code, _, err = faap(capsys, *args, "--bootstrap", "20", "--out", str(out), "--quiet")
    assert code == 0, err
    m = json.loads(out.read_text())
    assert m["group_level"] == "box"
    assert {g: v["images"] for g, v in m["groups"].items()} == {"female": 6, "male": 6}  # 3 mixed images in both
    assert m["dataset"]["images"] == 9
    for g in ("female", "male"):
        lo, hi = m["bootstrap"]["groups"]["baseline"][g]["AP"]
        assert lo <= m["metrics"]["baseline"][g]["AP"] <= hi
    assert "the groups an image holds" in m["bootstrap"]["method"]
    code, _, err = faap(capsys, "eval", "--rescore", str(out), "--bootstrap", "20", "--quiet")
    assert code == 0, err
    rescored = json.loads(out.with_name("m_rescored.json").read_text())
    assert rescored["metrics"] == m["metrics"] and rescored["bootstrap"]["gaps"] == m["bootstrap"]["gaps"]


def test_a_group_no_box_holds_is_refused(mixed, tmp_path, capsys):
    args = ["eval", "--data", str(mixed), "--detector", "detr-synth-tiny-v3", "--device", "cpu", "--quiet"]
    code, _, err = faap(capsys, *args, "--disadvantaged", "nonbinary", "--out", str(tmp_path / "n.json"))
    one_error(
        err, 2, code, "--disadvantaged 'nonbinary' is not a group of 'gender' in split 'test' (groups: female, male)"
    )


def test_synth_images_go_with_mixed_only(tmp_path, capsys):
    code, _, err = faap(capsys, "data", "synth", str(tmp_path / "s"), "--images", "3")
    one_error(err, 2, code, "--images takes at least 1 and goes with --mixed")


def test_the_probe_refuses_box_level_groups_naming_the_dataset(mixed, tmp_path, capsys):
    args = ["probe", "headroom", "--data", str(mixed), "--detector", "detr-synth-tiny-v3", "--device", "cpu"]
    code, _, err = faap(capsys, *args, "--out", str(tmp_path / "p.json"), "--steps", "1", "--bootstrap", "0")
    one_error(err, 2, code, f"{mixed}: split 'test' has box-level 'gender' groups (on each person's box)")
    assert not (tmp_path / "p.json").exists()


def test_a_box_of_a_third_group_leaves_the_pairs_gap_and_is_stated_apart(mixed, tmp_path, capsys):
    """Baseline only (no run names the pair): one box of another group must not turn the gap
    female -> male into max - min over three groups."""
    import shutil

    data = tmp_path / "coco"
    shutil.copytree(mixed, data)
    ann = data / "annotations" / "instances_test.json"
    coco = json.loads(ann.read_text())
    coco["annotations"][0]["attributes"]["gender"] = "nonbinary"
    ann.write_text(json.dumps(coco))
    out = tmp_path / "m.json"
    args = ["eval", "--data", str(data), "--detector", "detr-synth-tiny-v3", "--device", "cpu"]
    code, _, err = faap(capsys, *args, "--bootstrap", "0", "--out", str(out))
    assert code == 0, err
    m = json.loads(out.read_text())
    assert set(m["groups"]) == {"female", "male", "nonbinary"}
    assert m["reference"]["disadvantaged"] == "female" and m["reference"]["advantaged"] == "male"
    assert m["reference"]["other_groups"] == ["nonbinary"]
    ap = {g: m["metrics"]["baseline"][g]["AP"] for g in m["groups"]}
    assert ap["nonbinary"] not in (ap["male"], ap["female"])  # max - min would differ from the pair's
    assert m["gaps"]["AP"]["baseline"] == pytest.approx(ap["male"] - ap["female"])
    from faapkit.cli.eval_table import caption

    assert "gap = male - female" in caption(m) and "nonbinary outside the gap" in caption(m)
