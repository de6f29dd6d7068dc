"""Box-level groups (FACET-style: the protected attribute on each person's box): the mixed-group
synthetic benchmark, the choice of level, and bad box data refused in one line naming the file,
the image or annotation and the key."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from faapkit.data.box_groups import pair_ids, sampling_key
from faapkit.data.coco import GroupedDetectionDataset, load_split, require_groups
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.data.synth_mixed import MixedSpec, write_mixed
from faapkit.data.transforms import TrainTransform, crop
from faapkit.errors import DataError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    return write_mixed(tmp_path_factory.mktemp("mixed") / "m", MixedSpec(seed=5, images=6)) / "coco"


@pytest.fixture
def data(mixed, tmp_path) -> Path:
    dst = tmp_path / "coco"
    shutil.copytree(mixed, dst)
    return dst


def _edit(root: Path, fn: Callable[[dict[str, Any]], None]) -> Path:
    path = root / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    fn(coco)
    path.write_text(json.dumps(coco))
    return path


def test_mixed_synth_is_deterministic_per_seed_and_holds_mixed_images(mixed, tmp_path):
    again = write_mixed(tmp_path / "again", MixedSpec(seed=5, images=6)) / "coco"
    other = write_mixed(tmp_path / "other", MixedSpec(seed=6, images=6)) / "coco"
    assert _digest(again) == _digest(mixed) != _digest(other)
    coco = json.loads((mixed / "annotations" / "instances_test.json").read_text())
    assert not any("attributes" in img for img in coco["images"])  # on the boxes only
    assert all(set(a["attributes"]) == {"gender", "age"} for a in coco["annotations"])
    split = load_split(mixed, "test")
    assert split.group_level == "box" and split.groups == ["female", "male"]
    kinds = [r.held for r in split.records]
    assert kinds.count(("female", "male")) == 2 and kinds.count(("female",)) == kinds.count(("male",)) == 2
    assert split.group_counts() == {"female": 4, "male": 4}
    assert sum(split.group_boxes().values()) == len(coco["annotations"])
    assert split.coco_gt["group_level"] == "box" and all("group" in a for a in split.coco_gt["annotations"])


def test_mixed_synth_keeps_its_folder_and_refuses_another(mixed, tmp_path):
    out = write_mixed(tmp_path / "m", MixedSpec(seed=1, images=3))
    assert write_mixed(out, MixedSpec(seed=1, images=3)) == out
    with pytest.raises(DataError, match="already holds the mixed benchmark of another seed"):
        write_mixed(out, MixedSpec(seed=2, images=3))
    # the image-level benchmark asked for there named the mixed one "the synthetic benchmark"
    with pytest.raises(DataError, match=r"holds the mixed benchmark of seed 1, bias v3; seed 1, bias v4, train split"):
        write_synthetic(out, SynthSpec(seed=1))


def test_one_group_per_image_reads_the_same_at_either_level(tmp_path):
    image_level = write_synthetic(tmp_path / "s", SynthSpec(seed=3, splits=(("test", 3, 3),))) / "coco"
    box_level = tmp_path / "box"
    shutil.copytree(image_level, box_level)

    def to_boxes(coco: dict[str, Any]) -> None:
        attrs = {img["id"]: img.pop("attributes") for img in coco["images"]}
        for a in coco["annotations"]:
            a["attributes"] = attrs[a["image_id"]]

    _edit(box_level, to_boxes)
    a, b = load_split(image_level, "test"), load_split(box_level, "test")
    assert (a.group_level, b.group_level) == ("image", "box")
    assert a.groups == b.groups and a.group_images() == b.group_images() and a.group_boxes() == b.group_boxes()
    assert [r.group for r in a.records] == [r.group for r in b.records]


def _drop_attr(ann: int) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["annotations"][ann]["attributes"].pop("gender")


def _set_attr(ann: int, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["annotations"][ann]["attributes"].__setitem__("gender", value)


def _no_boxes(coco: dict[str, Any]) -> None:
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != 2]


# case -> (mutation, words of the refusal, kind counted under skip)
BAD_BOXES = {
    "some boxes lack the attribute": (_drop_attr(0), "1 of its 3 boxes lack it, first annotation 1", "missing box"),
    "null attribute": (_set_attr(1, None), "annotation 2 of image 1 'test_00001.jpg': None", "bad box attribute"),
    "empty attribute": (_set_attr(1, " "), "annotation 2 of image 1", "bad box attribute"),
    "a list, not a value": (_set_attr(1, ["f"]), "['f']", "bad box attribute"),
    "image without boxes": (_no_boxes, "image 2 'test_00002.jpg' has no (non-crowd) box", "no group box"),
}


@pytest.mark.parametrize("case", sorted(BAD_BOXES))
def test_bad_box_groups_are_refused_or_skipped(case, data):
    mutate, words, kind = BAD_BOXES[case]
    path = _edit(data, mutate)
    with pytest.raises(DataError) as err:
        load_split(data, "test")
    line = err.value.one_line()
    assert "\n" not in line and str(path) in line and words in line and "'gender'" in line, line
    split = load_split(data, "test", on_invalid="skip")
    assert sum(split.skipped.values()) == 1 and next(iter(split.skipped)).startswith(kind)
    assert len(split.records) == 5


def test_crowd_boxes_need_no_attribute(data):
    def crowd(coco: dict[str, Any]) -> None:
        coco["annotations"][0]["iscrowd"] = 1
        del coco["annotations"][0]["attributes"]

    _edit(data, crowd)
    split = load_split(data, "test")
    assert "group" not in split.records[0].annotations[0]


def test_the_level_is_chosen_or_refused(data, tmp_path):
    def both(coco: dict[str, Any]) -> None:
        for img in coco["images"]:
            img["attributes"] = {"gender": "female"}

    path = _edit(data, both)
    with pytest.raises(DataError) as err:
        load_split(data, "test")
    line = err.value.one_line()
    assert str(path) in line and "both images and boxes carry attribute 'gender'" in line
    assert "data.group_level = image or box" in line
    assert load_split(data, "test", group_level="image").groups == ["female"]
    assert load_split(data, "test", group_level="box").group_level == "box"
    image_level = write_synthetic(tmp_path / "s", SynthSpec(seed=3, splits=(("test", 1, 1),)))
    with pytest.raises(DataError, match="data.group_level is box but no box has attribute 'gender'"):
        load_split(image_level / "coco", "test", group_level="box")
    with pytest.raises(DataError, match="research layout's groups are its folders"):
        load_split(image_level / "research", "test", group_level="box")


def test_training_reads_each_boxs_group(mixed, tmp_path):
    """Training data of box-level groups: each target's boxes carry their group (0 female, 1 male,
    -1 other), and the sampler keys an image 0 when it holds a female box, 1 when it holds male
    boxes only; a random crop drops a box's group with the box."""
    split = load_split(mixed, "test")
    require_groups(split, ["female", "male"])  # box-level groups train (VersionSpec.group_levels decides)
    ds = GroupedDetectionDataset(split, TrainTransform([96], 160, crop_prob=0.0), groups=["female", "male"])
    keys = ds.record_groups()
    for i, r in enumerate(split.records):
        assert keys[i] == (0 if "female" in r.held else 1)
        _, target, key = ds[i, 0]
        assert key == keys[i] and target["groups"].dtype == torch.int64
        assert target["groups"].tolist() == [0 if a["group"] == "female" else 1 for a in r.annotations]
    assert set(keys) == {0, 1} and any(len(r.held) == 2 for r in split.records)
    anns = [{"group": "female"}, {"group": "male"}, {"group": "other"}, {}]
    assert pair_ids(anns, ["female", "male", "other"]) == [0, 1, -1, -1]
    assert sampling_key(("male", "other"), ["female", "male"]) == -1
    assert sampling_key(("female", "male"), ["female", "male"]) == 0
    target = {
        "boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]]),
        "labels": torch.tensor([1, 1]),
        "area": torch.tensor([100.0, 100.0]),
        "iscrowd": torch.tensor([0, 0]),
        "groups": torch.tensor([0, 1]),
    }
    _, cropped = crop(Image.new("RGB", (64, 64)), target, 0, 0, 20, 20)
    assert cropped["groups"].tolist() == [0]
    image_root = write_synthetic(tmp_path / "s", SynthSpec(seed=3, splits=(("test", 1, 1),))) / "coco"
    image_level = GroupedDetectionDataset(load_split(image_root, "test"), TrainTransform([96], 160, crop_prob=0.0))
    assert "groups" not in image_level[0, 0][1] and sorted(image_level.record_groups()) == [0, 1]


