"""``faap eval``'s settings come from one place and are recorded; ``--rescore`` re-scores saved
detections without inference and refuses what it cannot trust; stdout is TSV off a terminal and a
table that fits 80 columns on one. Runs ``faap`` in-process on a 3 + 3 image split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from faapkit.cli import main
from faapkit.cli.eval_table import _width, tables
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from tests.conftest import faap_in_process, one_error, one_step_4th_run

faap = faap_in_process
REG = Registries.from_plugin_manager(make_plugin_manager())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A one-step run whose config sets ``eval.bootstrap = 12`` and ``eval.seed = 5``."""
    return one_step_4th_run(tmp_path_factory.mktemp("settings"), "eval.bootstrap=12", "eval.seed=5")


@pytest.fixture(scope="module")
def evaluated(run, tmp_path_factory) -> Path:
    """``faap eval RUN`` with a --config [eval] and --set layered over the run's settings."""
    cfg = tmp_path_factory.mktemp("cfg") / "eval.toml"
    cfg.write_text("[eval]\nseed = 7\nconfidence = 0.8\nbootstrap = 30\n")
    main_args = ["eval", str(run), "--device", "cpu", "--config", str(cfg), "--set", "eval.bootstrap=20", "--json"]
    try:
        main(main_args)
    except SystemExit as exc:
        assert not exc.code
    (path,) = (run / "eval").glob("*.json")
    return path


def test_settings_layer_and_are_recorded(evaluated):
    m = json.loads(evaluated.read_text())
    cfg, sources = m["eval_config"], m["eval_config_sources"]
    # defaults < the run's [eval] < --config < --set < flags, every value used
    assert (cfg["bootstrap"], cfg["seed"], cfg["confidence"]) == (20, 7, 0.8)
    assert sources["bootstrap"] == "--set" and sources["seed"].startswith("--config")
    assert sources["split"] == "default"  # the run stores its whole [eval] section, but did not change split
    boot = m["bootstrap"]
    assert (boot["resamples"], boot["seed"], boot["confidence"]) == (20, 7, 0.8)
    # overall beside the groups, gap and ratio (stated), a CI for each and for their change
    assert m["reference"]["ratio"] == "disadvantaged / advantaged"
    assert m["ratios"]["AP"]["baseline"] == pytest.approx(
        m["metrics"]["baseline"]["female"]["AP"] / m["metrics"]["baseline"]["male"]["AP"]
    )
    for key in ("overall", "overall_deltas", "ratios", "gaps", "deltas"):
        assert key in boot, key
    assert set(boot["gaps"]) == {"AP", "AR", "AP50", "AP75"}
    # the detections are referenced with their hash
    for setting in ("baseline", "perturbed"):
        assert (evaluated.parent / m["detections"][setting]["file"]).is_file()


def test_the_runs_settings_apply_without_flags(run, capsys, tmp_path):
    code, out, err = faap(capsys, "eval", str(run), "--device", "cpu", "--out", str(tmp_path / "m.json"), "--json")
    assert code == 0, err
    m = json.loads(out)
    assert m["bootstrap"]["resamples"] == 12 and m["bootstrap"]["seed"] == 5
    assert m["eval_config_sources"]["bootstrap"] == "the run's config"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--set", "eval.nosuch=1"], 2, "unknown key 'eval.nosuch'"),
        (["--set", "train.lr=1"], 2, "faap eval --set takes eval.<key>=value"),
        (["--set", "eval.confidence=1.5"], 2, "eval.confidence"),
        (["--confidence", "0"], 2, "(--confidence)"),
        (["--set", "eval.bootstrap=5"], 2, "eval.bootstrap must be 0 (no CIs) or at least 10"),
        (["--iou", "0.75", "--iou", "0.5"], 2, "increasing"),
        (["--seed", "-1"], 2, "eval.seed"),  # numpy refuses a negative seed after inference
    ],
)
def test_bad_settings_are_one_line_naming_key_and_layer(run, capsys, args, code, says):
    got, _, err = faap(capsys, "eval", str(run), "--device", "cpu", *args)
    one_error(err, code, got, says)


def test_rescore_reproduces_then_rescores_without_inference(evaluated, capsys):
    original = json.loads(evaluated.read_text())
    code, out, err = faap(capsys, "eval", "--rescore", str(evaluated), "--json")
    assert code == 0, err
    same = json.loads(out)
    for key in ("metrics", "overall", "gaps", "ratios", "deltas", "bootstrap"):
        assert same[key] == original[key], key  # bit-identical for the same settings
    assert same["rescored_from"]["metrics"] == str(evaluated) and same["timing_s"]["inference"] == 0.0
    again = evaluated.with_name(evaluated.stem + "_rescored.json")
    assert json.loads(again.read_text()) == same
    code, _, err = faap(capsys, "eval", "--rescore", str(evaluated))
    one_error(err, 1, code, "--force")
    args = ("--bootstrap", "40", "--seed", "1", "--confidence", "0.9", "--iou", "0.5")
    code, out, err = faap(capsys, "eval", "--rescore", str(evaluated), *args, "--json")
    assert code == 0, err
    other = json.loads(out)
    assert (other["bootstrap"]["resamples"], other["bootstrap"]["seed"], other["bootstrap"]["confidence"]) == (
        40,
        1,
        0.9,
    )
    for per in other["metrics"].values():
        for g in per.values():
            assert g["AP"] == g["AP50"] and g["AP75"] is None
    written = evaluated.with_name(evaluated.stem + "_rescored_boot40_seed1_conf0.9_iou0.5.json")
    assert json.loads(written.read_text()) == other
    assert json.loads(evaluated.read_text()) == original  # never touched


