"""COCO-format datasets whose images carry a protected attribute.

Layouts (``layout="auto"`` picks by what exists under ``root``):
- ``research``: ``ROOT/{women,men}_split/{split}/`` + ``gender_{women,men}_{split}.json``; the group
  is the folder (attribute ``gender``), image ids are renumbered to be unique across folders;
- ``attributes``: ``ROOT/annotations/instances_{split}.json`` (or ``ROOT/{split}.json``) with images in
  ``ROOT/images/{split}/`` (or ``ROOT/{split}/``), each ``images[i]["attributes"][ATTR]`` naming a group,
  or each box's ``annotations[i]["attributes"][ATTR]`` (box-level groups, as FACET stores them:
  :mod:`faapkit.data.box_groups`; ``group_level`` chooses).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from faapkit.data.box_groups import box_group, check_box_groups, choose_level, no_attribute, pair_ids, sampling_key
from faapkit.data.validate import (
    KIND_TEXT,
    FileCheck,
    Issues,
    check_annotations,
    check_image_file,
    check_resize,
    check_structure,
    to_rgb,
)
from faapkit.errors import DataError

SKIP_HINT = "data.on_invalid=skip, or faap eval --on-invalid skip, leaves those images out"

GENDER_ALIASES = {
    "men": "male",
    "man": "male",
    "male": "male",
    "women": "female",
    "woman": "female",
    "female": "female",
}


@dataclass(frozen=True)
class ImageRecord:
    """One image. ``image_id`` is faapkit's (1.. in reading order, unique across a split's
    annotation files); ``source_id`` is the id its annotation file (``source``, a file name)
    gives it, which saved detections carry (:meth:`DatasetSplit.dataset_ids`). With box-level
    groups, ``box_groups`` are the groups of its boxes (sorted; each annotation holds its own as
    ``"group"``) and ``group`` joins them with ``+`` (``female+male``: a mixed image)."""

    image_id: int
    path: Path
    width: int
    height: int
    group: str
    annotations: tuple[dict[str, Any], ...]
    source_id: int | str | None = None
    source: str = ""
    box_groups: tuple[str, ...] = ()

    @property
    def held(self) -> tuple[str, ...]:
        """The groups this image is scored in: its boxes' (box level), else its own."""
        return self.box_groups or (self.group,)


@dataclass
class DatasetSplit:
    """One split: image records, the merged COCO ground truth and the groups found."""

    root: Path
    split: str
    split_by: str
    layout: str
    records: list[ImageRecord]
    coco_gt: dict[str, Any]
    groups: list[str]
    fingerprint: str
    skipped_corrupt: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # images/annotations left out, per problem
    skipped_examples: dict[str, str] = field(default_factory=dict)  # the first of each problem
    group_level: str = "image"  # "box": groups from each box's attribute (faapkit.data.box_groups)

    def warnings(self) -> list[str]:
        """One line per kind of problem left out under ``on_invalid``/``on_corrupt = "skip"``."""
        lines = [
            f"split '{self.split}': left out {n} {KIND_TEXT[k].format(attr=self.split_by)} "
            f"(first: {self.skipped_examples.get(k, '?')})"
            for k, n in self.skipped.items()
        ]
        if self.skipped_corrupt:
            lines.append(
                f"split '{self.split}': skipped {len(self.skipped_corrupt)} corrupt image(s) "
                f"(first: {self.skipped_corrupt[0]})"
            )
        return lines

    def dataset_ids(self) -> dict[int, int | str] | None:
        """faapkit's image id -> the dataset's own (its annotation file's), or ``None`` when the
        dataset's repeat across the split's annotation files (the research layout's two folders
        may number from 1 each): then only faapkit's ids name an image unambiguously."""
        ids = {r.image_id: r.image_id if r.source_id is None else r.source_id for r in self.records}
        return ids if len(set(ids.values())) == len(ids) else None

    def group_counts(self) -> dict[str, int]:
        """Images per group (box level: the images holding at least one box of the group)."""
        counts = Counter(g for r in self.records for g in r.held)
        return {g: counts.get(g, 0) for g in self.groups}

    def group_images(self) -> dict[str, list[int]]:
        """Each group's image ids (faapkit's): the images a group is scored on."""
        return {g: [r.image_id for r in self.records if g in r.held] for g in self.groups}

    def group_boxes(self) -> dict[str, int]:
        """Ground-truth boxes per group: of its images (image level), its own (box level)."""
        if self.group_level != "box":
            return {g: sum(len(r.annotations) for r in self.records if r.group == g) for g in self.groups}
        counts = Counter(a.get("group") for r in self.records for a in r.annotations)
        return {g: counts.get(g, 0) for g in self.groups}


