"""``faap eval`` never leaves a number that no longer describes its result: ``--force`` takes the
rescores of the result it replaces with it, and compare leaves out a rescore whose detections
changed. Runs ``faap`` in-process on a 3 + 3 image split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from faapkit.cli import main
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from tests.conftest import compare_json, faap_in_process, one_error, one_step_4th_run

faap = faap_in_process
REG = Registries.from_plugin_manager(make_plugin_manager())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A one-step run of the 4th version on 4 + 4 train and 3 + 3 test images."""
    return one_step_4th_run(tmp_path_factory.mktemp("numbers"), "eval.bootstrap=12")


@pytest.fixture(scope="module")
def evaluated(run) -> Path:
    try:
        main(["eval", str(run), "--device", "cpu", "--json", "--quiet"])
    except SystemExit as exc:
        assert not exc.code
    (path,) = (run / "eval").glob("*.json")
    return path


def _change_detections(metrics: Path, setting: str = "perturbed") -> None:
    """What a new evaluation of another checkpoint does: other detections, and the metrics file
    that references them recording their sha256."""
    import hashlib

    m = json.loads(metrics.read_text())
    det = metrics.parent / m["detections"][setting]["file"]
    doc = json.loads(gzip.decompress(det.read_bytes()))
    doc["detections"][0]["score"] = 0.123
    data = gzip.compress(json.dumps(doc).encode(), mtime=0)
    det.write_bytes(data)
    m["detections"][setting]["sha256"] = hashlib.sha256(data).hexdigest()
    metrics.write_text(json.dumps(m))


def test_force_removes_the_rescores_of_the_result_it_replaces(run, evaluated, capsys, tmp_path):
    code, _, err = faap(capsys, "eval", "--rescore", str(evaluated), "--bootstrap", "20", "--quiet")
    assert code == 0, err
    beside = evaluated.with_name(evaluated.stem + "_rescored_boot20.json")
    assert beside.is_file()
    elsewhere = tmp_path / "kept.json"
    code, _, err = faap(capsys, "eval", "--rescore", str(evaluated), "--out", str(elsewhere), "--quiet")
    assert code == 0, err
    unrelated = evaluated.with_name(evaluated.stem + "_rescored_x.json")
    unrelated.write_text(json.dumps({"rescored_from": {"metrics": "/somewhere/else.json"}}))
    code, _, err = faap(capsys, "eval", str(run), "--device", "cpu", "--force", "--quiet", "--json")
    assert code == 0, err
    assert not beside.exists() and str(beside) in err.replace("\n", "")  # removed, and said
    assert unrelated.exists()  # a file of that name that is no rescore of this result stays
    unrelated.unlink()
    # a rescore written elsewhere cannot be found: compare checks its detections instead
    kept = {f: f.read_bytes() for f in (run / "eval").iterdir()}
    _change_detections(evaluated)
    found, err = compare_json(str(run), str(elsewhere))
    assert [r["split"] for r in found["rows"]] == ["test"]  # the evaluation only
    assert str(elsewhere) in err.replace("\n", "") and "changed since" in err
    code, _, err = faap(capsys, "eval", "--rescore", str(elsewhere), "--quiet")
    one_error(err, 1, code, "sha256 differs")
    code, out, _ = faap(capsys, "inspect", "run", str(run), "--json")
    assert code == 0 and json.loads(out)["stale_rescores"] == {}
    stale = evaluated.with_name(evaluated.stem + "_rescored_moved.json")
    moved = json.loads(elsewhere.read_text())  # the rescore written elsewhere, moved beside its evaluation
    for ref in moved["detections"].values():
        ref["file"] = Path(ref["file"]).name
    stale.write_text(json.dumps(moved))
    code, out, _ = faap(capsys, "inspect", "run", str(run), "--json")
    assert "changed since" in json.loads(out)["stale_rescores"][stale.name]
    stale.unlink()
    for f, data in kept.items():  # the evaluation as it was made, for the tests that rescore it
        f.write_bytes(data)


def test_empty_iou_thresholds_are_cocos_as_the_description_says(evaluated, capsys, tmp_path):
    from faapkit.config import EvalConfig
    from faapkit.evaluate.command.settings import resolve, set_layers

    assert "empty = COCO's" in str(EvalConfig.model_fields["iou_thresholds"].description)
    cfg, sources = resolve([("--set", set_layers(["eval.iou_thresholds=[]"])[0])])
    assert cfg.iou_thresholds is None and sources["iou_thresholds"] == "--set"
    out = tmp_path / "coco.json"
    code, _, err = faap(
        capsys, "eval", "--rescore", str(evaluated), "--set", "eval.iou_thresholds=[]", "--out", str(out)
    )
    assert code == 0, err
    rescored, original = json.loads(out.read_text()), json.loads(evaluated.read_text())
    # the baseline: the perturbed detections were changed by an earlier test of this module
    assert rescored["eval_config"]["iou_thresholds"] is None
    assert rescored["metrics"]["baseline"] == original["metrics"]["baseline"]


