"""The embedded benchmark's mixed-group variant: images holding persons of both groups, with the
protected attributes on each person's box (``annotations[i]["attributes"] = {"gender", "age"}``),
none on the images, as FACET stores them.

Figures are drawn as in :mod:`faapkit.data.synth` with the same per-figure bias (``female``
figures in lower contrast and opacity; ``v3`` by default). Images come in turn as mixed (two or
three figures, at least one of each group), all-``female`` and all-``male`` (one to three
figures), so each group is scored on images of its own and on mixed ones. The split sizes are
v3's image counts (``MIXED_SPLITS``) unless ``images`` sets every split's; output is
deterministic for a seed, bias and sizes (the same bytes every time). One layout is written:
``OUT/coco/annotations/instances_{split}.json`` + ``OUT/coco/images/{split}/*.jpg`` (the research
layout's folder per group cannot hold a mixed image).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faapkit.data.synth import (
    AGES,
    BIASES,
    CATEGORY,
    FRESH_TRAIN,
    SIZES,
    TINTS,
    _background,
    _boxes,
    _draw_person,
    publish,
    splits_for,
)
from faapkit.errors import DataError

KINDS = ("mixed", "female", "male")  # image i is of kind KINDS[i % 3]
# the random stream of a mixed-benchmark image; 0 and 1 are the male and female images of synth
STREAM = 2
Person = tuple[tuple[int, int, int, int], dict[str, str]]
# the figures of v3; a FRESH_TRAIN bias adds nothing here, no detector was trained on mixed images
MIXED_BIAS = "v3"


def mixed_splits(bias: str = MIXED_BIAS) -> dict[str, int]:
    """Images per split: as many as ``bias``'s benchmark holds (male + female)."""
    return {split: m + f for split, m, f in splits_for(bias)}


@dataclass(frozen=True)
class MixedSpec:
    seed: int = 0
    bias: str = MIXED_BIAS
    images: int | None = None  # images per split; None: mixed_splits(bias)

    def __post_init__(self) -> None:
        if self.bias not in BIASES:
            raise DataError(f"unknown benchmark bias '{self.bias}' (known: {', '.join(BIASES)})")
        if self.bias in FRESH_TRAIN:
            raise DataError(
                f"the mixed benchmark has no bias {self.bias}: its train split was never a detector's "
                f"(use {MIXED_BIAS}, the same figures)"
            )
        if self.images is not None and self.images < 1:
            raise DataError(f"a mixed benchmark needs at least 1 image per split, not {self.images}")

    def splits(self) -> dict[str, int]:
        return {s: self.images or n for s, n in mixed_splits(self.bias).items()}

    def manifest(self) -> dict[str, Any]:
        return {
            "generator": "faapkit.data.synth_mixed",
            "seed": self.seed,
            "bias": self.bias,
            "mixed": True,
            "group_level": "box",
            "splits": self.splits(),
            "layouts": {"attributes": "coco"},
            **BIASES[self.bias],
        }


def _genders(rng: np.random.Generator, kind: str, n: int) -> list[str]:
    if kind != "mixed" or n < 2:
        return [kind if kind != "mixed" else str(rng.choice(["female", "male"]))] * n
    chosen = ["female", "male"] + [str(rng.choice(["female", "male"])) for _ in range(n - 2)]
    return [chosen[i] for i in rng.permutation(n)]


def render_mixed(seed: int, split_index: int, index: int, bias: str = MIXED_BIAS) -> tuple[bytes, list[Person]]:
    """One image as JPEG bytes and its persons (xywh box, attributes); a pure function of its
    arguments."""
    strength = BIASES[bias]
    rng = np.random.default_rng([seed, split_index, index, STREAM])
    kind = KINDS[index % len(KINDS)]
    h, w = SIZES[int(rng.integers(0, len(SIZES)))]
    img = _background(rng, h, w)
    boxes = _boxes(rng, h, w, 3 if kind == "mixed" else int(rng.integers(1, 4)))
    for _ in range(20):  # a mixed image needs two figures that fit
        if kind != "mixed" or len(boxes) >= 2:
            break
        boxes = _boxes(rng, h, w, 3)
    persons: list[Person] = []
    for box, gender in zip(boxes, _genders(rng, kind, len(boxes)), strict=True):
        age = AGES[int(rng.integers(0, len(AGES)))]
        _draw_person(img, rng, box, strength["contrast"][gender], strength["opacity"][gender], TINTS[age])
        persons.append((box, {"gender": gender, "age": age}))
    buf = io.BytesIO()
    Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=92, optimize=False)
    return buf.getvalue(), persons


def write_mixed(out: Path, spec: MixedSpec = MixedSpec()) -> Path:
    """Write the mixed benchmark under ``out`` (atomically: built in a temp folder, then renamed);
    a folder that holds it already is kept, one holding another benchmark refused."""
    out = Path(out)
    if (out / "manifest.json").is_file():
        _check_same(out, spec)
        return out
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for split_index, (split, n) in enumerate(spec.splits().items()):
        _write_split(tmp / "coco", spec, split_index, split, n)
    (tmp / "manifest.json").write_text(json.dumps(spec.manifest(), indent=1, sort_keys=True))
    return publish(tmp, out)


def _write_split(root: Path, spec: MixedSpec, split_index: int, split: str, n: int) -> None:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    img_dir = root / "images" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    for index in range(n):
        data, persons = render_mixed(spec.seed, split_index, index, spec.bias)
        image_id, file_name = index + 1, f"{split}_{index + 1:05d}.jpg"
        (img_dir / file_name).write_bytes(data)
        width, height = Image.open(io.BytesIO(data)).size
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for (x, y, bw, bh), attrs in persons:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY["id"],
                    "bbox": [x, y, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                    "attributes": attrs,
                }
            )
    coco = {
        "info": {"description": "faapkit synthetic mixed-group benchmark", "seed": spec.seed, "bias": spec.bias},
        "images": images,
        "annotations": annotations,
        "categories": [CATEGORY],
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco, indent=1, sort_keys=True))


def _check_same(out: Path, spec: MixedSpec) -> None:
    try:
        held = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{out / 'manifest.json'} is not a synthetic benchmark's manifest ({exc})") from None
    if held != spec.manifest():
        what = "the mixed benchmark of another seed, bias or size" if held.get("mixed") else "another benchmark"
        raise DataError(f"{out} already holds {what}; the one asked for needs another folder, or remove {out} first")
