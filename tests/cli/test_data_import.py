"""``faap data import``: a FACET-format file and a Zhao et al. 2021 COCO-format pair, imported and
scored by ``faap eval`` with the shipped tiny detector. Both are the mixed-group benchmark in
the release's format, so each group's pycocotools numbers must equal the benchmark's own."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import faap_in_process, one_error
from tests.data.importers.releases import coco2014_from_benchmark, facet_from_benchmark, mixed_benchmark, write_csv

faap = faap_in_process
EVAL = ["--detector", "detr-synth-tiny-v3", "--device", "cpu", "--bootstrap", "20", "--quiet"]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    return mixed_benchmark(tmp_path_factory.mktemp("import") / "m", images=9)


@pytest.fixture(scope="module")
def benchmark_metrics(benchmark, tmp_path_factory) -> dict:
    from faapkit.cli import main

    out = tmp_path_factory.mktemp("scores") / "source.json"
    try:
        main(["eval", "--data", str(benchmark), *EVAL, "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code
    return json.loads(out.read_text())


def _scored(capsys, data: Path, out: Path, attr: str, disadvantaged: str, advantaged: str) -> dict:
    pair = ["--split-by", attr, "--disadvantaged", disadvantaged, "--advantaged", advantaged]
    code, _, err = faap(capsys, "eval", "--data", str(data), *pair, *EVAL, "--out", str(out))
    assert code == 0, err
    return json.loads(out.read_text())


def _same_numbers(got: dict, source: dict, names: dict[str, str]) -> None:
    assert got["group_level"] == "box" and got["dataset"]["images"] == source["dataset"]["images"]
    for mine, theirs in names.items():
        assert got["groups"][mine]["images"] == source["groups"][theirs]["images"]
        assert got["metrics"]["baseline"][mine] == source["metrics"]["baseline"][theirs]
    assert 0 < got["metrics"]["baseline"][next(iter(names))]["AP"] < 1  # real numbers, not a degenerate case


def test_facet_import_is_scored_by_gender_presentation(benchmark, benchmark_metrics, tmp_path, capsys):
    table, images = facet_from_benchmark(benchmark, tmp_path / "annotations.csv")
    out = tmp_path / "facet"
    code, _, err = faap(
        capsys, "data", "import", "facet", "--annotations", str(table), "--images", str(images), "--out", str(out)
    )
    assert code == 0, err
    assert "imported 17 person box(es) on 9 image(s) (0 ignore region(s))" in err
    assert "gender_presentation: fem=" in err and "skin_tone: 4=17" in err
    got = _scored(capsys, out, tmp_path / "m.json", "gender_presentation", "fem", "masc")
    _same_numbers(got, benchmark_metrics, {"fem": "female", "masc": "male"})
    assert got["split_by"] == "gender_presentation"


def test_coco2014_person_attributes_import_is_scored_by_gender(benchmark, benchmark_metrics, tmp_path, capsys):
    instances, table, images = coco2014_from_benchmark(benchmark, tmp_path)
    out = tmp_path / "coco"
    args = ["--instances", str(instances), "--annotations", str(table), "--images", str(images), "--out", str(out)]
    code, _, err = faap(capsys, "data", "import", "coco-person-attributes", *args)
    assert code == 0, err
    assert "imported 17 person box(es) on 9 image(s)" in err and "skin: Light=17" in err
    got = _scored(capsys, out, tmp_path / "m.json", "gender", "female", "male")  # faapkit names genders so
    _same_numbers(got, benchmark_metrics, {"female": "female", "male": "male"})


def test_an_import_is_never_replaced_without_force(benchmark, tmp_path, capsys):
    table, images = facet_from_benchmark(benchmark, tmp_path / "annotations.csv")
    out = tmp_path / "facet"
    args = ["data", "import", "facet", "--annotations", str(table), "--images", str(images), "--out", str(out)]
    assert faap(capsys, *args)[0] == 0
    written = out / "annotations" / "instances_test.json"
    before = written.read_bytes()
    code, _, err = faap(capsys, *args)
    one_error(err, 1, code, f"--out {written} exists; pass --force to replace it")
    code, _, err = faap(capsys, *args, "--force")
    assert code == 0, err
    assert written.read_bytes() == before  # the same release gives the same bytes
    copy = shutil.copytree(images, tmp_path / "copy")
    link = out / "images" / "val"
    link.symlink_to(copy, target_is_directory=True)  # another split's images are elsewhere
    code, _, err = faap(capsys, *args, "--split", "val")
    one_error(err, 1, code, f"{link} links to {copy}, not {images}; pass --force to replace the link")
    assert not (out / "annotations" / "instances_val.json").exists()
    assert faap(capsys, *args, "--split", "val", "--force")[0] == 0
    assert link.resolve() == images.resolve()


def test_a_bad_row_is_one_line_naming_it_and_writes_nothing(benchmark, tmp_path, capsys):
    table, images = facet_from_benchmark(benchmark, tmp_path / "annotations.csv")
    lines = table.read_text().splitlines()
    lines[4] = lines[4].replace("width", "w", 1)
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "facet"
    code, _, err = faap(
        capsys, "data", "import", "facet", "--annotations", str(table), "--images", str(images), "--out", str(out)
    )
    one_error(err, 1, code, f"{table} line 5: column bounding_box has no x/y/width/height")
    assert not out.exists()


def test_dont_care_and_unknown_persons_are_scored_as_facet_says(benchmark, benchmark_metrics, tmp_path, capsys):
    table, images = facet_from_benchmark(benchmark, tmp_path / "annotations.csv")
    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    male = next(i for i, r in enumerate(rows) if r["gender_presentation_masc"] == "1")
    females = {r["filename"]: i for i, r in enumerate(rows) if r["gender_presentation_fem"] == "1"}
    rows[male]["bounding_box"] = rows[male]["bounding_box"].replace('"dont_care": false', '"dont_care": true')
    for i in list(females.values())[:2]:  # two images: a bootstrap CI needs two per group
        rows[i].update(gender_presentation_fem="0", gender_presentation_na="1")
    write_csv(table, rows)
    out = tmp_path / "facet"
    code, _, err = faap(
        capsys, "data", "import", "facet", "--annotations", str(table), "--images", str(images), "--out", str(out)
    )
    assert code == 0, err
    assert "(1 ignore region(s))" in err and "na=2" in err
    got = _scored(capsys, out, tmp_path / "m.json", "gender_presentation", "fem", "masc")
    source = benchmark_metrics["groups"]
    assert got["groups"]["masc"]["boxes"] == source["male"]["boxes"] - 1  # the dont-care person is no group's
    assert got["groups"]["fem"]["boxes"] == source["female"]["boxes"] - 2
    assert got["groups"]["na"] == {"images": 2, "boxes": 2}
    assert 0 < got["metrics"]["baseline"]["masc"]["AP"] < 1
