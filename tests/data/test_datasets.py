"""Both layouts, the synthetic benchmark's determinism, sampling and every data error."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from faapkit.data.batching import BalancedGroupSampler, ShapeBucketError, eval_batches
from faapkit.data.coco import load_split, require_groups
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.errors import DataError
from tests.conftest import run_here

SMALL = SynthSpec(seed=3, splits=(("train", 6, 3), ("test", 4, 4)), bias="v3")


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_synthetic_is_byte_identical_for_a_seed(tmp_path):
    a = write_synthetic(tmp_path / "a", SMALL)
    b = write_synthetic(tmp_path / "b", SMALL)
    assert _digest(a) == _digest(b)
    c = write_synthetic(tmp_path / "c", SynthSpec(seed=4, splits=SMALL.splits, bias="v3"))
    assert _digest(a) != _digest(c)


def test_another_seed_into_a_written_benchmark_is_refused(tmp_path):
    """Regenerating with another seed into the same folder used to keep the old images and say
    "wrote": every later evaluation then silently measured the old seed's benchmark."""
    root = write_synthetic(tmp_path / "s", SMALL)
    before = _digest(root)
    assert write_synthetic(root, SMALL) == root  # the same benchmark again: nothing to do
    with pytest.raises(DataError, match="seed 3.*seed 4"):
        write_synthetic(root, SynthSpec(seed=4, splits=SMALL.splits, bias="v3"))
    code, _, err = run_here("data", "synth", str(root), "--seed", "5")
    assert code != 0 and err.count("error:") == 1 and "seed 3" in err and "seed 5" in err
    assert _digest(root) == before


def test_a_train_seed_renders_only_the_train_split_from_it(tmp_path):
    """``--train-seed``: the train images are another seed's (a detector trained on ``--seed``'s
    never saw them); test stays ``--seed``'s byte for byte; the folder keeps what it holds."""
    from dataclasses import replace

    plain = write_synthetic(tmp_path / "plain", SMALL)
    fresh = write_synthetic(tmp_path / "fresh", replace(SMALL, train_seed=8))
    other = write_synthetic(tmp_path / "other", SynthSpec(seed=8, splits=SMALL.splits, bias="v3"))
    for split, same_as in (("test", plain), ("train", other)):
        assert _digest(fresh / "coco" / "images" / split) == _digest(same_as / "coco" / "images" / split)
    assert _digest(fresh / "coco" / "images" / "train") != _digest(plain / "coco" / "images" / "train")
    assert json.loads((fresh / "manifest.json").read_text())["train_seed"] == 8
    assert "train_seed" not in json.loads((plain / "manifest.json").read_text())  # earlier caches stay valid
    with pytest.raises(DataError, match="train split of seed 8"):
        write_synthetic(fresh, SMALL)
    for args, says in ((["--train-seed", "0"], "not --seed"), (["--train-seed", "2", "--mixed"], "without --mixed")):
        code, _, err = run_here("data", "synth", str(tmp_path / "new"), *args)
        assert code == 2 and err.count("error:") == 1 and says in err, err
    assert not (tmp_path / "new").exists()


def test_v4_is_v3_with_the_next_seeds_train_split(tmp_path):
    """The default benchmark ``v4``: v3's val and test byte for byte, its train split rendered
    from ``seed + 1`` (images v3's detector never saw), recorded in the manifest; ``faap data synth``
    writes it by default and names its train seed; the mixed benchmark refuses it."""
    small = tuple((s, 3, 2) for s in ("train", "val", "test"))
    v4 = write_synthetic(tmp_path / "v4", SynthSpec(seed=2, splits=small, bias="v4"))
    v3 = write_synthetic(tmp_path / "v3", SynthSpec(seed=2, splits=small, bias="v3", train_seed=3))
    assert _digest(v4 / "coco") == _digest(v3 / "coco") and _digest(v4 / "research") == _digest(v3 / "research")
    plain = write_synthetic(tmp_path / "plain", SynthSpec(seed=2, splits=small, bias="v3"))
    for split in ("val", "test"):
        assert _digest(v4 / "coco" / "images" / split) == _digest(plain / "coco" / "images" / split)
    manifest = json.loads((v4 / "manifest.json").read_text())
    assert (manifest["bias"], manifest["seed"], manifest["train_seed"]) == ("v4", 2, 3)
    with pytest.raises(DataError, match="seed 2, bias v3, train split of seed 3.*bias v4"):
        write_synthetic(v3, SynthSpec(seed=2, splits=small, bias="v4"))
    code, _, err = run_here("data", "synth", str(tmp_path / "mixed"), "--mixed", "--bias", "v4", "--images", "2")
    assert code != 0 and err.count("error:") == 1 and "v4" in err and "use v3" in err, err
    assert not (tmp_path / "mixed").exists()