def test_rescore_refusals(evaluated, run, capsys, tmp_path):
    m = json.loads(evaluated.read_text())
    det = evaluated.parent / m["detections"]["perturbed"]["file"]
    for args, code, says in (
        (["--epsilon", "0.1"], 2, "--epsilon needs a new inference"),
        (["--codec", "png"], 2, "--rescore scores the saved detections again; --codec needs a new inference"),
        (["--exported", str(tmp_path / "p.onnx")], 2, "--rescore scores the saved detections again; --exported"),
        (["--batch-size", "2"], 2, "eval.batch_size = 2 (--batch-size) changes the detections"),
        (["--data", str(run.parent / "s" / "coco"), "--set", "eval.amp=true"], 2, "eval.amp"),
    ):
        got, _, err = faap(capsys, "eval", "--rescore", str(evaluated), *args)
        one_error(err, code, got, says)
    other = write_synthetic(tmp_path / "o", SynthSpec(seed=9, splits=(("test", 3, 3),))) / "coco"
    got, _, err = faap(capsys, "eval", "--rescore", str(evaluated), "--data", str(other), "--out", str(tmp_path / "x"))
    one_error(err, 1, got, "fingerprint")
    saved_bytes = det.read_bytes()
    doc = json.loads(gzip.decompress(saved_bytes))
    doc["detections"][0]["score"] = 0.5
    det.write_bytes(gzip.compress(json.dumps(doc).encode()))
    try:
        got, _, err = faap(capsys, "eval", "--rescore", str(evaluated), "--out", str(tmp_path / "y.json"))
        one_error(err, 1, got, "sha256 differs")
        det.unlink()
        got, _, err = faap(capsys, "eval", "--rescore", str(evaluated), "--out", str(tmp_path / "y.json"))
        one_error(err, 1, got, "is missing")
    finally:
        det.write_bytes(saved_bytes)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y.json").exists()


def test_rescore_refuses_an_edited_metrics_file_naming_the_key(evaluated, capsys, tmp_path):
    """A metrics JSON edited by hand (or by a script) is refused with its key named, never scored
    into numbers of the wrong setting or an 'unexpected' error."""
    m = json.loads(evaluated.read_text())
    got, _, err = faap(capsys, "eval", "--rescore", str(evaluated), "--set", "eval.seed=-3")
    one_error(err, 2, got, "eval.seed")
    swapped = {**m, "detections": {"baseline": m["detections"]["perturbed"], "perturbed": m["detections"]["baseline"]}}
    for edit, says in (
        (swapped, "holds the perturbed detections, not the baseline ones"),
        ({**m, "detections": ["x"]}, "'detections'"),
        ({k: v for k, v in m.items() if k != "split"}, "'split'"),
        ({k: v for k, v in m.items() if k != "groups"}, "'groups'"),
        ({**m, "dataset": {k: v for k, v in m["dataset"].items() if k != "root"}}, "'dataset.root'"),
    ):
        edited = evaluated.parent / "edited.json"
        edited.write_text(json.dumps(edit))
        try:
            got, _, err = faap(capsys, "eval", "--rescore", str(edited), "--out", str(tmp_path / "e.json"))
        finally:
            edited.unlink()
        one_error(err, 1, got, says)
    assert not (tmp_path / "e.json").exists()


def test_out_naming_a_folder_is_refused_before_any_work(evaluated, run, capsys, tmp_path):
    for args in (["--rescore", str(evaluated)], [str(run), "--device", "cpu"]):
        got, _, err = faap(capsys, "eval", *args, "--out", str(tmp_path), "--force")
        one_error(err, 1, got, f"--out {tmp_path} is a folder")
    assert list(tmp_path.iterdir()) == []


def test_stdout_is_tsv_off_a_terminal_and_the_table_fits_80_columns(evaluated, capsys, tmp_path):
    code, out, err = faap(capsys, "eval", "--rescore", str(evaluated), "--out", str(tmp_path / "t.json"))
    assert code == 0, err
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert rows[0][:5] == ["metric", "row", "baseline", "baseline_ci_low", "baseline_ci_high"]
    assert rows[0][-1] == "change_significant" and all(len(r) == len(rows[0]) for r in rows)
    assert [r[1] for r in rows[1:6]] == ["female", "male", "overall", "gap", "ratio"]
    m = json.loads((tmp_path / "t.json").read_text())
    assert float(rows[4][2]) == pytest.approx(m["gaps"]["AP"]["baseline"], abs=1e-6)  # the gap under its column
    (table,) = tables(m, 80)
    assert _width(table) <= 80
    for narrow in tables(m, 50):  # narrower: one table per column, numbers never cut
        assert _width(narrow) <= 50
