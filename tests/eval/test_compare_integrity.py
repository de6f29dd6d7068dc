"""``faap compare`` checks every faapkit metrics file it reads: a file of
another run, or one whose numbers are not numbers, is left out with one stderr line naming it;
numbers that are not the ones ``numbers_sha256`` recorded, a gap that is not the difference of
the file's own group values, a gap outside its own CI and a rescore whose parent is gone are
flagged (the ``flags`` column of the table, TSV, CSV and JSON, and one stderr line per file);
older files without the new fields are read as before, flagged ``unverified``. Torch-free: the
files are written here, no inference."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faapkit.artifacts.integrity import numbers_sha256
from tests.conftest import a_run_manifest, faap_in_process, run_here

RUN_ID = "20261202-000000-aaaaaa"


def metrics(run_id: str = RUN_ID) -> dict[str, Any]:
    """A consistent metrics file of the run ``run_id``: gaps = male - female, inside their CIs."""
    per = {
        "baseline": {"female": {"AP": 0.40, "AR": 0.50}, "male": {"AP": 0.50, "AR": 0.55}},
        "perturbed": {"female": {"AP": 0.45, "AR": 0.52}, "male": {"AP": 0.49, "AR": 0.55}},
    }
    gaps = {
        m: {s: per[s]["male"][m] - per[s]["female"][m] for s in per} for m in ("AP", "AR")
    }  # advantaged - disadvantaged
    for m in gaps:
        gaps[m]["change"] = gaps[m]["perturbed"] - gaps[m]["baseline"]
    boot = {m: {s: [v - 0.05, v + 0.05] for s, v in gaps[m].items()} for m in gaps}
    m: dict[str, Any] = {
        "schema": "faapkit.metrics/1",
        "split": "test",
        "split_by": "gender",
        "epoch": 0,
        "version": "4th",
        "reference": {"disadvantaged": "female", "advantaged": "male"},
        "dataset": {"fingerprint": "f" * 16, "root": "/data"},
        "metrics": per,
        "gaps": gaps,
        "bootstrap": {"resamples": 50, "seed": 0, "confidence": 0.95, "method": "percentile", "gaps": boot},
        "run_id": run_id,
    }
    m["numbers_sha256"] = numbers_sha256(m)
    return m


def make_run(root: Path, m: dict[str, Any], name: str = "test_gender_best.json") -> Path:
    run = root / "run"
    (run / "eval").mkdir(parents=True, exist_ok=True)
    manifest = a_run_manifest(version="4th", run_id=RUN_ID, dataset={"fingerprint": "f" * 16, "root": "/data"})
    (run / "run.json").write_text(json.dumps(manifest))
    (run / "eval" / name).write_text(json.dumps(m))
    return run / "eval" / name


def _set(m: dict[str, Any], value: Any, *keys: str) -> None:
    for key in keys[:-1]:
        m = m[key]
    m[keys[-1]] = value


def edited(m: dict[str, Any]) -> None:
    _set(m, 0.60, "metrics", "perturbed", "male", "AP")  # no new hash: an edit by hand


def inconsistent_gap(m: dict[str, Any]) -> None:
    _set(m, 0.02, "gaps", "AP", "perturbed")
    m["bootstrap"]["gaps"]["AP"]["perturbed"] = [0.0, 0.1]
    m["numbers_sha256"] = numbers_sha256(m)  # written so (a bug, or an edit that rehashed)


def outside_ci(m: dict[str, Any]) -> None:
    m["bootstrap"]["gaps"]["AP"]["baseline"] = [0.2, 0.3]
    m["numbers_sha256"] = numbers_sha256(m)


def old_file(m: dict[str, Any]) -> None:
    del m["numbers_sha256"], m["run_id"]


FLAGGED: dict[str, tuple[Callable[[dict[str, Any]], None], list[str], str]] = {
    "consistent": (lambda m: None, [], ""),
    "numbers edited by hand": (edited, ["edited", "gap"], "not the ones numbers_sha256 recorded"),
    "gap not advantaged - disadvantaged": (
        inconsistent_gap,
        ["gap"],
        "gaps.AP.perturbed is 0.020000, not male - female",
    ),
    "point estimate outside its CI": (
        outside_ci,
        ["outside-ci"],
        "gaps.AP.baseline = 0.100000 lies outside its own CI",
    ),
    "older file without the new fields": (old_file, ["unverified"], "written before faapkit recorded numbers_sha256"),
}


@pytest.mark.parametrize("case", sorted(FLAGGED))
def test_each_metrics_file_is_checked_and_flagged(tmp_path, capsys, case):
    change, flags, says = FLAGGED[case]
    m = metrics()
    change(m)
    f = make_run(tmp_path, m)
    code, out, err = faap_in_process(capsys, "compare", str(tmp_path), "--json")
    assert code == 0, err
    (row,) = [r for r in json.loads(out)["rows"] if r["setting"] != "train only"]
    assert row["flags"] == flags
    lines = [line for line in err.splitlines() if "flagged" in line]
    if flags:
        assert len(lines) == 1 and str(f) in lines[0] and says in " ".join(err.split()), err
    else:
        assert lines == [], err


def another_run(m: dict[str, Any]) -> None:
    m["run_id"] = "20261201-111111-bbbbbb"
    m["numbers_sha256"] = numbers_sha256(m)


def nan_value(m: dict[str, Any]) -> None:
    _set(m, math.nan, "metrics", "perturbed", "male", "AP")
    m["numbers_sha256"] = numbers_sha256(m)


def string_value(m: dict[str, Any]) -> None:
    _set(m, "0.49", "metrics", "perturbed", "male", "AP")


def infinite_gap(m: dict[str, Any]) -> None:
    _set(m, math.inf, "gaps", "AR", "perturbed")


def list_as_ap(m: dict[str, Any]) -> None:
    _set(m, [0.4], "metrics", "baseline", "female", "AP")


LEFT_OUT = {
    "copied from another run": (another_run, "it evaluated run 20261201-111111-bbbbbb, not this folder's run"),
    # a run_id edited to a number was not compared with the folder's: the file was shown, unflagged
    # an AP of 1e308 passed as a finite number: the row showed a gap of -1e308 and a share of -inf
    "an AP above 1": (lambda m: _set(m, 1e308, "metrics", "perturbed", "male", "AP"), "AP is 1e+308, not an AP or AR"),
    "an AR below 0": (lambda m: _set(m, -0.5, "metrics", "baseline", "female", "AR"), "AR is -0.5, not an AP or AR"),
    "a run id that is a number": (lambda m: _set(m, 12345, "run_id"), "its run_id is 12345, not a run id"),
    "NaN": (nan_value, "metrics.perturbed.male.AP is NaN, not a finite number"),
    "a string": (string_value, 'metrics.perturbed.male.AP is "0.49", not a finite number'),
    "an infinity": (infinite_gap, "gaps.AR.perturbed is Infinity, not a finite number"),
    "a list": (list_as_ap, "metrics.baseline.female.AP is [0.4], not a finite number"),
}


@pytest.mark.parametrize("case", sorted(LEFT_OUT))
def test_a_file_of_another_run_or_with_values_that_are_not_numbers_is_left_out_by_name(tmp_path, case):
    change, says = LEFT_OUT[case]
    m = metrics()
    change(m)
    f = make_run(tmp_path, m)
    # beside it, a clean evaluation of the run on another split: the table still shows that one
    clean = metrics()
    clean["split"] = "val"
    clean["numbers_sha256"] = numbers_sha256(clean)
    make_run(tmp_path, clean, "val_gender_best.json")
    for args in (["--json"], ["--format", "tsv"]):
        code, out, err = run_here("compare", str(tmp_path), *args)
        assert code == 0 and "Traceback" not in err, err
        lines = [line for line in err.splitlines() if str(f) in line]
        assert len(lines) == 1 and "left out" in lines[0] and says in lines[0], err
        assert "nan" not in out.lower().replace("gender", "") and "inf" not in out.lower()
    rows = json.loads(run_here("compare", str(tmp_path), "--json")[1])["rows"]
    assert [r["split"] for r in rows if r["setting"] != "train only"] == ["val"]


MALFORMED = {
    "an epoch in words": (lambda m: _set(m, "zero", "epoch"), "its 'epoch' is \"zero\""),
    "a reference that is a name": (lambda m: _set(m, "male", "reference"), "its 'reference' is \"male\""),
    "a group that is null": (lambda m: _set(m, None, "metrics", "perturbed", "female"), "its 'perturbed.female'"),
    "a bootstrap that is a list": (lambda m: _set(m, [1], "bootstrap"), "its 'bootstrap' is [1]"),
    "a dataset that is a name": (lambda m: _set(m, "coco", "dataset"), "its 'dataset' is \"coco\""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("loose", [False, True])
def test_a_file_with_a_malformed_field_is_left_out_by_name_and_the_rest_is_shown(tmp_path, case, loose):
    """Such a file stopped the whole compare with 'error: ValidationError: ... (unexpected)',
    naming neither the file nor hiding only it."""
    change, says = MALFORMED[case]
    m = metrics()
    change(m)
    m["numbers_sha256"] = numbers_sha256(m)
    f = make_run(tmp_path, m)
    clean = metrics()
    clean["split"] = "val"
    clean["numbers_sha256"] = numbers_sha256(clean)
    make_run(tmp_path, clean, "val_gender_best.json")
    if loose:
        f = f.rename(tmp_path / "loose.json")
    code, out, err = run_here("compare", str(tmp_path), "--json")
    assert code == 0 and "unexpected" not in err and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if str(f) in line]
    assert len(lines) == 1 and "left out" in lines[0] and says in lines[0], err
    assert [r["split"] for r in json.loads(out)["rows"] if r["setting"] != "train only"] == ["val"]


def test_a_loose_copy_of_another_run_s_file_is_left_out(tmp_path, capsys):
    """A loose metrics file records its run folder; when that folder is now another run, it is
    not that run's evaluation."""
    run = make_run(tmp_path, metrics()).parents[1]
    loose = metrics("20261201-111111-bbbbbb")
    loose["run"] = str(run)
    (tmp_path / "loose.json").write_text(json.dumps(loose))
    code, _, err = faap_in_process(capsys, "compare", str(tmp_path / "loose.json"), str(run), "--json")
    assert code == 0, err
    assert f"{tmp_path / 'loose.json'}: it evaluated run 20261201-111111-bbbbbb" in " ".join(err.split())


