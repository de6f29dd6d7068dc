"""What every importer shares: reading a released CSV with each row's line number, image sizes
from the files' headers, and writing the imported split in faapkit's attributes layout.

The written split is ``OUT/annotations/instances_{split}.json`` and ``OUT/images/{split}``, a
link to the image folder the release unpacked to (the images are not copied: FACET's are
gigabytes). Nothing is written until the whole release has been read and checked, so a bad row
or a missing image leaves ``OUT`` as it was.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from faapkit.errors import DataError
from faapkit.io import atomic_write_text

PERSON = {"id": 1, "name": "person", "supercategory": "person"}  # COCO's id, DETR's label space
UNLABELLED = "unlabelled"  # the group of a person the release gives no value for


@dataclass(frozen=True)
class Row:
    """One CSV record: its cells by column and the line of the file it starts on (1 is the header)."""

    line: int
    cells: dict[str, str]


def read_csv(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[Row]]:
    """The header and the rows of a released CSV, refused as a whole (naming ``path``) when it is
    missing, not UTF-8, lacks one of ``required`` columns, or a row has more or fewer cells than
    the header (named by its line)."""
    if not path.is_file():
        raise DataError(f"annotations file not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return _read_rows(path, csv.reader(fh), required)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 CSV file: {exc.reason} at byte {exc.start}") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None


def _read_rows(path: Path, reader: Any, required: tuple[str, ...]) -> tuple[list[str], list[Row]]:
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise DataError(f"{path} is empty: expected a header line naming its columns")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataError(f"{path}: column {', '.join(map(repr, repeated))} appears more than once in the header")
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path} has no column {', '.join(missing)} (columns: {', '.join(header)})")
    rows: list[Row] = []
    line = reader.line_num + 1
    for values in reader:
        if values and len(values) != len(header):
            raise DataError(f"{path} line {line}: {len(values)} cells for the header's {len(header)} columns")
        if values:
            rows.append(Row(line, dict(zip(header, (v.strip() for v in values), strict=True))))
        line = reader.line_num + 1
    return header, rows


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the image file's header (nothing decoded); a missing or unreadable
    file is refused naming it."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read the size of image {path}: {type(exc).__name__}") from None


@dataclass
class Imported:
    """One imported split: COCO ``images``, ``annotations`` (their ``attributes`` hold the groups)
    and the count of boxes per group of each attribute, for the summary the command prints."""

    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    attributes: tuple[str, ...] = ()  # the group attributes on the boxes, in the order to show them
    ignored: int = 0  # boxes written as ignore regions (iscrowd 1)
    source: dict[str, Any] = field(default_factory=dict)  # what was imported, kept in the file's "info"
    notes: list[str] = field(default_factory=list)  # what the reader assumed, for the command to say

    def group_counts(self, attr: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.annotations:
            value = a.get("attributes", {}).get(attr)
            if value is not None and not a.get("iscrowd", 0):
                counts[str(value)] = counts.get(str(value), 0) + 1
        return dict(sorted(counts.items()))

    def leave_out_groupless_images(self) -> None:
        """Leave out the images all of whose boxes are ignore regions, said in ``notes``: such an
        image belongs to no group, and faapkit's loader refuses a box-level split holding one."""
        scored = {a["image_id"] for a in self.annotations if not a.get("iscrowd", 0)}
        left = [img for img in self.images if img["id"] not in scored]
        if not left:
            return
        if not scored:
            raise DataError(f"every box of the {len(self.images)} image(s) is an ignore region: no group to score")
        self.images = [img for img in self.images if img["id"] in scored]
        boxes = len(self.annotations)
        self.annotations = [a for a in self.annotations if a["image_id"] in scored]
        self.ignored -= boxes - len(self.annotations)
        self.notes.append(
            f"left out {len(left)} image(s) whose every box is an ignore region ({boxes - len(self.annotations)} "
            f"box(es); first: {left[0]['file_name']}): they belong to no group"
        )

    def coco(self) -> dict[str, Any]:
        return {
            "info": {"description": "written by faap data import", **self.source},
            "images": self.images,
            "annotations": self.annotations,
            "categories": [PERSON],
        }


def split_paths(out: Path, split: str) -> tuple[Path, Path]:
    """The annotation file and image folder an import of ``split`` writes under ``out``."""
    return out / "annotations" / f"instances_{split}.json", out / "images" / split


def check_image_link(link: Path, images: Path, *, force: bool) -> None:
    """``OUT/images/{split}`` may be made, or is already the link to ``images``; a link elsewhere
    is replaced only with ``force``, and a real folder or file there never (it may hold images)."""
    if link.is_symlink():
        if link.resolve() == images.resolve() or force:
            return
        raise DataError(f"{link} links to {os.readlink(link)}, not {images}; pass --force to replace the link")
    if link.exists():
        raise DataError(f"{link} exists and is not a link to the images: never replaced; choose another --out")


def write_split(out: Path, split: str, imported: Imported, images: Path, *, force: bool) -> Path:
    """Write ``imported`` as ``split`` of ``out`` (see the module): the link to ``images``, then the
    annotation file atomically (so an annotation file is never left without its images). Returns
    the annotation file."""
    ann_path, link = split_paths(out, split)
    check_image_link(link, images, force=force)
    if not (link.is_symlink() and link.resolve() == images.resolve()):
        _link(link, images)
    atomic_write_text(ann_path, json.dumps(imported.coco(), separators=(",", ":")) + "\n")
    return ann_path


def _link(link: Path, images: Path) -> None:
    """Point ``link`` at ``images`` (absolute), replacing an earlier link in one rename."""
    tmp = link.with_name(f".{link.name}.link.tmp")
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(images.absolute(), target_is_directory=True)
        os.replace(tmp, link)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot link {link} to {images}: {exc.strerror or exc}") from None