# sha256 of render_image(0, 1, i, g) for i < 3, both groups, as faapkit wrote them before biases had
# names: the v1 bias must keep rendering those bytes, so caches and runs of earlier releases stay valid
V1_BYTES = "322510fd2ca4e667"


def test_v1_bias_renders_the_earlier_benchmark_and_v2_is_weaker():
    from faapkit.data.synth import BIASES, render_image

    def digest(*bias: str) -> str:
        images = [render_image(0, 1, i, g, *bias)[0] for i in range(3) for g in ("male", "female")]
        return hashlib.sha256(b"".join(images)).hexdigest()[:16]

    assert digest("v1") == V1_BYTES
    assert digest() == digest("v3") == digest("v2") != V1_BYTES, "v3, the default, draws v2's figures"
    assert digest("v2") != V1_BYTES
    v1, v2 = BIASES["v1"], BIASES["v2"]
    assert v2["contrast"]["male"] == v1["contrast"]["male"] and v2["opacity"]["male"] == v1["opacity"]["male"]
    assert v2["contrast"]["female"] < v1["contrast"]["female"] and v2["opacity"]["female"] < v1["opacity"]["female"]


def test_another_bias_into_a_written_benchmark_is_refused(tmp_path):
    from dataclasses import replace

    root = write_synthetic(tmp_path / "s", replace(SMALL, bias="v2"))
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["bias"] == "v2" and manifest["contrast"]["female"] == 0.2
    with pytest.raises(DataError, match="bias v2; seed 3, bias v3 needs another folder"):
        write_synthetic(root, SMALL)
    code, _, err = run_here("data", "synth", str(root), "--seed", "3")
    assert code != 0 and err.count("error:") == 1 and "bias v2" in err
    code, _, err = run_here("data", "synth", str(tmp_path / "t"), "--bias", "v9")
    assert code != 0 and "unknown benchmark bias 'v9'" in err and "Traceback" not in err


def test_a_manifest_from_before_bias_names_reads_as_v1(tmp_path):
    from dataclasses import replace

    v1 = replace(SMALL, bias="v1")
    root = write_synthetic(tmp_path / "s", v1)
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["bias"]  # as the first release wrote it: contrast and opacity only
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert write_synthetic(root, v1) == root
    with pytest.raises(DataError, match="bias v1"):
        write_synthetic(root, replace(SMALL, bias="v2"))


def test_embedded_folders_name_seed_and_bias(tmp_path):
    from faapkit.data.synth import embedded_folder, parse_embedded_folder

    assert embedded_folder(0, "v1") == "synth-v1-seed0"  # the folder earlier releases used
    assert embedded_folder(0, "v2") == "synth-v2-seed0"
    assert parse_embedded_folder(tmp_path / embedded_folder(4, "v2") / "coco") == (4, "v2")
    assert parse_embedded_folder(tmp_path / "synth-v9-seed0" / "coco") is None
    assert parse_embedded_folder(tmp_path / "mine" / "coco") is None


def test_both_layouts_agree(tmp_path):
    root = write_synthetic(tmp_path / "s", SMALL)
    coco = load_split(root / "coco", "train")
    research = load_split(root / "research", "train")
    assert coco.layout == "attributes" and research.layout == "research"
    assert coco.group_counts() == research.group_counts() == {"female": 3, "male": 6}
    assert len(coco.coco_gt["annotations"]) == len(research.coco_gt["annotations"])
    ages = load_split(root / "coco", "test", split_by="age")
    assert len(ages.groups) >= 2 and sum(ages.group_counts().values()) == 8


