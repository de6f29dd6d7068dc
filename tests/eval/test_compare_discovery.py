"""faap compare finds every run under a research output root laid out as the research repo's
(run folders, loose metrics files and a stray train log side by side), and one ordinary faapkit
run is one dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import compare_json, fixture_path, run_here

FIX5 = "faap_outputs_infonce_3rd_fix5_gpu_20260305"
SCF = "faap_outputs_infonce_fix10gpu_scf_20260324"
NATIVE = "level-up-tiny"


def research_root(tmp_path: Path) -> Path:
    """``faap_outputs/`` as in the research repo (docs/research-defaults.md): two run folders, the top-level
    metrics files and layout, a loose val metrics file, a stray S-early ``train_log.jsonl`` of
    epochs 0-24 at the top, a faapkit run beside them and a JSON file nobody reads."""
    root = tmp_path / "faap_outputs"
    shutil.copytree(fixture_path("legacy_runs"), root)
    shutil.copytree(fixture_path("native_runs", NATIVE), root / NATIVE)
    loose = json.loads((root / "faap_metrics.json").read_text())
    loose["hyperparams"]["split"] = "val"
    (root / "faap_metrics_val_perturbed_1st_2.json").write_text(json.dumps(loose))
    lines = [{"epoch": e, "d_loss": 0.5, "g_fair": 0.1 * e, "g_det": 1.0, "g_total": 1.0 + e} for e in range(25)]
    (root / "train_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lines))
    (root / "notes.json").write_text('{"todo": "rerun fix5"}')
    return root


def test_research_root_lists_every_run_and_loose_file(tmp_path):
    root = research_root(tmp_path)
    found, err = compare_json(str(root))
    evaluated = {r["run"] for r in found["rows"]}
    assert evaluated == {FIX5, NATIVE, "faap_metrics", "baseline_test_metrics", "faap_metrics_val_perturbed_1st_2"}
    logged = {s["run"]: s["epochs_logged"] for s in found["log_only"]}
    assert logged == {
        "faap_outputs/train_log.jsonl": list(range(25)),  # the stray log is a run of its own
        FIX5: list(range(10, 15)),
        SCF: list(range(24)),
        NATIVE: [0, 2],
    }
    by_run = {r["run"]: r for r in found["rows"]}
    # the loose files are their own rows, not epochs of the top-level log's run
    assert by_run["faap_metrics"]["epoch"] == 29 and by_run["faap_metrics"]["split"] == "test"
    assert by_run["faap_metrics_val_perturbed_1st_2"]["split"] == "val"
    assert by_run["faap_metrics"]["dataset"] == "faap_gan-v1" and by_run["baseline_test_metrics"]["dataset"] == (
        "faap_gan-v2"
    )
    assert sorted(r["epoch"] for r in found["rows"] if r["run"] == FIX5) == list(range(10))
    assert f"not a run or metrics file any plugin reads: {root / 'notes.json'}" in err
    # passing the run folders one by one finds the same rows
    one_by_one, _ = compare_json(*(str(root / name) for name in (FIX5, SCF, NATIVE)))
    assert sorted((r["run"], r["epoch"], r["split"]) for r in one_by_one["rows"]) == sorted(
        (r["run"], r["epoch"], r["split"]) for r in found["rows"] if r["run"] in (FIX5, NATIVE)
    )


def another_run(folder: Path) -> None:
    """Make a copied run folder another run: its own run id (faapkit) and other numbers (an exact
    copy is one run, shown once: test_compare_numbers)."""
    if (folder / "run.json").is_file():
        manifest = json.loads((folder / "run.json").read_text())
        manifest["run_id"] = "another0run0id00"
        (folder / "run.json").write_text(json.dumps(manifest))
    for f in sorted(folder.glob("*.json")) + sorted(folder.glob("eval/*.json")):
        m = json.loads(f.read_text())
        setting = (m.get("metrics") or m).get("perturbed")
        if isinstance(setting, dict) and isinstance(setting.get("female"), dict):
            setting["female"]["AP"] -= 0.001
            f.write_text(json.dumps(m))


def test_runs_of_one_name_in_two_folders_stay_two_runs(tmp_path):
    for parent in ("a", "b"):
        shutil.copytree(fixture_path("legacy_runs", FIX5), tmp_path / parent / FIX5)
    another_run(tmp_path / "b" / FIX5)
    found, _ = compare_json(str(tmp_path))
    assert {r["run"] for r in found["rows"]} == {f"a/{FIX5}", f"b/{FIX5}"}
    assert len(found["rows"]) == 20


def test_one_ordinary_run_is_one_dataset(tmp_path):
    """Its train log rows carry the train split's fingerprint and its evaluations the val and
    test splits': still one dataset, one table, no warning."""
    run = fixture_path("native_runs", NATIVE)
    fingerprints = {json.loads(p.read_text())["dataset"]["fingerprint"] for p in (run / "eval").glob("*.json")}
    fingerprints.add(json.loads((run / "run.json").read_text())["dataset"]["fingerprint"])
    assert len(fingerprints) == 3  # train, val, test
    found, err = compare_json(str(run))
    assert {r["split"] for r in found["rows"]} == {"val", "test"}
    assert found["datasets"] == ["synth-v1-seed0/coco"] and "different datasets" not in err
    code, out, err = run_here("compare", str(run), "--format", "table", env={"COLUMNS": "80"})
    assert code == 0 and "different datasets" not in err
    assert out.count("(2 rows") == 1 and "dataset" not in out  # val and test, in one table
    assert "not evaluated (train log only" in out and "0,2" in out  # epochs 0 and 2: one summary row


