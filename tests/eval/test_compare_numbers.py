"""faap compare never shows a silently wrong number: faapkit's own loose metrics files are rows
(``faap eval --out FILE``, ``<checkpoint>.eval/``), a CI column says the level it was computed
at, and a copied run folder is one run, not two runs a mean would count twice."""

from __future__ import annotations

import json
import shutil

from tests.conftest import compare_json, fixture_path, run_here

NATIVE = "level-up-tiny"
TEST = "test_gender_best_first16.json"
VAL = "val_gender_best_first16.json"


def _metrics(name: str) -> dict:
    return json.loads(fixture_path("native_runs", NATIVE, "eval", name).read_text())


def test_loose_faapkit_metrics_files_are_rows_of_their_dataset(tmp_path):
    """``--out FILE`` of a run (it records the run) and a loose checkpoint's ``<ckpt>.eval/``
    folder (it records the checkpoint) are read like a run's ``eval/*.json``: rows, grouped by
    run or checkpoint, in the same dataset table as the run they were measured like."""
    run = tmp_path / NATIVE
    shutil.copytree(fixture_path("native_runs", NATIVE), run)
    out = _metrics(TEST)
    out["run"], out["epoch"] = str(tmp_path / "elsewhere-run"), 0
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "m.json").write_text(json.dumps(out))
    ckpt_eval = tmp_path / "c.eval"
    ckpt_eval.mkdir()
    for name in (TEST, VAL):
        m = _metrics(name)
        m.pop("run", None)
        m["checkpoint"], m["checkpoint_choice"], m["epoch"] = str(tmp_path / "c.pt"), "given", 5
        (ckpt_eval / name.replace("best", "c")).write_text(json.dumps(m))
    found, err = compare_json(str(tmp_path))
    assert "not a run or metrics file" not in err, err
    by_run: dict[str, list[dict]] = {}
    for r in found["rows"]:
        by_run.setdefault(r["run"], []).append(r)
    assert sorted(by_run) == sorted([NATIVE, "elsewhere-run", "c.pt"])
    assert sorted(r["split"] for r in by_run["c.pt"]) == ["test", "val"]  # one checkpoint, one run
    assert [(r["epoch"], r["split"], r["version"]) for r in by_run["elsewhere-run"]] == [(0, "test", "level-up")]
    assert by_run["elsewhere-run"][0]["AP_gap"] == next(r for r in by_run[NATIVE] if r["split"] == "test")["AP_gap"]
    assert found["datasets"] == ["synth-v1-seed0/coco"]  # the same dataset: one table
    # named one by one, a loose file is read too
    alone, err = compare_json(str(tmp_path / "loose" / "m.json"))
    assert [r["run"] for r in alone["rows"]] == ["elsewhere-run"] and "not a run" not in err


def test_an_out_file_of_a_run_is_that_runs_row_given_relative_paths(tmp_path):
    """The metrics record the run's absolute path; the user names both relative to the cwd."""
    run = tmp_path / NATIVE
    shutil.copytree(fixture_path("native_runs", NATIVE), run)
    out = _metrics(TEST)
    out["run"], out["epoch"] = str(run), 0
    (tmp_path / "m.json").write_text(json.dumps(out))
    code, stdout, err = run_here("compare", NATIVE, "m.json", "--json", cwd=tmp_path)
    assert code == 0, err
    rows = json.loads(stdout)["rows"]
    assert sorted((r["run"], r["epoch"], r["split"]) for r in rows) == [
        (NATIVE, 0, "test"),
        (NATIVE, 1, "test"),
        (NATIVE, 1, "val"),
    ]


def test_a_copied_run_folder_is_one_run_shown_once_with_both_paths(tmp_path):
    """Two folders with one run id (a ``cp -r``): one run, each evaluation one row naming both
    files, so that a mean over rows counts it once and --best-per-run sees one run; an epoch only
    the copy evaluated is still a row of that one run."""
    for parent in ("a", "b"):
        shutil.copytree(fixture_path("native_runs", NATIVE), tmp_path / parent / NATIVE)
    extra = _metrics(VAL)
    extra["epoch"] = 0
    extra["metrics"]["perturbed"]["female"]["AP"] = 0.1  # a wider gap than epoch 1's: val picks epoch 1
    (tmp_path / "b" / NATIVE / "eval" / "val_gender_epoch_0000_first16.json").write_text(json.dumps(extra))
    found, err = compare_json(str(tmp_path))
    rows = sorted((r["run"], r["epoch"], r["split"]) for r in found["rows"])
    assert rows == [(f"a/{NATIVE}", 0, "val"), (f"a/{NATIVE}", 1, "test"), (f"a/{NATIVE}", 1, "val")], rows
    test = next(r for r in found["rows"] if r["split"] == "test")
    assert test["also_at"] == [str(tmp_path / "b" / NATIVE / "eval" / TEST)]
    assert "one run" in err and str(tmp_path / "b" / NATIVE) in err
    assert [s["run"] for s in found["log_only"]] == [f"a/{NATIVE}"]
    assert found["log_only"][0]["epochs_logged"] == [2]  # once, and epoch 0 is evaluated (by the copy)
    best, _ = compare_json(str(tmp_path), "--best-per-run")
    assert [(r["run"], r["split"]) for r in best["rows"]] == [(f"a/{NATIVE}", "test")]