def test_embedded_benchmark_bias(synth_root):
    train = load_split(synth_root, "train")
    counts = train.group_counts()
    assert counts["male"] == 3 * counts["female"]
    test = load_split(synth_root, "test")
    assert test.group_counts() == {"female": 250, "male": 250}


@pytest.fixture
def small(tmp_path):
    return write_synthetic(tmp_path / "s", SMALL)


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="dataset root not found"):
        load_split(tmp_path / "nope", "test")


def test_missing_annotation_file(small):
    (small / "coco" / "annotations" / "instances_test.json").unlink()
    with pytest.raises(DataError, match="annotation file for split 'test' not found"):
        load_split(small / "coco", "test")
    (small / "research" / "men_split" / "gender_men_test.json").unlink()
    with pytest.raises(DataError, match="annotation file not found"):
        load_split(small / "research", "test")


def test_broken_json(small):
    (small / "coco" / "annotations" / "instances_test.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_split(small / "coco", "test")


def test_missing_image_file(small):
    next((small / "coco" / "images" / "test").iterdir()).unlink()
    with pytest.raises(DataError, match="1 image file"):
        load_split(small / "coco", "test")


def test_corrupt_image_fail_or_skip(small):
    victim = sorted((small / "coco" / "images" / "test").iterdir())[0]
    victim.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(DataError, match="corrupt image"):
        load_split(small / "coco", "test")
    split = load_split(small / "coco", "test", on_corrupt="skip")
    assert len(split.records) == 7 and split.skipped_corrupt == [str(victim)]
    assert len(split.coco_gt["images"]) == 7


def test_image_corrupted_after_loading_is_one_line_from_a_worker(small):
    """A file that breaks between the split's check and its loading (a loader worker re-raises
    it with the worker's traceback in the message) still reads as one line naming the file."""
    from torch.utils.data import DataLoader

    from faapkit.data.batching import collate
    from faapkit.data.coco import GroupedDetectionDataset
    from faapkit.data.transforms import EvalTransform

    split = load_split(small / "coco", "test")
    split.records[0].path.write_bytes(b"\xff\xd8garbage")
    loader = DataLoader(
        GroupedDetectionDataset(split, EvalTransform(64, 96)), batch_size=2, collate_fn=collate, num_workers=1
    )
    with pytest.raises(DataError) as info:
        list(loader)
    line = info.value.one_line()
    assert "Traceback" not in line and "worker" not in line
    assert line == f"cannot decode image {split.records[0].path}: UnidentifiedImageError"


def test_loader_workers_default_by_device():
    from faapkit.data.batching import loader_workers

    assert loader_workers(None, "cpu") == 0 and loader_workers(3, "cpu") == 3
    assert 1 <= loader_workers(None, "cuda") <= 8 and loader_workers(0, "cuda") == 0


def test_missing_attribute(small):
    ann = small / "coco" / "annotations" / "instances_test.json"
    data = json.loads(ann.read_text())
    del data["images"][0]["attributes"]["gender"]
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"instances_test.json: 1 image\(s\) lack attribute 'gender' \(first: image 1"):
        load_split(small / "coco", "test")
    with pytest.raises(DataError, match="no image or box in split 'test' has attribute 'skin'.*age, gender"):
        load_split(small / "coco", "test", split_by="skin")


def test_empty_group(small):
    ann = small / "coco" / "annotations" / "instances_test.json"
    data = json.loads(ann.read_text())
    for im in data["images"]:
        im["attributes"]["gender"] = "male"
    ann.write_text(json.dumps(data))
    split = load_split(small / "coco", "test")
    with pytest.raises(DataError, match="group 'female' .* has no images"):
        require_groups(split, ["female", "male"])


def test_research_layout_missing_folder(small):
    shutil.rmtree(small / "research" / "women_split" / "test")
    with pytest.raises(DataError, match="image folder not found"):
        load_split(small / "research", "test")


