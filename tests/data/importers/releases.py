"""Small files in the formats the releases use, made from the mixed-group synthetic benchmark
(its tiny images, boxes and per-person gender and age), so that an import can be scored by the
shipped tiny detector and compared with the benchmark it came from.

FACET: ``annotations.csv`` with the released columns (``person_id, filename, class1, class2``,
one integer column per attribute value, ``bounding_box`` as a dict in text). Zhao et al. 2021:
COCO's instance file (ids that are not 1.., a non-person box) and a per-person CSV keyed by the
COCO annotation id (``id, image_id, skin, gender``: the columns faapkit assumes, docs/data.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from faapkit.data.importers.facet import SINGLE_CHOICE, SKIN_TONES
from faapkit.data.synth_mixed import MixedSpec, write_mixed

FACET_GENDER = {"female": "fem", "male": "masc"}
FACET_AGE = {"young": "young", "adult": "middle", "senior": "older"}
EXTRA = ("hair_color_black", "hair_color_na", "has_cap", "visible_face", "lighting_well_lit")
FACET_COLUMNS = (
    "person_id",
    "filename",
    "class1",
    "class2",
    *(f"{attr}_{v}" for attr, values in SINGLE_CHOICE.items() for v in values),
    *(f"skin_tone_{v}" for v in SKIN_TONES),
    *EXTRA,
    "bounding_box",
)


def mixed_benchmark(base: Path, seed: int = 1, images: int = 9) -> Path:
    """The mixed benchmark's ``coco`` folder (attributes layout, groups on the boxes)."""
    return write_mixed(base, MixedSpec(seed=seed, images=images)) / "coco"


def facet_row(
    person_id: int,
    filename: str,
    bbox: list[float],
    *,
    gender: str | None = "fem",
    age: str | None = "middle",
    skin: dict[str, int] | None = None,
    dont_care: bool | str = False,
    python_repr: bool = False,
) -> dict[str, str]:
    """One person as FACET writes it (``gender``/``age``: the value column set, None: none)."""
    row = {c: "0" for c in FACET_COLUMNS}
    row.update(person_id=str(person_id), filename=filename, class1="guitarist", class2="")
    for attr, value in (("gender_presentation", gender), ("age_presentation", age)):
        if value is not None:
            row[f"{attr}_{value}"] = "1"
    for tone, votes in ({"4": 2, "5": 1} if skin is None else skin).items():
        row[f"skin_tone_{tone}"] = str(votes)
    box = {"x": bbox[0], "y": bbox[1], "width": bbox[2], "height": bbox[3], "dont_care": dont_care}
    row["bounding_box"] = repr(box) if python_repr else json.dumps(box)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] | list[str] = FACET_COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _split(coco_dir: Path, split: str) -> dict[str, Any]:
    return json.loads((coco_dir / "annotations" / f"instances_{split}.json").read_text())


def facet_from_benchmark(coco_dir: Path, out: Path, split: str = "test") -> tuple[Path, Path]:
    """The benchmark's ``split`` as FACET's annotations file: (the CSV, the image folder)."""
    coco = _split(coco_dir, split)
    names = {img["id"]: img["file_name"] for img in coco["images"]}
    rows = [
        facet_row(
            1000 + a["id"],
            names[a["image_id"]],
            a["bbox"],
            gender=FACET_GENDER[a["attributes"]["gender"]],
            age=FACET_AGE[a["attributes"]["age"]],
        )
        for a in coco["annotations"]
    ]
    return write_csv(out, rows), coco_dir / "images" / split


def coco2014_from_benchmark(coco_dir: Path, out: Path, split: str = "test") -> tuple[Path, Path, Path]:
    """The benchmark's ``split`` as COCO's instance file (image ids from 500, annotation ids from
    9000, one car box on every image) and Zhao et al.'s per-person CSV (``Light`` for every
    person, the gender capitalised as released): (the JSON, the CSV, the image folder)."""
    coco = _split(coco_dir, split)
    images = [{**img, "id": 500 + img["id"], "license": 1} for img in coco["images"]]
    persons = [
        {**a, "id": 9000 + a["id"], "image_id": 500 + a["image_id"], "segmentation": []} for a in coco["annotations"]
    ]
    for a in persons:
        del a["attributes"]
    cars = [
        {
            "id": 20000 + img["id"],
            "image_id": img["id"],
            "category_id": 3,
            "bbox": [1, 1, 5, 5],
            "area": 25,
            "iscrowd": 0,
        }
        for img in images
    ]
    categories = [
        {"id": 1, "name": "person", "supercategory": "person"},
        {"id": 3, "name": "car", "supercategory": "vehicle"},
    ]
    instances = out / "instances_val2014.json"
    instances.write_text(json.dumps({"images": images, "annotations": persons + cars, "categories": categories}))
    rows = [
        {
            "id": str(9000 + a["id"]),
            "image_id": str(500 + a["image_id"]),
            "skin": "Light",
            "gender": a["attributes"]["gender"].capitalize(),
        }
        for a in coco["annotations"]
    ]
    table = write_csv(out / "instances_val2014.csv", rows, ("id", "image_id", "skin", "gender"))
    return instances, table, coco_dir / "images" / split
