"""faap compare over a run folder with a broken file in it: one bad ``eval/*.json`` is named and
left out (the other runs and evaluations are still compared); a corrupt train log is one error
line naming the file and line, never an 'unexpected' exception."""

from __future__ import annotations

import json
import shutil

from tests.conftest import fixture_path, run_here

NATIVE = "level-up-tiny"


def test_a_bad_eval_file_is_named_and_left_out(tmp_path):
    run = tmp_path / NATIVE
    shutil.copytree(fixture_path("native_runs", NATIVE), run)
    bad = {
        "list.json": "[]",
        "binary.json": b"\xff\xfe",
        "nometrics.json": json.dumps({"schema": "faapkit.metrics/1"}),
        "listmetrics.json": json.dumps({"schema": "faapkit.metrics/1", "metrics": []}),
    }
    for name, content in bad.items():
        target = run / "eval" / name
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    code, out, err = run_here("compare", str(run), "--json")
    assert code == 0, err
    assert sorted(r["split"] for r in json.loads(out)["rows"]) == ["test", "val"]
    for name in bad:
        assert str(run / "eval" / name) in err, name
    assert "unexpected" not in err


def test_a_corrupt_train_log_is_one_error_naming_file_and_line(tmp_path):
    run = tmp_path / NATIVE
    shutil.copytree(fixture_path("native_runs", NATIVE), run)
    with (run / "train_log.jsonl").open("a") as f:
        f.write('{"epoch": "x"}\n')
    lines = (run / "train_log.jsonl").read_text().count("\n")
    code, _, err = run_here("compare", str(run))
    assert code != 0 and err.count("error:") == 1 and f"train_log.jsonl line {lines}" in err, err
    assert "unexpected" not in err


def test_csv_and_plot_onto_one_file_or_a_folder_are_refused(tmp_path):
    """--csv and --plot naming one file would leave only the plot (the CSV silently lost); a
    folder as either is one error line, even with --force, and nothing is written."""
    run = fixture_path("native_runs", NATIVE)
    same = tmp_path / "out.png"
    code, _, err = run_here("compare", str(run), "--csv", str(same), "--plot", str(same))
    assert code != 0 and err.count("error:") == 1 and "--csv and --plot" in err, err
    assert not same.exists()
    (tmp_path / "d.csv").mkdir()
    code, _, err = run_here("compare", str(run), "--csv", str(tmp_path / "d.csv"), "--force")
    assert code != 0 and err.count("error:") == 1 and "is a folder" in err and "unexpected" not in err, err