def test_balanced_sampler_deterministic_balanced_resumable():
    groups = [0] * 30 + [1] * 90 + [-1] * 5
    s = BalancedGroupSampler(groups, batch_size=8, num_batches=50, seed=1)
    s.set_epoch(2)
    batches = list(s)
    s2 = BalancedGroupSampler(groups, batch_size=8, num_batches=50, seed=1)
    s2.set_epoch(2, position=20)
    assert list(s2) == batches[20:]
    drawn = [groups[i] for b in batches for i, _ in b]
    assert -1 not in drawn
    assert 0.4 < drawn.count(0) / len(drawn) < 0.6
    s.set_epoch(3)
    assert list(s) != batches
    r0 = BalancedGroupSampler(groups, batch_size=8, num_batches=5, seed=1, rank=0, world_size=2)
    r1 = BalancedGroupSampler(groups, batch_size=8, num_batches=5, seed=1, rank=1, world_size=2)
    assert list(r0) != list(r1)


def test_shape_bucketed_sampler_one_size_and_scale_per_batch_resumable():
    groups = [0] * 30 + [1] * 90 + [-1] * 5
    shapes = [(96, 128) if i % 3 else (128, 160) for i in range(len(groups))]
    shapes[-1] = (50, 50)  # an image outside both groups: never sampled, no bucket of its own
    kw = dict(batch_size=8, num_batches=40, seed=1, shapes=shapes, scales=[112, 128])
    s = BalancedGroupSampler(groups, **kw)
    s.set_epoch(2)
    batches = list(s)
    assert len(batches) == 40
    for batch in batches:
        assert len({shapes[i] for i, _, _ in batch}) == 1  # one original size...
        assert len({scale for _, _, scale in batch}) == 1  # ...and one scale: no padding
        assert {groups[i] for i, _, _ in batch} <= {0, 1}
    assert {scale for b in batches for _, _, scale in b} == {112, 128}
    assert {shapes[b[0][0]] for b in batches} == {(96, 128), (128, 160)}
    drawn = [groups[i] for b in batches for i, _, _ in b]
    assert 0.4 < drawn.count(0) / len(drawn) < 0.6  # the group balance is kept
    s2 = BalancedGroupSampler(groups, **kw)
    s2.set_epoch(2, position=15)
    assert list(s2) == batches[15:]
    r0 = BalancedGroupSampler(groups, **kw, rank=0, world_size=2)
    r1 = BalancedGroupSampler(groups, **kw, rank=1, world_size=2)
    assert list(r0) != list(r1)


def test_shape_bucketed_sampler_draws_each_image_as_often_as_unbucketed():
    """A size's chance is ``sum_g w_g n_gs / n_g``: with groups of different size mixes, no image
    of a small (size, group) pool is drawn far more often than its group's others."""
    groups = [0] * 100 + [1] * 100
    shapes = [(8, 8)] * 99 + [(9, 9)] + [(9, 9)] * 99 + [(8, 8)]  # each group: 99 of one size, 1 of the other
    s = BalancedGroupSampler(groups, batch_size=8, num_batches=2000, seed=0, shapes=shapes, scales=[8])
    drawn = torch.tensor([i for b in s for i, _, _ in b])
    share = torch.bincount(drawn, minlength=200).float() / len(drawn)
    assert share.max() < 3 / 200  # uniform would be 1/200 each; unweighted buckets gave one image 25%


def test_shape_bucketed_sampler_weights_and_refusal():
    groups = [0] * 10 + [1] * 10
    only_female = BalancedGroupSampler(
        groups, batch_size=4, num_batches=20, seed=0, weights=[1.0, 0.0], shapes=[(8, 8)] * 20, scales=[8]
    )
    assert {groups[i] for b in only_female for i, _, _ in b} == {0}
    disjoint = [(8, 8)] * 10 + [(9, 9)] * 10  # no size holds both groups
    with pytest.raises(ShapeBucketError, match="no image size is shared"):
        BalancedGroupSampler(groups, batch_size=4, num_batches=2, seed=0, shapes=disjoint, scales=[8])
    with pytest.raises(ShapeBucketError, match="at least one training scale"):
        BalancedGroupSampler(groups, batch_size=4, num_batches=2, seed=0, shapes=[(8, 8)] * 20, scales=[])
    # a size only one group has: its images are never drawn, and the sampler counts them
    partly = [(8, 8)] * 5 + [(7, 7)] * 5 + [(8, 8)] * 10
    some = BalancedGroupSampler(groups, batch_size=4, num_batches=30, seed=0, shapes=partly, scales=[8])
    assert some.stranded == 5 and all(partly[i] == (8, 8) for b in some for i, _, _ in b)
    # with the advantaged group unsampled, its sizes do not matter
    ok = BalancedGroupSampler(
        groups, batch_size=4, num_batches=2, seed=0, weights=[1.0, 0.0], shapes=disjoint, scales=[8]
    )
    assert all(shape == (8, 8) for b in ok for shape in [disjoint[b[0][0]]])


