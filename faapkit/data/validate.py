"""Dataset validation: one pass over the annotations, one over the image files (header + bytes).

Two kinds of problems:

* *structural* (an entry without ``id``/``bbox``/..., two images sharing an id): the file cannot be
  read unambiguously, so it is always refused;
* *per image* (an invalid box, an unknown category, a missing or null attribute, a JSON size that
  differs from the file, an unsupported pixel mode): refused by default (``on_invalid="fail"``), or
  the whole image is left out and counted (``on_invalid="skip"``). Leaving out the whole image, never
  a single box, keeps the ground truth of every evaluated image complete.

Training and evaluation load data through the same code, so both apply the same rules.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faapkit.errors import DataError

# Boxes may exceed the image by rounding (COCO stores floats); more than this is an error.
BOX_TOLERANCE_PX = 1.0
# Modes PIL converts to RGB faithfully; the 16-bit grey modes are scaled here (PIL's own
# conversion clips them, which turns most 16-bit images all white).
RGB_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "La"}
GREY16_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}

KIND_TEXT = {
    "invalid box": "annotation(s) with an invalid bbox",
    "unknown category": "annotation(s) with a category_id not in 'categories'",
    "unknown image": "annotation(s) whose image_id is not in 'images'",
    "missing attribute": "image(s) lack attribute '{attr}'",
    "null attribute": "image(s) have attribute '{attr}' null or empty",
    "missing box attribute": "image(s) with boxes lacking attribute '{attr}'",
    "bad box attribute": "image(s) with a box whose attribute '{attr}' is null, empty or not a string/number",
    "no group box": "image(s) without a box carrying attribute '{attr}' (box-level groups)",
    "size mismatch": "image(s) whose width/height in the JSON differ from the image file",
    "unsupported mode": "image(s) in an unsupported pixel mode",
    "extreme aspect ratio": "image(s) whose resized side would be under 1 px (an aspect ratio the detector's "
    "size policy cannot honour: short side to min_size, long side capped at max_size)",
}


@dataclass
class Issues:
    """Per-image problems found so far: a count and the first occurrence per kind, and which
    images (by their id in the source file) are affected."""

    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)
    images: set[Any] = field(default_factory=set)

    def add(self, kind: str, where: str, image_id: Any = None) -> None:
        self.counts[kind] += 1
        self.first.setdefault(kind, where)
        if image_id is not None:
            self.images.add(image_id)

    def merge(self, other: Issues) -> None:
        self.counts.update(other.counts)
        for kind, where in other.first.items():
            self.first.setdefault(kind, where)

    def describe(self, attr: str) -> str:
        """``"3 annotation(s) with an invalid bbox (first: ...); ..."`` for every kind found."""
        return "; ".join(
            f"{n} {KIND_TEXT[k].format(attr=attr)} (first: {self.first[k]})" for k, n in self.counts.items()
        )


def _where(img: dict[str, Any]) -> str:
    return f"image {img.get('id')!r} '{img.get('file_name')}'"


def check_structure(coco: dict[str, Any], path: Path) -> None:
    """Refuse entries that cannot be interpreted: missing keys, non-numeric sizes, duplicate ids,
    one file under two ids."""
    seen: dict[Any, str] = {}
    duplicates: list[str] = []
    files: dict[str, Any] = {}
    for i, img in enumerate(coco["images"]):
        if not isinstance(img, dict):
            raise DataError(f"{path}: images[{i}] is not an object")
        for key in ("id", "file_name", "width", "height"):
            if key not in img:
                raise DataError(f"{path}: images[{i}] (id {img.get('id')!r}) has no '{key}'")
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise DataError(f"{path}: image {img['id']!r} has an invalid file_name {img['file_name']!r}")
        for key in ("width", "height"):
            value = img[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise DataError(f"{path}: image {img['id']!r} '{img['file_name']}' has {key} {value!r}")
        if isinstance(img["id"], bool) or not isinstance(img["id"], int | str):
            raise DataError(f"{path}: images[{i}] has an invalid id {img['id']!r}")
        if img["id"] in seen:
            duplicates.append(f"id {img['id']!r} used by '{seen[img['id']]}' and '{img['file_name']}'")
        else:
            seen[img["id"]] = img["file_name"]
        if img["file_name"] in files and files[img["file_name"]] != img["id"]:
            raise DataError(
                f"{path}: image ids {files[img['file_name']]!r} and {img['id']!r} both name file "
                f"'{img['file_name']}'; one image counted twice changes every AP it enters"
            )
        files.setdefault(img["file_name"], img["id"])
    if duplicates:
        raise DataError(
            f"{path}: {len(duplicates)} image id(s) are used by more than one image (first: {duplicates[0]}); "
            "their boxes cannot be attributed"
        )
    for i, ann in enumerate(coco["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{path}: annotations[{i}] is not an object")
        for key in ("image_id", "bbox", "category_id"):
            if key not in ann:
                raise DataError(f"{path}: annotation {ann.get('id', f'#{i}')!r} has no '{key}'")
    for i, cat in enumerate(coco["categories"]):
        if not isinstance(cat, dict) or "id" not in cat:
            raise DataError(f"{path}: categories[{i}] has no 'id'")


def box_problem(bbox: Any, width: float, height: float) -> str | None:
    """Why a COCO ``[x, y, w, h]`` box is unusable in an image of that size, or None."""
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        return f"bbox {bbox!r} is not [x, y, w, h]"
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        return f"bbox {bbox!r} holds a non-number"
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return f"bbox {list(bbox)} is not finite"
    if w <= 0 or h <= 0:
        return f"bbox {list(bbox)} has a non-positive width or height"
    tol = BOX_TOLERANCE_PX
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return f"bbox {list(bbox)} lies outside the {width:g}x{height:g} image"
    return None


def area_problem(area: Any) -> str | None:
    """``area`` may be absent (the box's w*h is used, as pycocotools does for detections), else a
    finite number >= 0 (pycocotools files boxes into small/medium/large by it)."""
    if area is None:
        return None
    if isinstance(area, bool) or not isinstance(area, int | float) or not math.isfinite(area) or area < 0:
        return f"area {area!r} is not a finite number >= 0"
    return None


def check_annotations(coco: dict[str, Any], attr: str | None, path: Path) -> Issues:
    """Per-image problems of one (structurally valid) annotation file. ``attr`` None: the group
    comes from the folder (research layout), so attributes are not checked."""
    issues = Issues()
    images = {img["id"]: img for img in coco["images"]}
    categories = {cat["id"] for cat in coco["categories"]}
    for img in coco["images"]:
        if attr is None:
            continue
        attrs = img.get("attributes")
        if not isinstance(attrs, dict) or attr not in attrs:
            issues.add("missing attribute", _where(img), img["id"])
        elif attrs[attr] is None or (isinstance(attrs[attr], str) and not attrs[attr].strip()):
            issues.add("null attribute", _where(img), img["id"])
    for i, ann in enumerate(coco["annotations"]):
        name = f"annotation {ann.get('id', f'#{i}')!r}"
        img = images.get(ann["image_id"])
        if img is None:
            issues.add("unknown image", f"{name}: image_id {ann['image_id']!r}")
            continue
        problem = box_problem(ann["bbox"], float(img["width"]), float(img["height"])) or area_problem(ann.get("area"))
        if problem is not None:
            issues.add("invalid box", f"{name} of {_where(img)}: {problem}", img["id"])
        if categories and ann["category_id"] not in categories:
            issues.add("unknown category", f"{name} of {_where(img)}: category_id {ann['category_id']!r}", img["id"])
    return issues


def check_resize(coco: dict[str, Any], resize: Sequence[tuple[int, int | None]], issues: Issues) -> None:
    """Add the images that some ``(short side, long side cap)`` of the detector's size policy
    would resize to under 1 px (``resized_hw``: the cap shrinks the short side of a very long image
    to 0); they cannot be fed to the detector."""
    from faapkit.data.transforms import resized_hw  # torchvision: only where a size policy is checked

    for img in coco["images"]:
        w, h = int(img["width"]), int(img["height"])
        for size, max_size in resize:
            nh, nw = resized_hw(h, w, size, max_size)
            if min(nh, nw) < 1:
                issues.add(
                    "extreme aspect ratio",
                    f"{_where(img)}: {w}x{h} px at min_size {size}, max_size {max_size} gives {nw}x{nh} px",
                    img["id"],
                )
                break


@dataclass(frozen=True)
class FileCheck:
    """What one pass over an image file found: a content digest, or a problem."""

    digest: str = ""
    kind: str | None = None  # a key of KIND_TEXT, or "corrupt"
    detail: str = ""


def check_image_file(path: Path, width: int, height: int) -> FileCheck:
    """Read the file once: hash its bytes, compare the header's size with the JSON's, check the
    pixel mode, let PIL verify the data and decode every pixel (``verify`` passes a truncated JPEG,
    whose decoding would fail only once training reads it)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileCheck(kind="corrupt", detail=f"cannot read {path}: {exc.strerror or exc}")
    digest = hashlib.blake2b(data, digest_size=12).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            size, mode = im.size, im.mode
            im.verify()
        with Image.open(io.BytesIO(data)) as im:  # verify() leaves the image unusable: a fresh one decodes
            im.load()
    except Exception as exc:  # PIL raises many types for damaged files
        return FileCheck(digest, "corrupt", f"corrupt image {path}: {type(exc).__name__}")
    if size != (int(width), int(height)):
        return FileCheck(digest, "size mismatch", f"'{path}': JSON {width}x{height}, file {size[0]}x{size[1]}")
    if mode not in RGB_MODES and mode not in GREY16_MODES:
        return FileCheck(digest, "unsupported mode", f"'{path}': mode {mode}")
    return FileCheck(digest)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with 8 bits per channel; 16-bit grey is scaled (65535 -> 255), not clipped."""
    if image.mode in GREY16_MODES:
        values = np.asarray(image, dtype=np.uint32)
        grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode not in RGB_MODES:
        raise DataError(f"unsupported pixel mode {image.mode} of {getattr(image, 'filename', 'an image')}")
    return image.convert("RGB")
