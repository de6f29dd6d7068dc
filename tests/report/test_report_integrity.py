"""``faap report`` shows a run's own evaluation or nothing: another run's metrics file, a panel
checkpoint of another run, numbers that cannot be drawn (NaN, a CI that does not hold its
estimate), an unreadable result and a folder that is no run are each refused in one line naming
the file and key; a report is replaced whole or not at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import faap_in_process, one_error, one_step_4th_run

pytest.importorskip("matplotlib")


def _evaluated(base: Path) -> Path:
    from faapkit.cli import main

    run = one_step_4th_run(base)
    try:
        main(["eval", str(run), "--device", "cpu", "--quiet", "--bootstrap", "12"])
    except SystemExit as exc:
        assert not exc.code
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two evaluated one-step runs (two run ids)."""
    base = tmp_path_factory.mktemp("report-integrity")
    return _evaluated(base / "a"), _evaluated(base / "b")


def _result(run: Path) -> Path:
    (path,) = (run / "eval").glob("*.json")
    return path


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _edit(path: Path, change) -> None:
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))


def _run_id(run: Path) -> str:
    return json.loads((run / "run.json").read_text())["run_id"]


def test_another_runs_result_is_refused_naming_both_runs(runs, tmp_path, capsys) -> None:
    a, b = runs
    out = tmp_path / "out"
    code, _, err = faap_in_process(
        capsys, "report", str(a), "--result", str(_result(b)), "--no-panel", "--out", str(out)
    )
    one_error(err, 1, code, f"it evaluated run {_run_id(b)}, not this folder's run {_run_id(a)}")
    assert str(_result(b)) in err and not out.exists()


def test_a_result_of_no_run_is_not_shown_as_this_runs(runs, tmp_path, capsys) -> None:
    loose = tmp_path / "loose.json"
    shutil.copy(_result(runs[0]), loose)
    _edit(loose, lambda m: m.update(run_id=None))
    code, _, err = faap_in_process(
        capsys, "report", str(runs[0]), "--result", str(loose), "--no-panel", "--out", str(tmp_path)
    )
    one_error(err, 1, code, "it evaluated no run (run_id null)")


def test_panel_of_another_runs_checkpoint_is_left_out_and_said(runs, tmp_path, capsys) -> None:
    a, b = runs
    run = _copy(a, tmp_path)
    for f in (run / "checkpoints").glob("*.pt"):
        f.unlink()  # best.pt gone: the panel would fall back to the path the result records
    (other,) = (b / "checkpoints").glob("epoch_*.pt")
    _edit(_result(run), lambda m: m.update(checkpoint=str(other)))
    code, _, err = faap_in_process(capsys, "report", str(run), "--images", "1")
    assert code == 0, err
    assert err.strip().startswith("warning: no perturbation panel") and _run_id(b) in err
    page = (run / "report" / "report.md").read_text()
    assert f"No perturbation panel: {other} was written by run {_run_id(b)}" in page
    assert "![perturbation panel]" not in page and not (run / "report" / "panel.png").exists()


def test_panel_of_another_epoch_is_left_out(runs, tmp_path, capsys) -> None:
    run = _copy(runs[0], tmp_path)
    _edit(_result(run), lambda m: m.update(global_step=7))
    code, _, err = faap_in_process(capsys, "report", str(run), "--images", "1")
    assert code == 0, err
    assert "not the step 7 that" in (run / "report" / "report.md").read_text()


def _gap_outside(m):
    m["gaps"]["AP"]["perturbed"] = 5.0


def _ci_reversed(m):
    ci = m["bootstrap"]["groups"]["perturbed"]["female"]["AP"]
    m["bootstrap"]["groups"]["perturbed"]["female"]["AP"] = [ci[1] + 0.1, ci[0] - 0.1]


def _nan_ap(m):
    m["metrics"]["perturbed"]["female"]["AP"] = float("nan")


def _missing_gap(m):
    del m["gaps"]["AP"]["baseline"]