PARENT = {
    "metrics gone": ("metrics", "the metrics it was rescored from"),
    "detections gone": ("detections", "the baseline detections it scored"),
}


@pytest.mark.parametrize("case", sorted(PARENT))
def test_a_rescore_whose_parent_is_gone_is_flagged(tmp_path, capsys, case):
    gone, says = PARENT[case]
    source = make_run(tmp_path, metrics())
    (source.parent / "x.baseline.dets.json.gz").write_bytes(b"dets")
    rescored = copy.deepcopy(metrics())
    rescored["bootstrap"]["seed"] = 3
    rescored["rescored_from"] = {"metrics": str(source), "sha256": "0" * 64}
    sha = hashlib.sha256(b"dets").hexdigest()  # the detections as scored: not stale, only orphaned
    rescored["detections"] = {"baseline": {"file": "x.baseline.dets.json.gz", "sha256": sha}}
    rescored["numbers_sha256"] = numbers_sha256(rescored)
    target = source.with_name("test_gender_best_rescored_seed3.json")
    target.write_text(json.dumps(rescored))
    (source if gone == "metrics" else source.parent / "x.baseline.dets.json.gz").unlink()
    code, out, err = faap_in_process(capsys, "compare", str(tmp_path), "--json")
    assert code == 0, err
    assert f"{target}: flagged parent-gone: {says}" in " ".join(err.split())
    if gone == "metrics":  # else the rescore is left out beside its evaluation (one row), as before
        row = next(r for r in json.loads(out)["rows"] if r.get("flags"))
        assert row["flags"] == ["parent-gone"]