def test_an_attribute_on_neither_level_is_refused_naming_both_levels_attributes(tmp_path):
    from faapkit.data.box_groups import no_attribute

    coco = {"annotations": [{"attributes": {"gender": "female", "age": "young"}}, {"id": 2}]}
    err = no_attribute(tmp_path / "instances_test.json", "test", "skin", set(), coco)
    assert str(err) == (
        f"{tmp_path / 'instances_test.json'}: no image or box in split 'test' has attribute 'skin' "
        "(attributes present: none; on boxes: age, gender)"
    )


def test_inspect_dataset_names_each_splits_level(mixed, tmp_path):
    from typer.testing import CliRunner

    from faapkit.cli import app

    per_image = write_synthetic(tmp_path / "s", SynthSpec(seed=0, splits=(("train", 2, 2), ("val", 2, 2)))) / "coco"
    runner = CliRunner()
    box = runner.invoke(app, ["inspect", "dataset", str(mixed), "--json"])
    image = runner.invoke(app, ["inspect", "dataset", str(per_image), "--json"])
    assert box.exit_code == 0 and image.exit_code == 0, (box.output, image.output)
    assert {s["group_level"] for s in json.loads(box.output)["splits"].values()} == {"box"}
    assert {s["group_level"] for s in json.loads(image.output)["splits"].values()} == {"image"}
    table = runner.invoke(app, ["inspect", "dataset", str(mixed)], env={"COLUMNS": "240"})
    assert table.exit_code == 0 and "per person" in table.output and "mixed images count in each group" in table.output


def test_image_level_asked_of_groups_on_boxes_is_one_clear_line(data):
    """Not "no image or box has attribute 'gender' (...; on boxes: gender)": the boxes have it."""
    path = data / "annotations" / "instances_test.json"
    with pytest.raises(DataError) as err:
        load_split(data, "test", group_level="image")
    line = err.value.one_line()
    assert line == (
        f"{path}: data.group_level is image, but attribute 'gender' is on its boxes only, on no image; "
        "set data.group_level = box (or auto) to score the boxes' groups"
    )
