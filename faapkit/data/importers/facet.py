"""FACET's ``annotations.csv`` (Gustafson et al., ICCV 2023) as box-level groups.

The released file has one row per person: ``filename`` (the image), ``bounding_box`` (a dict
written as text: ``x``, ``y``, ``width``, ``height`` in pixels and a ``dont_care`` flag), the
person classes ``class1``/``class2`` and one integer column per value of each attribute:
``gender_presentation_{masc,fem,non_binary,na}``, ``age_presentation_{young,middle,older,na}``,
``skin_tone_{1..10,na}`` (Monk skin tone; several annotators, each column counts those who chose
the value), and more (hair, accessories, visibility, lighting). Which columns were checked, and
where, is in docs/data.md.

Each person becomes a box of category ``person`` with ``attributes``:

* ``gender_presentation`` / ``age_presentation``: the one value column set (``masc``, ``fem``,
  ``non_binary``, ``na``; ``young``, ``middle``, ``older``, ``na``); none set: ``unlabelled``;
  two or more set: the row is refused (these are single-choice);
* ``skin_tone``: the value most annotators chose (``1``..``10`` or ``na``), ``tied`` when several
  share the most votes, ``unlabelled`` when none voted.

``na`` and ``unlabelled`` stay groups of their own: no person is dropped. A ``dont_care`` box is an
ignore region (``iscrowd`` 1, no group): detections on it count neither way. Every released
column is kept, unchanged, in the box's ``facet`` entry (so another rule can be applied later).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

from faapkit.data.importers.common import UNLABELLED, Imported, Row, image_size, read_csv
from faapkit.data.validate import BOX_TOLERANCE_PX
from faapkit.errors import DataError

SINGLE_CHOICE = {
    "gender_presentation": ("masc", "fem", "non_binary", "na"),
    "age_presentation": ("young", "middle", "older", "na"),
}
SKIN_TONES = (*(str(v) for v in range(1, 11)), "na")
TIED = "tied"
ATTRIBUTES = (*SINGLE_CHOICE, "skin_tone")
REQUIRED = (
    "filename",
    "bounding_box",
    *(f"{attr}_{v}" for attr, values in SINGLE_CHOICE.items() for v in values),
    *(f"skin_tone_{v}" for v in SKIN_TONES),
)
BOX_KEYS = ("x", "y", "width", "height")


class RowError(DataError):
    """A bad cell: the message says which column; :func:`import_facet` adds the file and line."""


def import_facet(annotations: Path, images: Path) -> Imported:
    """Every row of FACET's ``annotations`` file as a person box (see the module), images read
    from ``images`` (their sizes from the headers). Refused, naming the file, line and column, at
    the first bad row; a missing image is named with the line that lists it."""
    if not images.is_dir():
        raise DataError(f"image folder not found: {images}")
    header, rows = read_csv(annotations, REQUIRED)
    result = Imported(
        attributes=ATTRIBUTES, source={"release": "FACET annotations.csv", "annotations": annotations.name}
    )
    image_ids: dict[str, int] = {}
    for row in rows:
        try:
            name = _cell(row, "filename")
            if name not in image_ids:
                width, height = _image(images, name, row, annotations)
                image_ids[name] = len(result.images) + 1
                result.images.append({"id": image_ids[name], "file_name": name, "width": width, "height": height})
            image = result.images[image_ids[name] - 1]
            box = _person(row, header, image)
        except RowError as exc:
            raise DataError(f"{annotations} line {row.line}: {exc}") from None
        result.annotations.append({"id": len(result.annotations) + 1, **box})
        result.ignored += box["iscrowd"]
    if not result.annotations:
        raise DataError(f"{annotations} has a header but no person rows")
    result.leave_out_groupless_images()
    unflagged = sum(bool(a.pop("no_dont_care_key", False)) for a in result.annotations)
    if unflagged:
        result.notes.append(
            f"{unflagged} of {len(result.annotations)} bounding_box cells have no dont_care key: "
            "read as false (scored as persons, not ignore regions)"
        )
    return result


def _image(images: Path, name: str, row: Row, annotations: Path) -> tuple[int, int]:
    path = images / name
    if not path.is_file():
        raise DataError(f"image file not found: {path} (listed by {annotations} line {row.line}, column filename)")
    return image_size(path)


def _cell(row: Row, column: str) -> str:
    value = row.cells[column]
    if not value:
        raise RowError(f"column {column} is empty")
    return value


def _person(row: Row, header: list[str], image: dict[str, Any]) -> dict[str, Any]:
    """One row's COCO box (without its id)."""
    bbox, flag = _bounding_box(row, image)
    dont_care = bool(flag)
    raw = {c: _raw(row.cells[c]) for c in header if c != "bounding_box"}
    box: dict[str, Any] = {
        "image_id": image["id"],
        "category_id": 1,
        "bbox": bbox,
        "area": bbox[2] * bbox[3],
        "iscrowd": int(dont_care),
        "facet": {**raw, "bounding_box": row.cells["bounding_box"]},
    }
    if flag is None:
        box["no_dont_care_key"] = True
    groups = {attr: _single_choice(row, attr, values) for attr, values in SINGLE_CHOICE.items()}
    groups["skin_tone"] = _skin_tone(row)
    if not dont_care:  # an ignore region belongs to no group
        box["attributes"] = groups
    return box


