"""Dataset validation matrix: every kind of bad data is refused naming the file and entry, or left
out and counted under ``on_invalid="skip"``; the same ``load_split`` serves train and eval."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from faapkit.data.coco import GroupedDetectionDataset, load_split
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.data.transforms import EvalTransform
from faapkit.errors import DataError

SPEC = SynthSpec(seed=11, splits=(("test", 4, 4),))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("valid") / "s", SPEC) / "coco"


@pytest.fixture
def data(pristine, tmp_path) -> Path:
    dst = tmp_path / "coco"
    shutil.copytree(pristine, dst)
    return dst


def _ann_path(root: Path) -> Path:
    return root / "annotations" / "instances_test.json"


def _edit(root: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    path = _ann_path(root)
    coco = json.loads(path.read_text())
    fn(coco)
    path.write_text(json.dumps(coco))


def _first_file(root: Path) -> Path:
    coco = json.loads(_ann_path(root).read_text())
    return root / "images" / "test" / coco["images"][0]["file_name"]


def _box(value: list[Any]) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["annotations"][0].__setitem__("bbox", value)


def _attr(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["images"][0]["attributes"].__setitem__("gender", value)


def _as_float_tiff(root: Path) -> None:
    path = _first_file(root)
    with Image.open(path) as im:
        size = im.size
    Image.fromarray(np.zeros((size[1], size[0]), dtype=np.float32)).save(path, format="TIFF")


# case -> (mutation of the coco root, message of the refusal, kind counted under skip)
PER_IMAGE = {
    "negative box": (lambda r: _edit(r, _box([-20, 5, 10, 10])), "lies outside", "invalid box"),
    "zero-size box": (lambda r: _edit(r, _box([5, 5, 0, 10])), "non-positive width or height", "invalid box"),
    "NaN box": (lambda r: _edit(r, _box([float("nan"), 5, 10, 10])), "is not finite", "invalid box"),
    "box outside the image": (lambda r: _edit(r, _box([5, 5, 5000, 10])), "lies outside", "invalid box"),
    "box not 4 numbers": (lambda r: _edit(r, _box("1,2,3,4")), "is not [x, y, w, h]", "invalid box"),
    "NaN area": (
        lambda r: _edit(r, lambda c: c["annotations"][0].__setitem__("area", float("nan"))),
        "area nan is not a finite number",
        "invalid box",
    ),
    "unknown category": (
        lambda r: _edit(r, lambda c: c["annotations"][0].__setitem__("category_id", 99)),
        "category_id 99",
        "unknown category",
    ),
    "null attribute": (lambda r: _edit(r, _attr(None)), "attribute 'gender' null or empty", "null attribute"),
    "empty attribute": (lambda r: _edit(r, _attr(" ")), "attribute 'gender' null or empty", "null attribute"),
    "missing attribute": (
        lambda r: _edit(r, lambda c: c["images"][0]["attributes"].pop("gender")),
        "lack attribute 'gender'",
        "missing attribute",
    ),
    "JSON size differs from the file": (
        lambda r: _edit(r, lambda c: c["images"][0].__setitem__("width", c["images"][0]["width"] + 10)),
        "differ from the image file",
        "size mismatch",
    ),
    "unsupported pixel mode": (_as_float_tiff, "mode F", "unsupported mode"),
}

STRUCTURAL = {
    "two images share an id": (
        lambda c: c["images"][1].__setitem__("id", c["images"][0]["id"]),
        "image id(s) are used by more than one image",
    ),
    "image without id": (lambda c: c["images"][0].pop("id"), "images[0] (id None) has no 'id'"),
    "width not a number": (lambda c: c["images"][0].__setitem__("width", "abc"), "has width 'abc'"),
    "annotation without bbox": (lambda c: c["annotations"][0].pop("bbox"), "has no 'bbox'"),
    "annotations not a list": (lambda c: c.__setitem__("annotations", {"a": 1}), "'annotations' is a dict, not a list"),
}


@pytest.mark.parametrize("case", sorted(PER_IMAGE))
def test_per_image_problem_is_refused_or_skipped_and_counted(case, data):
    mutate, message, kind = PER_IMAGE[case]
    mutate(data)
    with pytest.raises(DataError) as err:
        load_split(data, "test")
    line = err.value.one_line()
    assert message in line and "(first: " in line and "data.on_invalid=skip" in line
    split = load_split(data, "test", on_invalid="skip")
    assert split.skipped == {kind: 1}
    assert sum(split.group_counts().values()) == 7  # the whole image left out, its boxes with it
    assert len(split.coco_gt["images"]) == 7
    assert any(kind.split()[0] in line or "left out 1" in line for line in split.warnings())


@pytest.mark.parametrize("case", sorted(STRUCTURAL))
def test_structural_problem_is_always_refused(case, data):
    mutate, message = STRUCTURAL[case]
    _edit(data, mutate)
    for policy in ("fail", "skip"):
        with pytest.raises(DataError) as err:
            load_split(data, "test", on_invalid=policy)
        assert message in str(err.value) and "instances_test.json" in str(err.value)


def test_annotation_of_an_unknown_image_is_refused_or_dropped(data):
    _edit(data, lambda c: c["annotations"][0].__setitem__("image_id", 12345))
    with pytest.raises(DataError, match="image_id 12345"):
        load_split(data, "test")
    split = load_split(data, "test", on_invalid="skip")
    assert split.skipped == {"unknown image": 1} and sum(split.group_counts().values()) == 8


def test_missing_area_is_the_box_area(data):
    _edit(data, lambda c: [a.pop("area", None) for a in c["annotations"]])
    split = load_split(data, "test")
    ann = split.coco_gt["annotations"][0]
    assert ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3])


def test_sixteen_bit_grey_is_scaled_not_white(data):
    path = _first_file(data)
    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"), dtype=np.uint16)
    Image.fromarray(grey * 257).save(path.with_suffix(".png"), format="PNG")  # 16-bit, same picture
    path.unlink()
    path.with_suffix(".png").rename(path)  # keep the file name the JSON lists
    split = load_split(data, "test")
    ds = GroupedDetectionDataset(split, EvalTransform(128, 213))
    image = ds[0][0]
    assert Image.open(path).mode.startswith("I;16")
    assert float(image.std()) > 0.1, "a 16-bit image must not become one flat colour"


def test_fingerprint_follows_image_content(data):
    before = load_split(data, "test").fingerprint
    path = _first_file(data)
    with Image.open(path) as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path, format=im.format)
    after = load_split(data, "test").fingerprint
    assert before != after, "replaced images must not reuse a cached baseline"


def test_same_rules_for_research_layout(tmp_path):
    root = write_synthetic(tmp_path / "s", SPEC) / "research"
    ann = root / "women_split" / "gender_women_test.json"
    coco = json.loads(ann.read_text())
    coco["annotations"][0]["bbox"] = [0, 0, -3, 4]
    ann.write_text(json.dumps(coco))
    with pytest.raises(DataError, match="gender_women_test.json: 1 annotation"):
        load_split(root, "test")
    assert load_split(root, "test", on_invalid="skip").group_counts() == {"female": 3, "male": 4}


@pytest.mark.parametrize("on_invalid", ["error", "skip"])
def test_an_empty_categories_list_is_named_with_its_file(data, on_invalid):
    """Every box would otherwise be 'unknown category', one per box, or skipped silently."""
    _edit(data, lambda c: c.__setitem__("categories", []))
    with pytest.raises(DataError) as exc:
        load_split(data, "test", on_invalid=on_invalid)
    line = str(exc.value)
    assert str(_ann_path(data)) in line and "'categories' is empty" in line and "\n" not in line


def _stretch_first_image(root: Path, size: tuple[int, int]) -> None:
    """The first image replaced by a ``size`` (width, height) one, its JSON size and box to match."""
    Image.new("RGB", size, (90, 90, 90)).save(_first_file(root), format="JPEG")

    def stretch(c: dict[str, Any]) -> None:
        img = c["images"][0]
        img["width"], img["height"] = size
        for a in c["annotations"]:
            if a["image_id"] == img["id"]:
                a["bbox"], a["area"] = [1, 1, 5, 5], 25

    _edit(root, stretch)


def test_an_image_the_resize_shrinks_under_one_pixel_is_refused_or_skipped(data):
    """10000x10 at min_size 128, max_size 213: the cap sets the short side to round(0.2) = 0 px,
    which the detector's interpolation refuses mid-inference; it is an invalid image at load."""
    _stretch_first_image(data, (10000, 10))
    with pytest.raises(DataError) as err:
        load_split(data, "test", resize=[(128, 213)])
    line = err.value.one_line()
    assert "resized side would be under 1 px" in line and "10000x10 px at min_size 128, max_size 213" in line
    assert "test_00001" in line and "data.on_invalid=skip" in line
    split = load_split(data, "test", resize=[(128, 213)], on_invalid="skip")
    assert split.skipped == {"extreme aspect ratio": 1} and len(split.records) == 7
    assert load_split(data, "test").records[0].width == 10000  # no size policy given: nothing to honour


def test_a_truncated_jpeg_that_passes_verify_is_corrupt_at_load(data):
    """PIL's ``verify()`` reads a JPEG's headers only; the missing tail shows when it is decoded."""
    path = _first_file(data)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with Image.open(path) as im:
        im.verify()  # the case: verify alone lets it through
    with pytest.raises(DataError, match=f"corrupt image {path}"):
        load_split(data, "test")
    split = load_split(data, "test", on_corrupt="skip")
    assert split.skipped_corrupt == [str(path)] and len(split.records) == 7


def test_one_file_under_two_image_ids_is_refused_naming_both(data):
    def twice(c: dict[str, Any]) -> None:
        c["images"][1]["file_name"] = c["images"][0]["file_name"]

    _edit(data, twice)
    coco = json.loads(_ann_path(data).read_text())
    first, second = coco["images"][0], coco["images"][1]
    for policy in ("fail", "skip"):
        with pytest.raises(DataError) as err:
            load_split(data, "test", on_invalid=policy)
        line = err.value.one_line()
        assert f"image ids {first['id']!r} and {second['id']!r} both name file '{first['file_name']}'" in line
        assert str(_ann_path(data)) in line