@pytest.mark.parametrize(
    "edit, says",
    [
        (_gap_outside, "'gaps.AP.perturbed' = 5 lies outside its CI 'bootstrap.gaps.AP.perturbed' [0.2"),
        (_ci_reversed, "'bootstrap.groups.perturbed.female.AP' is ["),
        (_nan_ap, "metrics.perturbed.female.AP is NaN, not a finite number"),
        (_missing_gap, "'gaps.AP.baseline' is missing"),
    ],
    ids=["gap outside its CI", "CI reversed", "NaN AP", "missing gap"],
)
def test_numbers_that_cannot_be_drawn_are_refused_by_file_and_key(runs, tmp_path, capsys, edit, says) -> None:
    run = _copy(runs[0], tmp_path)
    _edit(_result(run), edit)
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel")
    one_error(err, 1, code, says)
    assert str(_result(run)) in err and not (run / "report" / "report.md").exists()
    if edit is _gap_outside:
        assert "edited? its numbers are not the ones numbers_sha256 recorded" in err



def test_a_point_outside_its_own_percentile_ci_is_drawn_not_refused(runs, tmp_path, capsys) -> None:
    """A percentile bootstrap CI may exclude its estimate (a skewed resample distribution): such a
    file, as faapkit wrote it (its numbers_sha256 holds), is a real result and is drawn."""
    from faapkit.artifacts.integrity import numbers_sha256

    run = _copy(runs[0], tmp_path)

    def outside(m):
        lo, hi = m["bootstrap"]["gaps"]["AP"]["perturbed"]
        m["gaps"]["AP"]["perturbed"] = hi + (hi - lo)
        m["numbers_sha256"] = numbers_sha256(m)

    _edit(_result(run), outside)
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel")
    assert code == 0, err
    assert (run / "report" / "forest.png").stat().st_size > 0

def test_unreadable_result_and_not_a_run_are_told_apart(runs, tmp_path, capsys) -> None:
    run = _copy(runs[0], tmp_path)
    _result(run).write_text("{ cut")
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel")
    one_error(err, 1, code, "not JSON")
    assert str(run / "eval") in err and "no evaluation yet" not in err
    bare = tmp_path / "bare"
    bare.mkdir()
    code, _, err = faap_in_process(capsys, "report", str(bare), "--no-panel")
    one_error(err, 1, code, "is not a run folder (no run.json) or a seed set")


def test_force_without_panel_removes_the_earlier_panel(runs, tmp_path, capsys) -> None:
    run = _copy(runs[0], tmp_path)
    folder = run / "report"
    folder.mkdir()
    for name in ("panel.png", "panel.pdf"):
        (folder / name).write_bytes(b"an earlier report's panel")
    (folder / ".report-killed").mkdir()  # what a report killed while drawing leaves
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel", "--force")
    assert code == 0, err
    assert not (folder / "panel.png").exists() and not (folder / "panel.pdf").exists()
    assert not list(folder.glob(".report-*"))
    assert "No perturbation panel (--no-panel)." in (folder / "report.md").read_text()


def test_a_failing_force_leaves_the_earlier_report_whole(runs, tmp_path, capsys, monkeypatch) -> None:
    run = _copy(runs[0], tmp_path)
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel")
    assert code == 0, err
    folder = run / "report"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    import faapkit.report.figures as figures

    def disk_full(*args, **kwargs):  # the second figure fails to write, after the first was drawn
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(figures, "plot_curves", disk_full)
    code, _, err = faap_in_process(capsys, "report", str(run), "--no-panel", "--force")
    assert code != 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no half-replaced report, no temp folder


def test_each_bad_option_is_named(runs, capsys) -> None:
    code, _, err = faap_in_process(capsys, "report", str(runs[0]), "--images", "0", "--score", "2", "--amplify", "-1")
    one_error(err, 2, code, "--images 0 is not at least 1; --score 2 is not in [0, 1]; --amplify -1 is not a positive")
    code, _, err = faap_in_process(capsys, "report", str(runs[0]), "--score", "-0.5")
    one_error(err, 2, code, "--score -0.5 is not in [0, 1]")
    assert "--images" not in err and "--amplify" not in err
