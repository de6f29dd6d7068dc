"""Shape-bucketed pretraining batches: one resized shape per batch, so nothing is ever padded."""

from __future__ import annotations

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