def test_each_setting_names_its_real_source(run, capsys, tmp_path):
    """The run stores its whole [eval] section; only what it changed (bootstrap) is its own."""
    cfg = tmp_path / "eval.toml"
    cfg.write_text("[eval]\nseed = 3\n")
    out = tmp_path / "m.json"
    args = ("--config", str(cfg), "--set", "eval.confidence=0.9", "--iou", "0.5", "--no-amp", "--out", str(out))
    code, _, err = faap(capsys, "eval", str(run), "--device", "cpu", "--quiet", *args)
    assert code == 0, err
    sources = json.loads(out.read_text())["eval_config_sources"]
    assert sources == {
        "split": "default",
        "batch_size": "default",
        "bootstrap": "the run's config",
        "seed": f"--config {cfg}",
        "confidence": "--set",
        "iou_thresholds": "--iou",
        "amp": "--no-amp",
        "channels_last": "default",
        "save_detections": "default",
        "coco_backend": "default",
    }
    code, _, err = faap(capsys, "eval", str(run), "--device", "cpu", "--batch-size", "0")
    one_error(err, 2, code, "--batch-size")


def test_rescore_with_another_pair_of_groups_needs_no_inference(evaluated, capsys):
    """Every image is perturbed alike, so the gap's groups are a choice of scoring: swapping them
    flips the gaps' sign and is written under its own name."""
    original = json.loads(evaluated.read_text())
    swap = ("--disadvantaged", "male", "--advantaged", "female", "--quiet", "--bootstrap", "0")
    code, _, err = faap(capsys, "eval", "--rescore", str(evaluated), *swap)
    assert code == 0, err
    written = evaluated.with_name(evaluated.stem + "_rescored_ref-male-female_boot0.json")
    swapped = json.loads(written.read_text())
    assert (swapped["reference"]["disadvantaged"], swapped["reference"]["advantaged"]) == ("male", "female")
    assert swapped["gaps"]["AP"]["baseline"] == -original["gaps"]["AP"]["baseline"]
    assert swapped["timing_s"]["inference"] == 0.0
    for args, says in (
        (("--disadvantaged", "male", "--advantaged", "male"), "both 'male'"),
        (("--disadvantaged", "nobody"), "'nobody' is not a group of 'gender'"),
    ):
        code, _, err = faap(
            capsys, "eval", "--rescore", str(evaluated), *args, "--out", str(written.with_name("x.json"))
        )
        one_error(err, 2, code, says)


def test_out_never_replaces_a_run_artefact_even_with_force(run, evaluated, capsys, tmp_path):
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    before = {p: p.read_bytes() for p in (run / "run.json", notes)}
    for out in (run / "run.json", run / "checkpoints" / "x.pt", tmp_path / "a.perturbed.dets.json.gz", notes):
        for args in ([str(run), "--device", "cpu"], ["--rescore", str(evaluated)]):
            code, _, err = faap(capsys, "eval", *args, "--out", str(out), "--force", "--quiet")
            one_error(err, 1, code, f"--out {out}")
    assert {p: p.read_bytes() for p in before} == before
    assert not (run / "checkpoints" / "x.pt").exists()


def test_a_checkpoint_of_another_run_dropped_into_the_run_is_refused(run, capsys):
    """Its numbers would be filed as this run's (and compare would list them under this run's
    version); by the highest step it would even be the one evaluated."""
    import torch

    last = run / "checkpoints" / "last.pt"
    ckpt = torch.load(last, weights_only=False)
    foreign = run / "checkpoints" / "epoch_0009.pt"
    torch.save({**ckpt, "run_id": "0therrun0000000", "global_step": 99}, foreign)
    try:
        for args in ([str(run)], [str(foreign)]):
            code, _, err = faap(capsys, "eval", *args, "--device", "cpu", "--out", str(run / "x.json"))
            one_error(err, 1, code, "copied from another run")
    finally:
        foreign.unlink()
    assert not (run / "x.json").exists()


@pytest.mark.parametrize(
    ("pair", "written"),
    [
        (("--disadvantaged", "male", "--advantaged", "female"), "_ref-male-female"),  # another gap: its own file
        (("--disadvantaged", "female", "--advantaged", "male"), None),  # the run's own pair: the same evaluation
    ],
)
def test_an_evaluation_of_another_pair_of_groups_is_written_under_its_own_name(
    run, evaluated, capsys, tmp_path, pair, written
):
    """The file name did not encode --disadvantaged/--advantaged: the run's evaluation was refused as
    'the same checkpoint and settings', and with --force replaced by the other pair's gap."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    original = copy / "eval" / evaluated.name
    before = original.read_bytes()
    code, _, err = faap(capsys, "eval", str(copy), "--device", "cpu", "--quiet", "--bootstrap", "0", *pair)
    if written is None:
        one_error(err, 1, code, f"{original} already holds an evaluation")
    else:
        assert code == 0, err
        other = json.loads(original.with_name(original.stem + written + ".json").read_text())
        assert (other["reference"]["disadvantaged"], other["reference"]["advantaged"]) == pair[1::2]
    assert original.read_bytes() == before