def _raw(cell: str) -> int | float | str:
    """A released cell as it was meant: an integer or number where it is one, else the text."""
    for kind in (int, float):
        try:
            number = kind(cell)
        except ValueError:
            continue
        return number if math.isfinite(number) else cell  # JSON has no NaN
    return cell


def _bounding_box(row: Row, image: dict[str, Any]) -> tuple[list[float], bool | None]:
    """The box ``[x, y, w, h]`` inside the image, and its ``dont_care`` flag (``None``: no such key)."""
    text = _cell(row, "bounding_box")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        try:
            parsed = ast.literal_eval(text)  # a Python dict's repr ('x': ...), as pandas writes one
        except (ValueError, SyntaxError):
            raise RowError(f"column bounding_box is not a dict: {text!r}") from None
    if not isinstance(parsed, dict) or any(k not in parsed for k in BOX_KEYS):
        raise RowError(f"column bounding_box has no {'/'.join(BOX_KEYS)}: {text!r}")
    values = [parsed[k] for k in BOX_KEYS]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise RowError(f"column bounding_box holds a non-number: {text!r}")
    x, y, w, h = (float(v) for v in values)
    tol = BOX_TOLERANCE_PX
    if w <= 0 or h <= 0:
        raise RowError(f"column bounding_box has a non-positive width or height: {text!r}")
    if x < -tol or y < -tol or x + w > image["width"] + tol or y + h > image["height"] + tol:
        raise RowError(
            f"column bounding_box {text!r} lies outside image '{image['file_name']}' "
            f"({image['width']}x{image['height']} by its header)"
        )
    return [x, y, w, h], None if "dont_care" not in parsed else _flag(parsed["dont_care"], text)


def _flag(value: Any, text: str) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RowError(f"column bounding_box has dont_care {value!r}, not true or false: {text!r}")


def _count(row: Row, column: str) -> int:
    """A value column's count (an integer >= 0; ``1.0`` as pandas may write it is 1)."""
    cell = _cell(row, column)
    try:
        number = float(cell)
    except ValueError:
        raise RowError(f"column {column} is {cell!r}, not a count") from None
    if not number.is_integer() or number < 0:
        raise RowError(f"column {column} is {cell!r}, not a count")
    return int(number)


def _single_choice(row: Row, attr: str, values: tuple[str, ...]) -> str:
    chosen = [v for v in values if _count(row, f"{attr}_{v}") > 0]
    if len(chosen) > 1:
        columns = ", ".join(f"{attr}_{v}" for v in chosen)
        raise RowError(f"columns {columns} are all set; {attr} takes one value")
    return chosen[0] if chosen else UNLABELLED


def _skin_tone(row: Row) -> str:
    votes = {v: _count(row, f"skin_tone_{v}") for v in SKIN_TONES}
    most = max(votes.values())
    if most == 0:
        return UNLABELLED
    top = [v for v, n in votes.items() if n == most]
    return top[0] if len(top) == 1 else TIED
