"""``faap report``: the page and figures of a one-step run, and that they show the run's numbers
(the forest plot's points and the page's table are read from the eval JSON, the curves from
``train_log.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faapkit.report.figures import curve_series, forest_rows
from faapkit.report.inputs import read_target
from faapkit.report.page import num
from tests.conftest import faap_in_process, one_error, one_step_4th_run

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return one_step_4th_run(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def evaluated(run) -> Path:
    from faapkit.cli import main

    try:
        main(["eval", str(run), "--device", "cpu", "--quiet", "--bootstrap", "12"])
    except SystemExit as exc:
        assert not exc.code
    (path,) = (run / "eval").glob("*.json")
    return path


def test_refused_before_evaluation(tmp_path, capsys) -> None:
    bare = one_step_4th_run(tmp_path)
    code, _, err = faap_in_process(capsys, "report", str(bare), "--no-panel")
    one_error(err, 1, code, "run faap eval")
    assert not (bare / "report").exists()


def test_report_page_and_figures(run, evaluated, capsys) -> None:
    code, _, err = faap_in_process(capsys, "report", str(run), "--images", "1")
    assert code == 0, err
    folder = run / "report"
    for name in ("report.md", "forest.png", "forest.pdf", "curves.png", "curves.pdf", "panel.png", "panel.pdf"):
        assert (folder / name).stat().st_size > 0, name
    from PIL import Image

    with Image.open(folder / "panel.png") as im:  # 2 rows (one per group), 4 columns
        assert im.size[0] > 600 and im.size[1] > 300
    page = (folder / "report.md").read_text()
    result = json.loads(evaluated.read_text())
    for group, metrics in result["metrics"]["perturbed"].items():
        assert f"| {group} AP | {num(result['metrics']['baseline'][group]['AP'])} [" in page
        assert f"| {num(metrics['AP'])} [" in page
    gap = result["gaps"]["AP"]
    assert f"| AP gap | {num(gap['baseline'], True)} [" in page
    assert f"| AP share closed | | | {num(gap['share_closed'], True)} [" in page
    assert "![forest plot](forest.png)" in page and "![perturbation panel](panel.png)" in page
    # an existing report is replaced only with --force
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel")
    one_error(err, 1, code, "--force")
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel", "--force")
    assert code == 0, err


def test_forest_points_are_the_eval_numbers(run, evaluated) -> None:
    result = json.loads(evaluated.read_text())
    rows = forest_rows(read_target(run))
    boot = result["bootstrap"]
    for r in rows:
        group, metric = r["group"], r["metric"]
        if r["panel"] == "groups":
            assert r["value"] == result["metrics"][r["setting"]][group][metric]
            assert r["ci"] == boot["groups"][r["setting"]][group][metric]
            assert r["label"] == f"{group} (n={result['groups'][group]['images']}) {metric}"
        else:
            key = "share_closed" if r["panel"] == "share closed" else r["setting"]
            assert r["value"] == result["gaps"][metric][key]
            assert r["ci"] == boot["gaps"][metric][key]
    assert {r["panel"] for r in rows} == {"groups", "gap", "share closed"}
    assert len([r for r in rows if r["panel"] == "groups"]) == 2 * 2 * 2  # AP, AR x 2 groups x 2 settings


def test_curves_are_the_train_log(run, evaluated) -> None:
    (series,) = curve_series(read_target(run)).values()
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert series["losses"]["total"] == [(row["epoch"], row["total"]) for row in log]
    assert series["val_gap"] == []  # the one-step run does not validate
