"""Shape-bucketed pretraining batches: one resized shape per batch, so nothing is ever padded."""

from __future__ import annotations

import re

import pytest

from faapkit.data.batching import collate
from faapkit.data.coco import GroupedDetectionDataset, load_split
from faapkit.data.transforms import TrainTransform
from faapkit.train.pretrain import PRESETS, _ShapeBuckets


def test_bucketed_batches_are_never_padded(synth_root):
    data = load_split(synth_root, "train", limit=60)
    preset = PRESETS["synth-tiny-unpadded"]
    ds = GroupedDetectionDataset(data, TrainTransform(preset.scales, preset.max_size, crop_prob=0.3))
    sampler = _ShapeBuckets([(r.height, r.width) for r in data.records], 4, preset.scales, seed=0, epoch=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 3
    assert len({b[0][2] for b in batches}) > 1, "scales vary between batches"
    for keys in batches[:6]:
        batch = collate([ds[k] for k in keys])
        assert not batch.mask.any(), "a bucketed batch must hold no padding"
    again = list(_ShapeBuckets([(r.height, r.width) for r in data.records], 4, preset.scales, seed=0, epoch=1))
    assert again == batches


def test_a_pretrained_file_says_how_it_was_trained_and_runs_follow_it(tmp_path, registries, monkeypatch):
    """A `faap detector pretrain` file given as ``detector.checkpoint`` sets the run's batching and
    embedded benchmark as its packaged twin would; before, it always trained padded on ``v1``, so a
    generator trained against an unpadded detector learned to correct padding (diagnosis, section 9)."""
    import faapkit.data.synth as synth
    from faapkit.config import resolve_config
    from faapkit.detr.build import read_state_dict
    from faapkit.io import checkpoint_training, save_checkpoint
    from faapkit.train.pretrain import _weights_file

    model = registries.detectors.get("detr-synth-tiny").build().model
    biases: list[str] = []
    monkeypatch.setattr(synth, "embedded_dataset", lambda seed, bias: biases.append(bias) or tmp_path)
    for name, buckets in (("synth-tiny", False), ("synth-tiny-v2", True)):
        path = tmp_path / f"{name}.pth"
        save_checkpoint(path, _weights_file(model, PRESETS[name], name))
        assert checkpoint_training(path) == {"preset": name, "shape_buckets": buckets, "bias": PRESETS[name].bias}
        assert read_state_dict(path).keys() == model.state_dict().keys()
        cfg = resolve_config(registries, version="level-up", overrides=[f"detector.checkpoint={path}"])
        assert cfg.data.shape_buckets is buckets
        synth.embedded_dataset_for(registries.detectors.get("detr-synth-tiny"), path)
    assert biases == ["v1", "v2"]
    bare = tmp_path / "bare.pth"  # upstream DETR's format records nothing: padded, as upstream trains
    save_checkpoint(bare, {"model": model.state_dict()})
    assert checkpoint_training(bare) == {}
    from_bare = resolve_config(registries, version="level-up", overrides=[f"detector.checkpoint={bare}"])
    assert not from_bare.data.shape_buckets
    explicit = [f"detector.checkpoint={tmp_path / 'synth-tiny-v2.pth'}", "data.shape_buckets=false"]
    assert not resolve_config(registries, version="level-up", overrides=explicit).data.shape_buckets


@pytest.mark.parametrize(
    ("trained", "message"),
    [
        (["v2"], "its 'trained' record is a list, not a mapping"),
        ({"preset": "p", "shape_buckets": "yes", "bias": "v2"}, "'trained.shape_buckets' must be a bool, got 'yes'"),
        ({"preset": "p", "shape_buckets": True, "bias": ["v2"]}, "'trained.bias' must be a non-empty str"),
        ({"preset": "p", "shape_buckets": True, "bias": ""}, "'trained.bias' must be a non-empty str, got ''"),
        ({"shape_buckets": True, "bias": "v2"}, "'trained.preset' must be a non-empty str, got None"),
    ],
)
def test_a_malformed_training_record_is_refused_naming_file_and_key(tmp_path, registries, trained, message):
    """Runs follow the record, so a misread one would train on the wrong batches or benchmark."""
    from faapkit.config import resolve_config
    from faapkit.errors import CheckpointError
    from faapkit.io import save_checkpoint

    path = tmp_path / "w.pth"
    save_checkpoint(
        path, {"model": registries.detectors.get("detr-synth-tiny").build().model.state_dict(), "trained": trained}
    )
    with pytest.raises(CheckpointError, match=re.escape(message)) as err:
        resolve_config(registries, version="level-up", overrides=[f"detector.checkpoint={path}"])
    assert str(path) in err.value.one_line()


def test_an_unknown_recorded_bias_or_a_folder_is_refused_by_name(tmp_path, registries):
    import faapkit.data.synth as synth
    from faapkit.artifacts.checkpoint import describe_checkpoint
    from faapkit.errors import CheckpointError, DataError
    from faapkit.io import save_checkpoint

    model = registries.detectors.get("detr-synth-tiny").build().model
    path = tmp_path / "w.pth"
    save_checkpoint(
        path, {"model": model.state_dict(), "trained": {"preset": "p", "shape_buckets": True, "bias": "v9"}}
    )
    with pytest.raises(DataError, match=r"w.pth: 'trained.bias' is 'v9', a benchmark this faapkit does not know"):
        synth.embedded_dataset_for(registries.detectors.get("detr-synth-tiny"), path)
    assert describe_checkpoint(path) == {
        "path": str(path),
        "format": "faap detector pretrain weights",
        "preset": "p",
        "shape_buckets": True,
        "bias": "v9",
    }
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        synth.embedded_dataset_for(registries.detectors.get("detr-synth-tiny"), tmp_path)
