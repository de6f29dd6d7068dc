"""FACET's annotations file as box-level groups: sizes from the image headers, the group rules
(single choice, skin tone votes, unknown values kept), dont-care boxes as ignore regions, and
bad rows refused by line and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from faapkit.data.coco import load_split
from faapkit.data.importers.common import write_split
from faapkit.data.importers.facet import import_facet
from faapkit.errors import DataError
from tests.data.importers.releases import FACET_COLUMNS, facet_from_benchmark, facet_row, mixed_benchmark, write_csv


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    return mixed_benchmark(tmp_path_factory.mktemp("facet") / "m", images=6)


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(folder / "sa_1.jpg")
    Image.new("RGB", (40, 80), (90, 90, 90)).save(folder / "sa_2.png")
    return folder


def test_the_benchmark_as_facet_comes_back_with_its_boxes_groups_and_sizes(benchmark, tmp_path):
    table, folder = facet_from_benchmark(benchmark, tmp_path / "annotations.csv")
    got = import_facet(table, folder)
    source = json.loads((benchmark / "annotations" / "instances_test.json").read_text())
    assert [(i["file_name"], i["width"], i["height"]) for i in got.images] == [
        (i["file_name"], i["width"], i["height"]) for i in source["images"]
    ]
    assert [a["bbox"] for a in got.annotations] == [[float(v) for v in a["bbox"]] for a in source["annotations"]]
    genders = {"female": "fem", "male": "masc"}
    assert [a["attributes"]["gender_presentation"] for a in got.annotations] == [
        genders[a["attributes"]["gender"]] for a in source["annotations"]
    ]
    assert got.ignored == 0 and got.group_counts("skin_tone") == {"4": len(source["annotations"])}
    first = got.annotations[0]["facet"]
    assert first["person_id"] == 1001 and first["class1"] == "guitarist" and first["hair_color_black"] == 0


def test_groups_follow_the_release_rules_and_unknowns_are_kept(images, tmp_path):
    rows = [
        facet_row(1, "sa_1.jpg", [1, 2, 30, 40], gender="masc", skin={"3": 2, "7": 1}),
        facet_row(2, "sa_1.jpg", [10, 2, 30, 40], gender="na", age="na", skin={"3": 1, "7": 1}),
        facet_row(3, "sa_2.png", [0, 0, 40, 80], gender=None, age=None, skin={}),
        facet_row(4, "sa_2.png", [5, 5, 10, 10], gender="non_binary", skin={"na": 3, "2": 1}, python_repr=True),
        facet_row(5, "sa_2.png", [5, 5, 10, 10], dont_care=True),
    ]
    got = import_facet(write_csv(tmp_path / "a.csv", rows), images)
    groups = [a.get("attributes") for a in got.annotations]
    assert groups[:4] == [
        {"gender_presentation": "masc", "age_presentation": "middle", "skin_tone": "3"},
        {"gender_presentation": "na", "age_presentation": "na", "skin_tone": "tied"},
        {"gender_presentation": "unlabelled", "age_presentation": "unlabelled", "skin_tone": "unlabelled"},
        {"gender_presentation": "non_binary", "age_presentation": "middle", "skin_tone": "na"},
    ]
    dont_care = got.annotations[4]
    assert groups[4] is None and dont_care["iscrowd"] == 1 and got.ignored == 1
    assert dont_care["facet"]["gender_presentation_fem"] == 1  # what the release says of it is kept
    assert [(i["file_name"], i["width"], i["height"]) for i in got.images] == [
        ("sa_1.jpg", 64, 48),
        ("sa_2.png", 40, 80),
    ]
    assert got.group_counts("gender_presentation") == {"masc": 1, "na": 1, "non_binary": 1, "unlabelled": 1}


def test_the_written_split_loads_with_box_level_groups_and_the_ignore_region(images, tmp_path):
    rows = [
        facet_row(1, "sa_1.jpg", [1, 2, 30, 40], gender="fem"),
        facet_row(2, "sa_1.jpg", [30, 2, 30, 40], gender="masc"),
        facet_row(3, "sa_2.png", [0, 0, 40, 80], gender="masc", dont_care="True", python_repr=True),
        facet_row(4, "sa_2.png", [2, 2, 20, 30], gender="na"),
    ]
    out = tmp_path / "facet"
    write_split(out, "test", import_facet(write_csv(tmp_path / "a.csv", rows), images), images, force=False)
    split = load_split(out, "test", split_by="gender_presentation")
    assert split.group_level == "box" and split.groups == ["fem", "masc", "na"]
    assert split.group_counts() == {"fem": 1, "masc": 1, "na": 1}
    crowd = [a for r in split.records for a in r.annotations if a["iscrowd"]]
    assert len(crowd) == 1 and "group" not in crowd[0]
    assert (out / "images" / "test").resolve() == images.resolve()


def _rows_with(images: Path, tmp_path: Path, column: str, value: str) -> Path:
    rows = [facet_row(1, "sa_1.jpg", [1, 2, 30, 40]), facet_row(2, "sa_2.png", [1, 2, 30, 40])]
    rows[1][column] = value
    return write_csv(tmp_path / "bad.csv", rows)


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        (
            "gender_presentation_masc",
            "1",
            "line 3: columns gender_presentation_masc, gender_presentation_fem are all set",
        ),
        ("skin_tone_3", "two", "line 3: column skin_tone_3 is 'two', not a count"),
        ("age_presentation_na", "-1", "line 3: column age_presentation_na is '-1', not a count"),
        ("age_presentation_na", "", "line 3: column age_presentation_na is empty"),
        ("bounding_box", "[1, 2, 3, 4]", "line 3: column bounding_box has no x/y/width/height"),
        ("bounding_box", "{'x': 1, 'y': 2, 'width': 3}", "line 3: column bounding_box has no x/y/width/height"),
        ("bounding_box", "x=1", "line 3: column bounding_box is not a dict: 'x=1'"),
        ("bounding_box", '{"x": 1, "y": 2, "width": 0, "height": 4}', "line 3: column bounding_box has a non-positive"),
        (
            "bounding_box",
            '{"x": 1, "y": 2, "width": 50, "height": 4}',
            "lies outside image 'sa_2.png' (40x80 by its header)",
        ),
        ("bounding_box", '{"x": 1, "y": 2, "width": 5, "height": 4, "dont_care": "maybe"}', "dont_care 'maybe'"),
        ("filename", "", "line 3: column filename is empty"),
    ],
)
def test_a_bad_row_is_refused_by_line_and_column(images, tmp_path, column, value, says):
    table = _rows_with(images, tmp_path, column, value)
    with pytest.raises(DataError) as exc:
        import_facet(table, images)
    assert str(exc.value).startswith(f"{table} line 3") and says in str(exc.value)


def test_a_missing_image_is_named_with_the_line_listing_it(images, tmp_path):
    table = _rows_with(images, tmp_path, "filename", "sa_9.jpg")
    with pytest.raises(
        DataError, match=r"image file not found: .*sa_9\.jpg \(listed by .*bad\.csv line 3, column filename\)"
    ):
        import_facet(table, images)


def test_a_file_not_in_facets_format_is_refused_naming_what_is_missing(images, tmp_path):
    columns = [c for c in FACET_COLUMNS if c != "skin_tone_na"]
    table = write_csv(tmp_path / "old.csv", [{c: "0" for c in columns}], columns)
    with pytest.raises(DataError, match=r"old\.csv has no column skin_tone_na \(columns: person_id, filename"):
        import_facet(table, images)
    short = tmp_path / "short.csv"
    short.write_text(",".join(FACET_COLUMNS) + "\n1,sa_1.jpg\n")
    with pytest.raises(DataError, match=r"short\.csv line 2: 2 cells for the header's \d+ columns"):
        import_facet(short, images)


def test_a_box_without_a_dont_care_key_is_a_person_and_said(images, tmp_path):
    rows = [facet_row(1, "sa_1.jpg", [1, 2, 30, 40]), facet_row(2, "sa_2.png", [1, 2, 30, 40])]
    rows[1]["bounding_box"] = '{"x": 1, "y": 2, "width": 30, "height": 40}'
    got = import_facet(write_csv(tmp_path / "a.csv", rows), images)
    assert got.ignored == 0 and all("attributes" in a and "no_dont_care_key" not in a for a in got.annotations)
    assert got.notes == [
        "1 of 2 bounding_box cells have no dont_care key: read as false (scored as persons, not ignore regions)"
    ]
    assert import_facet(write_csv(tmp_path / "b.csv", rows[:1]), images).notes == []


def test_a_repeated_column_is_refused(images, tmp_path):
    table = tmp_path / "twice.csv"
    table.write_text(",".join((*FACET_COLUMNS, "class1")) + "\n")
    with pytest.raises(DataError, match=r"twice\.csv: column 'class1' appears more than once in the header"):
        import_facet(table, images)


def test_an_image_holding_only_dont_care_boxes_is_left_out_and_said(images, tmp_path):
    rows = [
        facet_row(1, "sa_1.jpg", [1, 2, 30, 40]),
        facet_row(2, "sa_2.png", [1, 2, 30, 40], dont_care=True),
        facet_row(3, "sa_2.png", [3, 2, 30, 40], dont_care=True),
    ]
    got = import_facet(write_csv(tmp_path / "a.csv", rows), images)
    assert [i["file_name"] for i in got.images] == ["sa_1.jpg"] and len(got.annotations) == 1 and got.ignored == 0
    assert got.notes == [
        "left out 1 image(s) whose every box is an ignore region (2 box(es); first: sa_2.png): they belong to no group"
    ]
    with pytest.raises(DataError, match="every box of the 1 image"):
        import_facet(write_csv(tmp_path / "b.csv", rows[1:]), images)