def test_eval_batches_share_one_shape(synth_root):
    split = load_split(synth_root, "val")
    from faapkit.data.transforms import resized_hw

    for batch in eval_batches(split.records, 8, 128, 213):
        shapes = {resized_hw(split.records[i].height, split.records[i].width, 128, 213) for i in batch}
        assert len(shapes) == 1


def test_embedded_data_follows_the_detector(monkeypatch, registries):
    """Without a dataset of its own, a run, probe or evaluation uses the benchmark its detector
    names: the one it was trained on, or for the default detector v4, v3's val and test with train
    images it never saw (a detector that names none: the default benchmark)."""
    import faapkit.data.synth as synth

    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(synth, "embedded_dataset", lambda seed, bias: calls.append((seed, bias)) or Path(bias))
    for name in ("detr-synth-tiny", "detr-synth-tiny-v2", "detr-synth-tiny-v3", "detr-r50"):
        synth.embedded_dataset_for(registries.detectors.get(name))
    assert calls == [(0, "v1"), (0, "v2"), (0, "v4"), (0, synth.DEFAULT_BIAS)]
    assert registries.detectors.get("detr-synth-tiny-v3").benchmark == synth.DEFAULT_BIAS == "v4"


def test_data_benchmark_chooses_the_embedded_data_unless_a_run_recorded_its_own(monkeypatch, registries, tmp_path):
    """``data.benchmark`` names the embedded benchmark over the detector's (v3 reproduces the former
    default's runs); a run's recorded folder still wins, so it resumes and evaluates on its images."""
    import faapkit.data.synth as synth

    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(synth, "embedded_dataset", lambda seed, bias: calls.append((seed, bias)) or Path(bias))
    detector = registries.detectors.get("detr-synth-tiny-v3")
    synth.embedded_dataset_for(detector, benchmark="v3")
    synth.embedded_dataset_for(detector, recorded=tmp_path / "synth-v2-seed0" / "coco", benchmark="v3")
    assert calls == [(0, "v3"), (0, "v2")]


def _renumbered_person(src: Path, dst: Path, split: str, new_id: int) -> Path:
    """A copy of ``src`` whose ``person`` category (and every annotation) is numbered ``new_id``."""
    shutil.copytree(src, dst)
    ann = dst / "annotations" / f"instances_{split}.json"
    data = json.loads(ann.read_text())
    for cat in data["categories"]:
        cat["id"] = new_id
    for a in data["annotations"]:
        a["category_id"] = new_id
    ann.write_text(json.dumps(data))
    return dst


def test_a_person_category_the_detector_does_not_predict_is_refused(synth_root, tmp_path):
    """A COCO-format dataset numbering people 3 against a detector that predicts them as label 1
    matched no detection to any person box: every AP 0, a wrong number instead of an error."""
    from faapkit.data.coco import require_person_label

    root = _renumbered_person(synth_root, tmp_path / "renumbered", "test", 3)
    split = load_split(root, "test", limit=4)
    with pytest.raises(
        DataError, match=r"numbers its 'person' category 3.*'detr-synth-tiny-v3' predicts people as label 1"
    ):
        require_person_label(split, 1, "detr-synth-tiny-v3")
    require_person_label(load_split(synth_root, "test", limit=4), 1, "detr-synth-tiny-v3")


def test_faap_eval_refuses_a_person_category_the_detector_does_not_predict(synth_root, tmp_path, capsys):
    from tests.conftest import faap_in_process, one_error

    root = _renumbered_person(synth_root, tmp_path / "renumbered", "test", 3)
    code, _, err = faap_in_process(
        capsys,
        "eval",
        "--data",
        str(root),
        "--limit-images",
        "4",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(tmp_path / "m.json"),
    )
    one_error(err, 1, code, "numbers its 'person' category 3")
    assert not (tmp_path / "m.json").exists()
