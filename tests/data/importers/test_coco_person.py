"""Zhao et al.'s per-person labels joined onto COCO's own instance file by annotation id: the
images and person boxes kept, a person without a label kept as ``unlabelled``, crowd boxes as
ignore regions, and every id that does not fit refused by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faapkit.data.importers.coco_person import import_coco_person
from faapkit.errors import DataError
from tests.data.importers.releases import coco2014_from_benchmark, mixed_benchmark, write_csv

COLUMNS = ("id", "image_id", "skin", "gender")


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("coco2014")
    return coco2014_from_benchmark(mixed_benchmark(base / "m", images=6), base)


def _rows(table: Path) -> list[dict[str, str]]:
    import csv

    with table.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_labels_land_on_their_boxes_and_the_unlabelled_are_kept(release, tmp_path):
    instances, table, images = release
    coco = json.loads(instances.read_text())
    rows = _rows(table)
    first_image = int(rows[0]["image_id"])
    on_first = [r for r in rows if int(r["image_id"]) == first_image]
    kept = [r for r in rows if int(r["image_id"]) != first_image] + on_first[1:]  # one person of it unlabelled
    kept[0]["skin"] = ""  # a labelled person without a skin colour
    got = import_coco_person(instances, write_csv(tmp_path / "p.csv", kept, COLUMNS), images)
    assert len(got.images) == len(coco["images"]) and {i["coco_id"] for i in got.images} == {
        i["id"] for i in coco["images"]
    }
    persons = [a for a in coco["annotations"] if a["category_id"] == 1]
    assert len(got.annotations) == len(persons)  # the car boxes are left out, every person kept
    by_coco = {a["coco_id"]: a for a in got.annotations}
    unlabelled = by_coco[int(on_first[0]["id"])]
    assert unlabelled["attributes"] == {"skin": "unlabelled", "gender": "unlabelled"}
    assert "person_annotations" not in unlabelled
    assert by_coco[int(kept[0]["id"])]["attributes"]["skin"] == "unlabelled"
    labelled = by_coco[int(kept[1]["id"])]
    assert labelled["attributes"] == {"skin": kept[1]["skin"], "gender": kept[1]["gender"]}
    assert labelled["person_annotations"]["id"] == kept[1]["id"]
    source = {a["id"]: a for a in coco["annotations"]}
    assert all(a["bbox"] == source[a["coco_id"]]["bbox"] for a in got.annotations)
    image_of = {i["id"]: i["coco_id"] for i in got.images}
    assert all(image_of[a["image_id"]] == source[a["coco_id"]]["image_id"] for a in got.annotations)


def test_only_images_with_a_labelled_person_are_imported_and_crowds_are_ignore_regions(release, tmp_path):
    instances, table, images = release
    coco = json.loads(instances.read_text())
    crowd = next(a for a in coco["annotations"] if a["category_id"] == 1)
    crowd["iscrowd"] = 1
    edited = tmp_path / "instances_val2014.json"
    edited.write_text(json.dumps(coco))
    rows = [r for r in _rows(table) if int(r["image_id"]) == crowd["image_id"]]
    got = import_coco_person(edited, write_csv(tmp_path / "p.csv", rows, COLUMNS), images)
    assert [i["coco_id"] for i in got.images] == [crowd["image_id"]]
    ignored = [a for a in got.annotations if a["iscrowd"]]
    assert got.ignored == 1 and [a["coco_id"] for a in ignored] == [crowd["id"]] and "attributes" not in ignored[0]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"id": "123456"}, "1 annotation id(s) of {table} are not in {instances} (first: 123456 at line 3)"),
        ({"id": "x7"}, "{table} line 3, column id: 'x7' is not a COCO annotation id"),
        ({"id": "FIRST"}, "{table} line 3, column id: annotation id {first} is listed again (first at line 2)"),
        (
            {"id": "CAR"},
            "{table} line 3, column id: annotation {car} of instances_val2014.json is of category 3, not person",
        ),
        ({"image_id": "77"}, "{table} line 3, column image_id: '77', but annotation {second} is of image"),
    ],
)
def test_an_id_that_does_not_fit_is_refused_by_line(release, tmp_path, change, says):
    instances, table, images = release
    rows = _rows(table)
    car = next(a["id"] for a in json.loads(instances.read_text())["annotations"] if a["category_id"] == 3)
    names = {"FIRST": rows[0]["id"], "CAR": str(car)}
    rows[1].update({k: names.get(v, v) for k, v in change.items()})
    bad = write_csv(tmp_path / "bad.csv", rows, COLUMNS)
    with pytest.raises(DataError) as exc:
        import_coco_person(instances, bad, images)
    expected = says.format(table=bad, instances=instances, first=rows[0]["id"], car=car, second=_rows(table)[1]["id"])
    assert expected in str(exc.value)


def test_the_id_column_is_required_by_name(release, tmp_path):
    instances, table, images = release
    with pytest.raises(DataError, match=r"has no column ann_id \(columns: id, image_id, skin, gender\)"):
        import_coco_person(instances, table, images, id_column="ann_id")
    only_ids = write_csv(tmp_path / "ids.csv", [{"id": r["id"]} for r in _rows(table)], ("id",))
    with pytest.raises(DataError, match="has no attribute column besides id"):
        import_coco_person(instances, only_ids, images)


def test_a_missing_image_or_another_size_is_named(release, tmp_path):
    instances, table, images = release
    coco = json.loads(instances.read_text())
    coco["images"][0]["width"] += 1
    edited = tmp_path / "instances_val2014.json"
    edited.write_text(json.dumps(coco))
    with pytest.raises(DataError, match=rf"image .*{coco['images'][0]['file_name']} is \d+x\d+, .* says"):
        import_coco_person(edited, table, images)
    coco["images"][0]["file_name"] = "COCO_val2014_000000000042.jpg"
    edited.write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"image file not found: .*COCO_val2014_000000000042\.jpg \(image 501 of"):
        import_coco_person(edited, table, images)
