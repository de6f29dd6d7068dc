"""The report's figures as a paper needs them, drawn from the shipped tiny run's files (no
training): axis labels with units, each group's image count, human legend names, whole-number
epochs, the val gap's CI band and a seed set's across-seed CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faapkit.evaluate.across_seeds import spread
from faapkit.report.figures import curve_series, curves_figure, forest_figure, forest_rows, forest_title
from faapkit.report.inputs import RunInputs

pytest.importorskip("matplotlib")

TINY = Path(__file__).parents[1] / "fixtures/native_runs/level-up-tiny"


def _inputs(seed: int | None = None, shift: float = 0.0, log: list | None = None) -> RunInputs:
    path = TINY / "eval/test_gender_best_first16.json"
    result = json.loads(path.read_text())
    gaps = result["gaps"]["AP"]
    gaps["baseline"] += shift
    gaps["perturbed"] += 2 * shift
    rows = log if log is not None else [json.loads(x) for x in (TINY / "train_log.jsonl").read_text().splitlines()]
    selection = json.loads((TINY / "selection.json").read_text())
    return RunInputs(TINY, path, result, rows, selection, seed)


def _texts(fig) -> list[str]:
    out = [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.get_yticklabels())]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return out


def test_the_forest_plot_names_its_axes_counts_and_cis():
    run = _inputs()
    fig = forest_figure(forest_rows([run]), forest_title("tiny", run.result), ("female", "male"))
    texts = _texts(fig)
    assert [ax.get_xlabel() for ax in fig.axes][:2] == ["AP or AR (COCO, 0-1)", "gap male - female (0-1)"]
    assert "female (n=8) AP" in texts and "male (n=8) AR" in texts  # each group's image count
    assert any("16 images" in t and "95% paired bootstrap CI (50 resamples)" in t for t in texts)
    assert {"unperturbed (95% CI)", "perturbed (95% CI)"} <= set(texts)
    assert not any("baseline" in t or "_" in t for t in texts)  # no internal names


def test_a_seed_sets_forest_plot_shows_the_across_seed_ci():
    runs = [_inputs(0, 0.0), _inputs(1, 0.01), _inputs(2, -0.02)]
    rows = forest_rows(runs)
    across = [r for r in rows if r["kind"] == "across seeds"]
    after = [r.result["gaps"]["AP"]["perturbed"] for r in runs]
    (mean_after,) = [r for r in across if r["metric"] == "AP" and r["setting"] == "perturbed"]
    assert mean_after["value"] == pytest.approx(spread(after)["mean"])
    assert mean_after["ci"] == pytest.approx(spread(after)["ci"])  # the t-CI of faap eval SEEDSET
    assert mean_after["label"] == "mean of 3 seeds  AP gap"
    before = [r.result["gaps"]["AP"]["baseline"] for r in runs]
    (mean_before,) = [r for r in across if r["metric"] == "AP" and r["setting"] == "baseline"]
    assert mean_before["ci"] == pytest.approx(spread(before)["ci"])
    texts = _texts(forest_figure(rows, "set", ("female", "male")))
    assert "mean across seeds: perturbed (95% t-CI across seeds)" in texts
    assert "mean of 3 seeds  AP gap" in texts


def test_the_curves_have_human_names_whole_epochs_and_the_val_ci_band():
    log = [json.loads(x) for x in (TINY / "train_log.jsonl").read_text().splitlines()]
    for row in log:  # as validation now records them
        gap = row["val"]["gap_AP"]
        row["val"].update(gap_AP_ci=[gap - 0.05, gap + 0.04], gap_AP_baseline_ci=[0.0, 0.1])
        row["val"]["group_images"] = {"female": 8, "male": 8}
    series = curve_series([_inputs(log=log)])
    (s,) = series.values()
    assert s["val_ci"] == [(r["epoch"], *r["val"]["gap_AP_ci"]) for r in log]
    fig = curves_figure(series, "tiny")
    left, right = fig.axes
    texts = _texts(fig)
    assert "total loss = detection loss = detection loss, disadvantaged group" in texts
    assert not any("loss_" in t for t in texts)
    assert "95% paired bootstrap CI" in texts and "unperturbed 95% CI" in texts
    assert "16 val images (female 8, male 8)" in right.get_title()
    assert right.get_ylabel() == "AP gap, advantaged - disadvantaged (0-1)"
    assert left.get_xlabel() == right.get_xlabel() == "epoch"
    for ax in (left, right):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    band = [c for c in right.collections if c.get_label() == "95% paired bootstrap CI"]
    assert band, "the val gap's CI is drawn as a band"


def test_a_log_without_val_cis_draws_the_line_alone(tmp_path):
    shutil.copytree(TINY, tmp_path / "tiny")
    (s,) = curve_series([_inputs()]).values()
    assert s["val_ci"] == [] and len(s["val_gap"]) == 3
    texts = _texts(curves_figure({"run": s}, "old"))
    assert "95% paired bootstrap CI" not in texts and "perturbed (the log holds no CI)" in texts
