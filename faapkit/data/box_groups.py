"""Groups read from each person's box, as FACET stores them (``annotations[i]["attributes"][ATTR]``),
rather than from the image (``images[i]["attributes"][ATTR]``).

``data.group_level`` says which level defines the groups: ``image``, ``box``, or ``auto`` (image
when some image carries the attribute, else box; refused when images and boxes both carry it,
since the two define different groups). At box level an image belongs to every group one of its
boxes belongs to, so an image of several people can belong to several groups. Crowd boxes
(``iscrowd``) need no attribute and make an image belong to no group: COCO scoring ignores them
for every group anyway. How such groups are scored: :mod:`faapkit.evaluate.cocoeval`; how
training reads them: :class:`faapkit.data.coco.GroupedDetectionDataset` (:func:`pair_ids`,
:func:`sampling_key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from faapkit.data.validate import Issues
from faapkit.errors import DataError

GROUP_LEVELS = ("auto", "image", "box")
Level = Literal["image", "box"]
LEVEL_HINT = "set data.group_level = image or box"


def carries(entry: dict[str, Any], attr: str) -> bool:
    """Whether an image or annotation entry has ``attributes[attr]`` (any value, null included)."""
    attrs = entry.get("attributes")
    return isinstance(attrs, dict) and attr in attrs


def choose_level(coco: dict[str, Any], path: Path, attr: str, requested: str) -> Level:
    """The level whose attribute defines the groups of one annotation file (see the module)."""
    if requested not in GROUP_LEVELS:
        raise DataError(f"data.group_level must be one of {', '.join(GROUP_LEVELS)}, not {requested!r}")
    on_boxes = any(carries(a, attr) for a in coco["annotations"])
    if requested == "image":
        if on_boxes and coco["images"] and not any(carries(img, attr) for img in coco["images"]):
            raise DataError(
                f"{path}: data.group_level is image, but attribute '{attr}' is on its boxes only, on no "
                "image; set data.group_level = box (or auto) to score the boxes' groups"
            )
        return "image"
    if requested == "box":
        if not on_boxes:
            present = sorted(
                {k for a in coco["annotations"] if isinstance(a.get("attributes"), dict) for k in a["attributes"]}
            )
            raise DataError(
                f"{path}: data.group_level is box but no box has attribute '{attr}' "
                f"(box attributes present: {', '.join(present) or 'none'})"
            )
        return "box"
    if on_boxes and any(carries(img, attr) for img in coco["images"]):
        raise DataError(
            f"{path}: both images and boxes carry attribute '{attr}', which define different groups; "
            f"{LEVEL_HINT} (faap eval: --set data.group_level=box, or the run's [data] setting)"
        )
    return "box" if on_boxes else "image"


def _valid_value(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_box_groups(coco: dict[str, Any], attr: str, issues: Issues) -> None:
    """Add each image's box-level group problems to ``issues``: boxes lacking ``attr`` (how many of
    the image's boxes, and the first), a value that is null, empty or not a string/number, an
    image without a box (it would belong to no group)."""
    by_image: dict[Any, list[tuple[Any, dict[str, Any]]]] = {}
    for i, ann in enumerate(coco["annotations"]):
        if not ann.get("iscrowd", 0):
            by_image.setdefault(ann["image_id"], []).append((ann.get("id", f"#{i}"), ann))
    for img in coco["images"]:
        where = f"image {img['id']!r} '{img['file_name']}'"
        anns = by_image.get(img["id"], [])
        missing = [ann_id for ann_id, a in anns if not carries(a, attr)]
        bad = [(ann_id, a["attributes"][attr]) for ann_id, a in anns if carries(a, attr)]
        bad = [(ann_id, v) for ann_id, v in bad if not _valid_value(v)]
        if missing:
            issues.add(
                "missing box attribute",
                f"{where}: {len(missing)} of its {len(anns)} boxes lack it, first annotation {missing[0]!r}",
                img["id"],
            )
        if bad:
            issues.add("bad box attribute", f"annotation {bad[0][0]!r} of {where}: {bad[0][1]!r}", img["id"])
        if not anns:
            issues.add("no group box", f"{where} has no (non-crowd) box", img["id"])


def box_group(ann: dict[str, Any], attr: str, aliases: dict[str, str]) -> str | None:
    """The group of one (checked) box, ``None`` for a crowd box without the attribute; gender
    values are named as at image level (``women`` -> ``female``)."""
    if not carries(ann, attr):
        return None
    group = str(ann["attributes"][attr])
    return aliases.get(group.lower(), group) if attr == "gender" else group


def pair_ids(anns: Sequence[dict[str, Any]], pair: Sequence[str]) -> list[int]:
    """Each box's group as training numbers it: 0 for ``pair[0]`` (disadvantaged), 1 for
    ``pair[1]`` (advantaged), -1 for any other group (or none)."""
    return [pair.index(a["group"]) if a.get("group") in pair[:2] else -1 for a in anns]


def sampling_key(held: Sequence[str], pair: Sequence[str]) -> int:
    """An image's group for the training sampler, from the groups its boxes hold: 0 when it holds
    a box of ``pair[0]`` (mixed images included: that is where those boxes are), 1 when all its
    boxes are of ``pair[1]``, -1 otherwise."""
    if pair and pair[0] in held:
        return 0
    return 1 if len(pair) > 1 and tuple(held) == (pair[1],) else -1


def no_attribute(path: Path, split: str, attr: str, image_attrs: set[str], coco: dict[str, Any]) -> DataError:
    """The refusal of a split where neither images nor boxes carry ``attr``, naming the
    attributes that are there, on images and on boxes."""
    on_boxes = {
        k for a in coco.get("annotations", []) if isinstance(a.get("attributes"), dict) for k in a["attributes"]
    }
    present = ", ".join(sorted(image_attrs)) or "none"
    if on_boxes:
        present += f"; on boxes: {', '.join(sorted(on_boxes))}"
    return DataError(
        f"{path}: no image or box in split '{split}' has attribute '{attr}' (attributes present: {present})"
    )