def has_split(root: Path, split: str, layout: str = "auto") -> bool:
    """Whether ``root`` holds annotations (and, for the research layout, folders) of ``split``."""
    chosen = detect_layout(root) if layout == "auto" else layout
    if chosen == "research":
        return all((root / f"{folder}_split" / split).is_dir() for folder in ("women", "men"))
    try:
        _attribute_paths(root, split)
    except DataError:
        return False
    return True


def detect_layout(root: Path) -> Literal["research", "attributes"]:
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root}")
    if (root / "women_split").is_dir() or (root / "men_split").is_dir():
        return "research"
    if (root / "annotations").is_dir() or any(root.glob("*.json")):
        return "attributes"
    if (root / "coco" / "annotations").is_dir():
        return "attributes"
    raise DataError(
        f"{root} is not a dataset: expected women_split/ and men_split/ (research layout) "
        "or annotations/instances_<split>.json (attributes layout)"
    )


def _read_json(path: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """The file's JSON with ``images``, ``annotations`` and ``categories`` lists (the latter two
    empty when absent, unless named in ``required``)."""
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"annotation file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"annotation file {path} is not COCO format (no 'images' list)")
    declares_categories = "categories" in data
    for key in ("annotations", "categories"):
        if key in required and key not in data:
            raise DataError(f"annotation file {path} is not COCO format (no '{key}' list)")
        data.setdefault(key, [])
        if not isinstance(data[key], list):
            raise DataError(f"annotation file {path}: '{key}' is a {type(data[key]).__name__}, not a list")
    if data["annotations"] and declares_categories and not data["categories"]:
        # else every box is refused, or skipped, as of an unknown category, one at a time
        raise DataError(
            f"annotation file {path}: 'categories' is empty, so none of its {len(data['annotations'])} "
            "annotation(s) has a category; list the categories their category_id values name"
        )
    return data


def read_annotation_file(path: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """A COCO annotation file, every entry interpretable (ids, file names, sizes), the sections
    named in ``required`` present; else a :class:`DataError` naming the file and the entry."""
    data = _read_json(path, required)
    check_structure(data, path)
    return data


def _attribute_paths(root: Path, split: str) -> tuple[Path, Path]:
    if (root / "coco" / "annotations").is_dir() and not (root / "annotations").is_dir():
        root = root / "coco"
    for ann, images in (
        (root / "annotations" / f"instances_{split}.json", root / "images" / split),
        (root / f"{split}.json", root / split),
    ):
        if ann.is_file():
            return ann, images
    raise DataError(
        f"annotation file for split '{split}' not found under {root} "
        f"(looked for annotations/instances_{split}.json and {split}.json)"
    )


class _Source(NamedTuple):
    """One annotation file of a split: its COCO dict, path, image folder, and the group every
    image in it belongs to (research layout: the folder) or None (read from each image)."""

    coco: dict[str, Any]
    path: Path
    images: Path
    group: str | None


def _research_sources(root: Path, split: str, split_by: str) -> list[_Source]:
    """``ROOT/{women,men}_split/{split}/`` + ``gender_{women,men}_{split}.json``: one source per folder."""
    if split_by != "gender":
        raise DataError(f"the research layout only defines 'gender' groups, not '{split_by}'")
    sources = []
    for folder in ("women", "men"):
        img_dir = root / f"{folder}_split" / split
        ann = root / f"{folder}_split" / f"gender_{folder}_{split}.json"
        if not img_dir.is_dir():
            raise DataError(f"image folder not found: {img_dir}")
        sources.append(_Source(_read_json(ann), ann, img_dir, GENDER_ALIASES[folder]))
    return sources


def _attributes_sources(root: Path, split: str) -> list[_Source]:
    """``annotations/instances_{split}.json`` (or ``{split}.json``): one source, groups per image."""
    ann, img_dir = _attribute_paths(root, split)
    if not img_dir.is_dir():
        raise DataError(f"image folder not found: {img_dir}")
    return [_Source(_read_json(ann), ann, img_dir, None)]


def load_split(
    root: Path,
    split: str,
    *,
    split_by: str = "gender",
    layout: str = "auto",
    limit: int | None = None,
    on_corrupt: str = "fail",
    on_invalid: str = "fail",
    verify_images: bool = True,
    group_level: str = "auto",
    resize: Sequence[tuple[int, int | None]] = (),
) -> DatasetSplit:
    """Read one split, validate it in one pass (see :mod:`faapkit.data.validate`) and return its
    records and merged ground truth. Per-image problems are refused (``on_invalid="fail"``) or the
    images are left out and counted in ``DatasetSplit.skipped`` (``"skip"``). ``group_level``
    (``auto | image | box``) says whether images or boxes carry the groups
    (:mod:`faapkit.data.box_groups`); ``resize``, the ``(min_size, max_size)`` pairs the images
    will be resized with, makes an image one of them shrinks under 1 px a per-image problem."""
    root = Path(root).absolute()
    chosen = detect_layout(root) if layout == "auto" else layout
    if chosen == "research" and group_level == "box":
        raise DataError(f"{root}: the research layout's groups are its folders (image level), not data.group_level box")
    sources = _research_sources(root, split, split_by) if chosen == "research" else _attributes_sources(root, split)
    skipped: Counter[str] = Counter()
    examples: dict[str, str] = {}
    read = _Reading(split, split_by, on_invalid, group_level, tuple(resize))
    records, level = _read_records(sources, read, skipped, examples)
    if limit:
        records = _limit_round_robin(records, limit)
    missing_files = [r.path for r in records if not r.path.is_file()]
    if missing_files:
        raise DataError(
            f"{len(missing_files)} image file(s) listed in the annotations are missing (first: {missing_files[0]})"
        )
    records, digests, corrupt = _check_files(records, on_corrupt, on_invalid, skipped, examples, verify_images)
    groups = sorted({g for r in records for g in r.held})
    if not records:
        left_out = f" ({sum(skipped.values())} left out as invalid)" if skipped else ""
        raise DataError(f"split '{split}' of {root} has no images{left_out}")
    categories: list[Any] = next((src.coco["categories"] for src in sources if src.coco["categories"]), [])
    return DatasetSplit(
        root,
        split,
        split_by,
        chosen,
        records,
        _merged_ground_truth(records, categories, level),
        groups,
        _fingerprint(sources, split, records, digests),
        corrupt,
        dict(skipped),
        examples,
        level,
    )


class _Reading(NamedTuple):
    """How a split's annotation files are read: see :func:`load_split`'s arguments."""

    split: str
    split_by: str
    on_invalid: str
    group_level: str
    resize: tuple[tuple[int, int | None], ...]


def _read_records(
    sources: list[_Source], read: _Reading, skipped: Counter[str], examples: dict[str, str]
) -> tuple[list[ImageRecord], str]:
    """Every valid image of the sources with its annotations, ids renumbered 1.. across sources
    (each record keeps its file's own id as ``source_id``), and the level the groups were read at;
    invalid images refused, or left out and counted in ``skipped`` with ``on_invalid="skip"``."""
    records: list[ImageRecord] = []
    seen_attrs: set[str] = set()
    level = "image"
    split_by = read.split_by
    for src in sources:
        check_structure(src.coco, src.path)
        level = "image" if src.group is not None else choose_level(src.coco, src.path, split_by, read.group_level)
        issues = _source_issues(src, read.split, split_by, level, seen_attrs)
        check_resize(src.coco, read.resize, issues)
        if issues.counts:
            if read.on_invalid != "skip":
                raise DataError(f"{src.path}: {issues.describe(split_by)}", hint=SKIP_HINT)
            _count(skipped, examples, issues)
        by_image: dict[Any, list[dict[str, Any]]] = {}
        for a in src.coco["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for img in src.coco["images"]:
            if img["id"] not in issues.images:
                records.append(_record(src, img, by_image.get(img["id"], []), len(records) + 1, split_by, level))
    return records, level


def _source_issues(src: _Source, split: str, split_by: str, level: str, seen_attrs: set[str]) -> Issues:
    """The per-image problems of one annotation file; a file where no image carries an image-level
    attribute is refused outright."""
    coco = src.coco
    for img in coco["images"]:
        if isinstance(img.get("attributes"), dict):
            seen_attrs.update(img["attributes"])
    if level == "box":
        issues = check_annotations(coco, None, src.path)
        check_box_groups(coco, split_by, issues)
        return issues
    issues = check_annotations(coco, None if src.group is not None else split_by, src.path)
    if src.group is None and issues.counts["missing attribute"] == len(coco["images"]) and coco["images"]:
        raise no_attribute(src.path, split, split_by, seen_attrs, coco)
    return issues


def _record(
    src: _Source, img: dict[str, Any], anns: list[dict[str, Any]], image_id: int, split_by: str, level: str
) -> ImageRecord:
    """One image's record, its annotations renumbered to ``image_id`` (and, at box level, each
    given its ``"group"``)."""
    size = int(img["width"]), int(img["height"])
    where = (image_id, src.images / img["file_name"], *size)
    if level == "box":
        tagged = []
        for a in anns:
            group = box_group(a, split_by, GENDER_ALIASES)
            tagged.append({**a, "image_id": image_id, "area": _area(a), **({} if group is None else {"group": group})})
        held = tuple(sorted({a["group"] for a in tagged if "group" in a and not a.get("iscrowd", 0)}))
        return ImageRecord(*where, "+".join(held), tuple(tagged), img["id"], src.path.name, held)
    group = src.group if src.group is not None else str(img["attributes"][split_by])
    if src.group is None and split_by == "gender":
        group = GENDER_ALIASES.get(group.lower(), group)
    renumbered = tuple({**a, "image_id": image_id, "area": _area(a)} for a in anns)
    return ImageRecord(*where, group, renumbered, img["id"], src.path.name)


def _fingerprint(sources: list[_Source], split: str, records: list[ImageRecord], digests: dict[int, str]) -> str:
    """The annotation files' bytes, the split, and the exact image set and content (a
    ``--limit-images`` subset is another dataset)."""
    digest = hashlib.sha256()
    for src in sources:
        digest.update(src.path.read_bytes())
    digest.update(split.encode())
    for r in records:
        digest.update(f"{r.path.name}:{r.group}:{digests.get(r.image_id, '')};".encode())
    return digest.hexdigest()[:16]


def _merged_ground_truth(records: list[ImageRecord], categories: list[Any], level: str = "image") -> dict[str, Any]:
    """One COCO ground truth over the records (annotation ids renumbered 1..), each image tagged
    with its group; box-level groups add ``"group_level": "box"`` (each box holds its group), which
    tells :mod:`faapkit.evaluate.cocoeval` to score them so."""
    merged_images: list[dict[str, Any]] = []
    merged_anns: list[dict[str, Any]] = []
    for r in records:
        merged_images.append(
            {"id": r.image_id, "file_name": r.path.name, "width": r.width, "height": r.height, "group": r.group}
        )
        for a in r.annotations:
            merged_anns.append({**a, "id": len(merged_anns) + 1})
    merged = {"images": merged_images, "annotations": merged_anns, "categories": categories}
    return {**merged, "group_level": "box"} if level == "box" else merged


def _area(ann: dict[str, Any]) -> float:
    """The stored area, or the box's w*h where the file has none (pycocotools needs one)."""
    area = ann.get("area")
    return float(area) if area is not None else float(ann["bbox"][2]) * float(ann["bbox"][3])


def _count(skipped: Counter[str], examples: dict[str, str], issues: Issues) -> None:
    skipped.update(issues.counts)
    for kind, where in issues.first.items():
        examples.setdefault(kind, where)


def _check_files(
    records: list[ImageRecord],
    on_corrupt: str,
    on_invalid: str,
    skipped: Counter[str],
    examples: dict[str, str],
    verify: bool,
) -> tuple[list[ImageRecord], dict[int, str], list[str]]:
    """One read per image: content digest, header size and mode against the JSON, PIL's verify.
    Returns the images kept, their digests and the corrupt files skipped."""
    kept: list[ImageRecord] = []
    digests: dict[int, str] = {}
    corrupt: list[str] = []
    issues = Issues()
    for r in records:
        check = check_image_file(r.path, r.width, r.height) if verify else FileCheck()
        if check.kind == "corrupt":
            if on_corrupt == "fail":
                raise DataError(f"{check.detail} (use data.on_corrupt=skip to skip)")
            corrupt.append(str(r.path))
            continue
        if check.kind is not None:
            issues.add(check.kind, check.detail, r.image_id)
            continue
        digests[r.image_id] = check.digest
        kept.append(r)
    if issues.counts:
        if on_invalid != "skip":
            raise DataError(issues.describe(""), hint=SKIP_HINT)
        _count(skipped, examples, issues)
    return kept, digests, corrupt


def _limit_round_robin(records: list[ImageRecord], limit: int) -> list[ImageRecord]:
    """The first ``limit`` images taken in turn from each group (file order within a group), so a
    small subset still holds every group."""
    by_group: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_group.setdefault(r.group, []).append(r)
    chosen: list[ImageRecord] = []
    queues = [iter(v) for _, v in sorted(by_group.items())]
    while len(chosen) < limit and queues:
        for q in list(queues):
            nxt = next(q, None)
            if nxt is None:
                queues.remove(q)
            elif len(chosen) < limit:
                chosen.append(nxt)
    return sorted(chosen, key=lambda r: r.image_id)


def require_groups(split: DatasetSplit, needed: list[str]) -> None:
    """The training split (and the one validated during training) holds the pair (box level: a
    box of each); whether the version trains on box-level groups is ``VersionSpec.group_levels``."""
    counts = split.group_counts()
    for g in needed:
        if counts.get(g, 0) == 0:
            raise DataError(
                f"group '{g}' of attribute '{split.split_by}' has no images in split '{split.split}' "
                f"(groups found: {', '.join(f'{k}={v}' for k, v in counts.items())})"
            )



def require_person_label(split: DatasetSplit, label: int, detector: str) -> None:
    """The dataset's ``person`` category is the id the detector predicts people as (``label``):
    otherwise no detection would ever match a person box and every AP would be 0, a wrong number
    rather than an error. A dataset without a category named ``person`` is taken as numbered for
    the detector."""
    ids = [c.get("id") for c in split.coco_gt.get("categories") or [] if c.get("name") == "person"]
    if ids and label not in ids:
        raise DataError(
            f"split '{split.split}' of {split.root} numbers its 'person' category {ids[0]}, and detector "
            f"'{detector}' predicts people as label {label}: renumber the category (and its annotations' "
            f"category_id) to {label}"
        )

class GroupedDetectionDataset(Dataset):
    """Items ``(image (3,H,W), target, group_index)``. Indexed by ``(index, sample_seed)`` so random
    augmentation is a function of the sampler's seed, not of worker scheduling (exact resume). Box-level
    groups add ``target["groups"] (T,)``, each box's (``pair_ids``); ``group_index`` is ``sampling_key``'s."""

    def __init__(self, split: DatasetSplit, transform: Any, groups: list[str] | None = None) -> None:
        self.split = split
        self.records = split.records
        self.transform = transform
        self.groups = groups or split.groups
        self.group_index = {g: i for i, g in enumerate(self.groups)}
        self.box_level = box = split.group_level == "box"
        index = self.group_index
        self.keys = [sampling_key(r.held, self.groups) if box else index.get(r.group, -1) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def record_groups(self) -> list[int]:
        """Each image's group index (box level: its sampling key, see the class)."""
        return list(self.keys)

    def __getitem__(
        self, key: int | tuple[int, int] | tuple[int, int, int]
    ) -> tuple[torch.Tensor, dict[str, Any], int]:
        """``index``, ``(index, seed)`` or ``(index, seed, scale)`` (a batch-wide training scale)."""
        index, seed, *fixed = key if isinstance(key, tuple) else (key, 0)
        r = self.records[index]
        try:
            with Image.open(r.path) as im:
                image = to_rgb(im)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot decode image {r.path}: {type(exc).__name__}") from None
        anns = [a for a in r.annotations if not a.get("iscrowd", 0)]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2].clamp_(min=0, max=image.size[0])
        boxes[:, 1::2].clamp_(min=0, max=image.size[1])
        keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 2] > boxes[:, 0])
        labels = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        target = {
            "boxes": boxes[keep],
            "labels": labels[keep],
            "image_id": torch.tensor(r.image_id),
            "area": torch.tensor([a.get("area", 0.0) for a in anns], dtype=torch.float32)[keep],
            "iscrowd": torch.zeros(int(keep.sum()), dtype=torch.int64),
            "orig_size": torch.tensor([image.size[1], image.size[0]]),
        }
        if self.box_level:
            target["groups"] = torch.tensor(pair_ids(anns, self.groups), dtype=torch.int64)[keep]
        extra = {"scale": fixed[0]} if fixed else {}
        tensor, target = self.transform(image, target, random.Random(seed), **extra)
        return tensor, target, self.keys[index]