def test_flags_are_a_column_of_the_tsv_and_the_csv(tmp_path):
    m = metrics()
    edited(m)
    make_run(tmp_path, m)
    code, out, err = run_here("compare", str(tmp_path), "--format", "tsv", "--csv", str(tmp_path / "rows.csv"))
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert dict(zip(header.split("\t"), row.split("\t"), strict=True))["flags"] == "edited,gap"
    (rec,) = list(csv.DictReader((tmp_path / "rows.csv").open()))
    assert rec["flags"] == "edited gap"


def test_compare_of_checked_files_stays_torch_free(tmp_path):
    make_run(tmp_path, metrics())
    code = (
        "import sys\nfrom faapkit.cli import main\n"
        "try:\n    main(['compare', sys.argv[1], '--json'])\nexcept SystemExit as e:\n    assert not e.code\n"
        "assert 'torch' not in sys.modules, 'faap compare imported torch'\n"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("check", "selected"),
    [("sha256 matches selection.json", 0), ("differs from selection.json", None), (None, 0)],
)
def test_a_best_pt_evaluated_although_changed_is_not_shown_as_the_chosen_epoch(tmp_path, check, selected):
    """An evaluation made with --accept-changed-best was read as the run's epoch chosen on val, so
    compare put it in the across-seeds row 'chosen on val' among seeds whose best.pt was verified."""
    m = metrics()
    if check is not None:
        m["checkpoint_check"] = check
    f = make_run(tmp_path, m)
    (f.parents[1] / "selection.json").write_text(json.dumps({"epoch": 0, "split": "val"}))
    code, out, err = run_here("compare", str(tmp_path), "--json")
    assert code == 0, err
    (row,) = [r for r in json.loads(out)["rows"] if r["setting"] != "train only"]
    assert row["selected_epoch"] == selected