def test_the_same_evaluation_twice_is_one_row(tmp_path):
    """A research run folder copied, and a run's metrics file copied out of its eval/: each
    evaluation once, the copies named."""
    fix5 = "faap_outputs_infonce_3rd_fix5_gpu_20260305"
    for parent in ("a", "b"):
        shutil.copytree(fixture_path("legacy_runs", fix5), tmp_path / parent / fix5)
    shutil.copytree(fixture_path("native_runs", NATIVE), tmp_path / NATIVE)
    shutil.copy(tmp_path / NATIVE / "eval" / TEST, tmp_path / "copy.json")
    found, err = compare_json(str(tmp_path))
    runs = sorted({r["run"] for r in found["rows"]})
    assert runs == [f"a/{fix5}", NATIVE], runs
    assert len([r for r in found["rows"] if r["run"] == f"a/{fix5}"]) == 10
    assert [r["split"] for r in found["rows"] if r["run"] == NATIVE].count("test") == 1
    assert str(tmp_path / "copy.json") in err and f"b/{fix5}" in err
    assert f"b/{fix5}" not in {s["run"] for s in found["log_only"]}  # its train log is the same run's


def _run_at_level(tmp_path, confidence: float, name: str = NATIVE):
    run = tmp_path / name
    shutil.copytree(fixture_path("native_runs", NATIVE), run)
    for f in (run / "eval").glob("*.json"):
        m = json.loads(f.read_text())
        m["bootstrap"]["confidence"] = confidence
        f.write_text(json.dumps(m))
    return run


def test_the_ci_header_says_the_level_the_cis_were_computed_at(tmp_path):
    run = _run_at_level(tmp_path, 0.9)
    code, out, err = run_here("compare", str(run), "--format", "table", env={"COLUMNS": "200"})
    assert code == 0, err
    assert "90% CI" in out and "95%" not in out, out
    code, out, err = run_here("compare", str(run))  # TSV
    header = out.splitlines()[0].split("\t")
    assert "AP_gap_ci90" in header and "AP_change_ci90" in header and not any("95" in h for h in header)
    code, _, err = run_here("compare", str(run), "--csv", str(tmp_path / "rows.csv"))
    assert code == 0, err
    csv_header = (tmp_path / "rows.csv").read_text().splitlines()[0].split(",")
    assert "AP_gap_ci90" in csv_header and "AP_gap_ci" not in csv_header
    found, _ = compare_json(str(run))
    assert {r["ci_level"] for r in found["rows"]} == {0.9}


def test_rows_at_different_ci_levels_never_share_one_level_in_a_header(tmp_path):
    """A 90% and a 99% run: no header names one level for both; each row says its own."""
    _run_at_level(tmp_path, 0.9, "a")
    other = _run_at_level(tmp_path, 0.99, "b")
    manifest = json.loads((other / "run.json").read_text())
    manifest["run_id"] = "another0run0id00"
    (other / "run.json").write_text(json.dumps(manifest))
    code, out, err = run_here("compare", str(tmp_path), "--format", "table", env={"COLUMNS": "250"})
    assert code == 0, err
    assert "90% CI" not in out and "99% CI" not in out and "95%" not in out, out
    assert "level" in out and "90%" in out and "99%" in out  # the "CI level" column
    code, out, _ = run_here("compare", str(tmp_path))
    lines = [line.split("\t") for line in out.splitlines()]
    level = lines[0].index("ci_level")
    assert sorted({row[level] for row in lines[1:] if row[level] != "-"}) == ["90%", "99%"]
    assert "different CI levels" in err


def test_csv_and_plot_never_write_over_a_run_artefact_even_with_force(tmp_path):
    run = tmp_path / NATIVE
    shutil.copytree(fixture_path("native_runs", NATIVE), run)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "best.pt").write_bytes(b"weights")
    legacy = tmp_path / "legacy"
    shutil.copytree(fixture_path("legacy_runs", "faap_outputs_infonce_3rd_fix5_gpu_20260305"), legacy)
    loose = tmp_path / "loose.json"
    shutil.copy(run / "eval" / TEST, loose)
    (tmp_path / "x.dets.json.gz").write_bytes(b"dets")
    targets = [
        run / "run.json",
        run / "train_log.jsonl",
        run / "eval" / TEST,
        run / "checkpoints" / "best.pt",
        next(legacy.glob("test_metrics_*.json")),
        loose,
        tmp_path / "x.dets.json.gz",
    ]
    before = {t: t.read_bytes() for t in targets}
    from faapkit.compare import run_artefact
    from faapkit.plugins import make_plugin_manager

    pm = make_plugin_manager()  # the research metrics file is the built-in reader's
    assert all(run_artefact(t, pm) for t in targets) and run_artefact(tmp_path / "nothing-there.csv", pm) is None
    for option, target in (("--csv", targets[0]), ("--plot", targets[3]), ("--csv", targets[4]), ("--plot", loose)):
        code, _, err = run_here("compare", str(run), str(legacy), str(loose), option, str(target), "--force")
        lines = err.strip().splitlines()
        assert code != 0 and lines[-1].startswith("error: ") and str(target) in lines[-1], (target, err)
        assert "not even with --force" in lines[-1] and "unexpected" not in err
    assert {t: t.read_bytes() for t in targets} == before
    # an ordinary file is still replaced with --force
    (tmp_path / "rows.csv").write_text("old")
    code, _, err = run_here("compare", str(run), "--csv", str(tmp_path / "rows.csv"), "--force")
    assert code == 0 and (tmp_path / "rows.csv").read_text().startswith("run,"), err