def test_runs_sharing_a_test_split_are_one_dataset_and_changed_data_is_kept_apart(tmp_path):
    for parent in ("a", "b"):
        shutil.copytree(fixture_path("native_runs", NATIVE), tmp_path / parent / NATIVE)
    another_run(tmp_path / "b" / NATIVE)
    found, err = compare_json(str(tmp_path))
    assert len(found["datasets"]) == 1 and {r["run"] for r in found["rows"]} == {f"a/{NATIVE}", f"b/{NATIVE}"}
    changed = next((tmp_path / "b" / NATIVE / "eval").glob("test_*.json"))
    metrics = json.loads(changed.read_text())
    metrics["dataset"]["fingerprint"] = "0123456789abcdef"  # the test images were replaced since
    changed.write_text(json.dumps(metrics))
    found, err = compare_json(str(tmp_path))
    test_sets = {r["run"]: r["dataset"] for r in found["rows"] if r["split"] == "test"}
    assert test_sets[f"a/{NATIVE}"] != test_sets[f"b/{NATIVE}"] and "0123456" in test_sets[f"b/{NATIVE}"]
    assert "split test has several fingerprints" in err


def _only_test_split(run: Path, images: int | None = None, fingerprint: str | None = None) -> None:
    """Keep ``run``'s test evaluation alone (its own dataset), evaluated on ``images`` images of
    a split whose fingerprint is ``fingerprint``."""
    manifest = json.loads((run / "run.json").read_text())
    manifest["run_id"] = f"run0{run.parent.name}".ljust(16, "0")  # another run, not a copy
    (run / "run.json").write_text(json.dumps(manifest))
    for p in (run / "eval").glob("val_*.json"):
        p.unlink()
    (run / "train_log.jsonl").unlink()
    (test,) = (run / "eval").glob("test_*.json")
    metrics = json.loads(test.read_text())
    metrics["dataset"]["fingerprint"] = fingerprint or metrics["dataset"]["fingerprint"]
    metrics["dataset"]["images"] = images or metrics["dataset"]["images"]
    test.write_text(json.dumps(metrics))


def test_two_datasets_of_one_name_are_told_apart_by_their_image_counts_before_a_hash(tmp_path):
    """Two evaluations of same-named datasets (a --limit-images subset beside the whole split)
    are labelled by the folder name and their image counts; a hash only where those agree too."""
    for parent in ("a", "b", "c"):
        shutil.copytree(fixture_path("native_runs", NATIVE), tmp_path / parent / NATIVE)
    _only_test_split(tmp_path / "a" / NATIVE)
    _only_test_split(tmp_path / "b" / NATIVE, images=100, fingerprint="0123456789abcdef")
    _only_test_split(tmp_path / "c" / NATIVE, images=100, fingerprint="fedcba9876543210")
    found, _ = compare_json(str(tmp_path))
    labels = {r["run"].split("/")[0]: r["dataset"] for r in found["rows"]}
    assert labels["a"] == "synth-v1-seed0/coco (test 16 images)"
    assert labels["b"].startswith("synth-v1-seed0/coco (test 100 images) #") and labels["b"] != labels["c"]
    shutil.rmtree(tmp_path / "c")
    found, _ = compare_json(str(tmp_path))
    assert {r["dataset"] for r in found["rows"]} == {
        "synth-v1-seed0/coco (test 16 images)",
        "synth-v1-seed0/coco (test 100 images)",
    }  # no hash where the counts tell them apart


def _moved(src: Path, dst: Path, folder: str, run_id: str, train_fingerprint: str | None = None) -> Path:
    """A copy of run ``src`` at ``dst`` as another run, every dataset root in cache folder ``folder``."""
    shutil.copytree(src, dst)
    for f in [dst / "run.json", *sorted((dst / "eval").glob("*.json"))]:
        doc = json.loads(f.read_text().replace("synth-v1-seed0", folder))
        if f.name == "run.json":
            doc["run_id"] = run_id
            doc["dataset"]["fingerprint"] = train_fingerprint or doc["dataset"]["fingerprint"]
        f.write_text(json.dumps(doc))
    return dst


def test_runs_evaluated_on_one_split_under_two_roots_are_labelled_by_both(tmp_path):
    """A v3 run and a v4 run share v3's test bytes (one dataset, one table); the label names both
    cache folders in either order, and a v3 run with a train log only is never labelled v4."""
    run = fixture_path("native_runs", NATIVE)
    v3 = _moved(run, tmp_path / "v3", "synth-v3-seed0", "v3run00000000000")
    v4 = _moved(run, tmp_path / "v4", "synth-v4-seed0", "v4run00000000000", "fedcba9876543210")
    another_run(v4)
    logged = _moved(run, tmp_path / "v3-log", "synth-v3-seed0", "v3log00000000000")
    shutil.rmtree(logged / "eval")
    both = "synth-v3-seed0/coco, synth-v4-seed0/coco"
    for order in ((v3, v4, logged), (v4, logged, v3)):
        found, _ = compare_json(*map(str, order))
        assert found["datasets"] == [both]
        assert {r["dataset"] for r in found["rows"]} == {both}
        assert {s["run"]: s["dataset"] for s in found["log_only"]}["v3-log"] == both
