"""faap compare next to ``faap eval --rescore`` output and evaluations at other IoU thresholds:
a rescore is the same detections scored again, so it is not a second row of the same epoch; an
AP over other IoU thresholds is another metric, so it never shares a table (or the val choice of
``--best-per-run``) with COCO's AP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import compare_json, fixture_path, run_here

NATIVE = "level-up-tiny"


def _run_with_extra_evals(tmp_path: Path) -> Path:
    """The fixture run plus a rescore of its test evaluation (other bootstrap CIs) and a val
    evaluation of epoch 0 at IoU 0.5 whose AP gap is far below every COCO-IoU one."""
    run = tmp_path / NATIVE
    shutil.copytree(fixture_path("native_runs", NATIVE), run)
    test = run / "eval" / "test_gender_best_first16.json"
    rescored = json.loads(test.read_text())
    rescored["rescored_from"] = {"metrics": str(test), "sha256": "0" * 64}
    rescored["bootstrap"]["gaps"]["AP"]["perturbed"] = [-0.5, 0.5]
    (run / "eval" / "test_gender_best_first16_rescored_boot100.json").write_text(json.dumps(rescored))
    iou = json.loads((run / "eval" / "val_gender_best_first16.json").read_text())
    iou["epoch"] = 0
    iou["eval"]["iou_thresholds"] = [0.5]
    for setting in iou["metrics"].values():
        setting["female"]["AP"], setting["male"]["AP"] = 0.99, 0.2
    (run / "eval" / "val_gender_epoch_0000_first16_iou0.5.json").write_text(json.dumps(iou))
    return run


def test_a_rescore_beside_its_evaluation_is_not_a_second_row(tmp_path):
    run = _run_with_extra_evals(tmp_path)
    found, err = compare_json(str(run))
    tests = [r for r in found["rows"] if r["split"] == "test"]
    assert len(tests) == 1
    assert tests[0]["AP_gap_ci"] != [-0.5, 0.5]  # the evaluation, not its rescore
    assert "test_gender_best_first16_rescored_boot100.json" in err and "rescore" in err
    # without its original, the rescore is the evaluation that is shown
    (run / "eval" / "test_gender_best_first16.json").unlink()
    alone, _ = compare_json(str(run))
    assert [r["AP_gap_ci"] for r in alone["rows"] if r["split"] == "test"] == [[-0.5, 0.5]]


def test_other_iou_thresholds_get_their_own_table_and_val_choice(tmp_path):
    run = _run_with_extra_evals(tmp_path)
    found, err = compare_json(str(run))
    by_split_epoch = {(r["split"], r["epoch"]): r for r in found["rows"]}
    coco, iou = by_split_epoch[("val", 1)], by_split_epoch[("val", 0)]
    assert iou["AP_gap"] == 0.2 - 0.99
    assert iou["dataset"] != coco["dataset"] and "IoU 0.5" in iou["dataset"]
    assert by_split_epoch[("test", 1)]["dataset"] == coco["dataset"]
    code, _, table_err = run_here("compare", str(run))
    assert code == 0 and "not comparable" in table_err
    # --best-per-run chooses among COCO-IoU val rows for the COCO-IoU test row: the IoU-0.5 val
    # row's far smaller gap is another metric and must not pick epoch 0
    best, notes = compare_json(str(run), "--best-per-run")
    assert [(r["split"], r["epoch"]) for r in best["rows"]] == [("test", 1)]
    assert "IoU 0.5" in notes
