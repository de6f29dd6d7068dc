"""The person-level skin colour and gender annotations of COCO 2014 val (Zhao, Wang and
Russakovsky, "Understanding and Evaluating Racial Biases in Image Captioning", ICCV 2021),
joined onto COCO's own ``instances_val2014.json`` by annotation id.

The authors release ``instances_val2014.csv`` on request (a form linked from
princetonvisualai/imagecaptioning-bias); its columns are not published, so this reader assumes
only what a per-instance CSV keyed by COCO ids must hold, and is strict about it (docs/data.md):

* a header line; one row per annotated person;
* a column with the COCO annotation id (``id_column``, ``id`` by default, as the released
  image-level file names its COCO id): an integer, unique, the id of a ``person`` annotation of
  the COCO file; an ``image_id`` column, when there is one, must name that annotation's image;
* every other column is an attribute of the person (``skin``, ``gender``, ...), its text kept as
  the group name (``Light``, ``Female``, ``Unsure``: exactly as released); an empty cell is the
  group ``unlabelled``.

The imported split holds the COCO images with at least one annotated person, and all their
``person`` boxes: a person without a row is ``unlabelled`` in every attribute (kept, never
dropped); a crowd box stays an ignore region. Other categories' boxes are left out: faapkit
scores the person category.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faapkit.data.coco import read_annotation_file
from faapkit.data.importers.common import UNLABELLED, Imported, Row, image_size, read_csv
from faapkit.errors import DataError

DEFAULT_ID_COLUMN = "id"
IMAGE_COLUMN = "image_id"


def read_coco(path: Path) -> tuple[dict[str, Any], int]:
    """COCO's instance file and the id of its ``person`` category."""
    coco = read_annotation_file(path, required=("annotations",))
    person = [c["id"] for c in coco["categories"] if c.get("name") == "person"]
    if not person:
        raise DataError(f"{path} has no 'person' category (categories: {len(coco['categories'])})")
    return coco, person[0]


def import_coco_person(
    instances: Path, annotations: Path, images: Path, *, id_column: str = DEFAULT_ID_COLUMN
) -> Imported:
    """The annotated persons of ``annotations`` on COCO's ``instances`` file (see the module),
    image sizes checked against the files in ``images``."""
    if not images.is_dir():
        raise DataError(f"image folder not found: {images}")
    coco, person_id = read_coco(instances)
    header, rows = read_csv(annotations, (id_column,))
    attrs = [c for c in header if c not in (id_column, IMAGE_COLUMN)]
    if not attrs:
        raise DataError(f"{annotations} has no attribute column besides {id_column} (columns: {', '.join(header)})")
    persons = {a.get("id"): a for a in coco["annotations"] if a["category_id"] == person_id}
    labels = _labels(rows, annotations, instances, id_column, persons, coco)
    source = {"release": "Zhao et al. 2021 COCO person annotations", "annotations": annotations.name}
    result = Imported(attributes=tuple(attrs), source={**source, "instances": instances.name, "id_column": id_column})
    chosen = {persons[ann_id]["image_id"] for ann_id in labels}
    for img in coco["images"]:
        if img["id"] in chosen:
            _add_image(result, img, images, instances)
    new_ids = {img["source_id"]: img["id"] for img in result.images}
    for img in result.images:
        del img["source_id"]
    for ann in sorted(persons.values(), key=lambda a: (new_ids.get(a["image_id"], 0), a.get("id", 0))):
        if ann["image_id"] in new_ids:
            _add_person(result, ann, new_ids[ann["image_id"]], labels.get(ann.get("id")), attrs)
    result.leave_out_groupless_images()
    return result


def _labels(
    rows: list[Row],
    annotations: Path,
    instances: Path,
    id_column: str,
    persons: dict[Any, dict[str, Any]],
    coco: dict[str, Any],
) -> dict[int, Row]:
    """Each row by the COCO annotation id it names; refused, naming the line, for an id that is no
    integer, repeats, is not in ``instances`` (all such ids counted) or is not a person's."""
    by_id: dict[int, Row] = {}
    unknown: list[tuple[Row, str]] = []
    kinds = {a.get("id"): a["category_id"] for a in coco["annotations"]}
    for row in rows:
        cell = row.cells[id_column]
        where = f"{annotations} line {row.line}, column {id_column}"
        try:
            ann_id = int(cell)
        except ValueError:
            raise DataError(f"{where}: {cell!r} is not a COCO annotation id") from None
        if ann_id in by_id:
            raise DataError(f"{where}: annotation id {ann_id} is listed again (first at line {by_id[ann_id].line})")
        if ann_id not in kinds:
            unknown.append((row, cell))
        elif ann_id not in persons:
            raise DataError(
                f"{where}: annotation {ann_id} of {instances.name} is of category {kinds[ann_id]}, not person"
            )
        else:
            _check_image(row, persons[ann_id], annotations)
        by_id[ann_id] = row
    if unknown:
        first, cell = unknown[0]
        raise DataError(
            f"{len(unknown)} annotation id(s) of {annotations} are not in {instances} (first: {cell} at line "
            f"{first.line}); is it COCO's 2014 val instance file?"
        )
    if not by_id:
        raise DataError(f"{annotations} has a header but no person rows")
    return by_id


def _check_image(row: Row, ann: dict[str, Any], annotations: Path) -> None:
    cell = row.cells.get(IMAGE_COLUMN)
    if cell is not None and cell != str(ann["image_id"]):
        raise DataError(
            f"{annotations} line {row.line}, column {IMAGE_COLUMN}: {cell!r}, but annotation {ann['id']} "
            f"is of image {ann['image_id']} in the COCO file"
        )


def _add_image(result: Imported, img: dict[str, Any], images: Path, instances: Path) -> None:
    path = images / img["file_name"]
    if not path.is_file():
        raise DataError(f"image file not found: {path} (image {img['id']} of {instances})")
    size = image_size(path)
    if size != (int(img["width"]), int(img["height"])):
        raise DataError(f"image {path} is {size[0]}x{size[1]}, {instances} says {img['width']}x{img['height']}")
    result.images.append(
        {"id": len(result.images) + 1, "file_name": img["file_name"], "width": size[0], "height": size[1]}
        | {"coco_id": img["id"], "source_id": img["id"]}
    )


def _add_person(result: Imported, ann: dict[str, Any], image_id: int, row: Row | None, attrs: list[str]) -> None:
    """One COCO person box, renumbered, with its groups (``unlabelled`` without a row)."""
    box: dict[str, Any] = {
        "id": len(result.annotations) + 1,
        "image_id": image_id,
        "category_id": 1,
        "bbox": ann["bbox"],
        "area": ann.get("area", float(ann["bbox"][2]) * float(ann["bbox"][3])),
        "iscrowd": int(bool(ann.get("iscrowd", 0))),
        "coco_id": ann.get("id"),
    }
    if row is not None:
        box["person_annotations"] = dict(row.cells)
    if box["iscrowd"]:
        result.ignored += 1
    else:
        box["attributes"] = {a: (row.cells[a] or UNLABELLED) if row else UNLABELLED for a in attrs}
    result.annotations.append(box)
