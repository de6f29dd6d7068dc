"""Training against a torchvision detector's own loss: the generator learns, the detector does
not (parameters and batch-norm buffers bit-identical after the steps, eval mode throughout), and
what it cannot do is refused in one line before any step: the research versions' heads read DETR
decoder features, the transformer-aware generator a DETR's transformer, box-level groups a loss
restricted to one group's boxes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faapkit.config import resolve_config
from faapkit.data.synth_mixed import MixedSpec, write_mixed
from faapkit.data.transforms import normalize
from faapkit.detr.frozen import FrozenDetector
from faapkit.errors import ConfigError
from faapkit.train.trainer import Trainer
from faapkit.tvdet.build import torchvision_parts
from tests.tvdet.conftest import NAME

TINY = ["train.steps_per_epoch=1", "train.epochs=1", "train.batch_size=2", "data.limit_images=8"]
TINY += ["train.val_every=0"]


def _config(registries, checkpoint: Path, *extra: str, version: str = "level-up"):
    detector = [f"detector.name={NAME}", f"detector.checkpoint={checkpoint}"]
    return resolve_config(registries, version=version, overrides=[*TINY, *detector, *extra])


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()}


def test_level_up_trains_the_generator_against_the_detector_s_own_loss(
    registries, random_checkpoint, tmp_path, synth_root
):
    cfg = _config(registries, random_checkpoint, "generator.name=detector-aware", "generator.channels=8")
    trainer = Trainer(cfg, registries, tmp_path / "run")
    trainer.setup()
    frozen = _snapshot(trainer.detector.model)
    generator = _snapshot(trainer.generator)
    trainer.fit()
    row = trainer.run.read_log()[-1]
    assert row["steps"] == 1 and row["loss_det_dis"] > 0
    after = trainer.detector.model.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen), "the detector's weights or buffers moved"
    assert not any(p.requires_grad for p in trainer.detector.parameters())
    assert not any(m.training for m in trainer.detector.modules())
    moved = trainer.generator.state_dict()
    assert any(not torch.equal(generator[k], moved[k]) for k in generator), "the generator learned nothing"
    # the generator read the detector's finest FPN level (256 channels) of the clean image
    assert trainer.generator.context_proj.in_channels == trainer.detector.image_feature_dim == 256


@pytest.mark.slow  # SSDlite resizes to 320 x 320 whatever it is given
def test_the_loss_reaches_the_image_and_leaves_batch_norm_statistics_alone():
    """SSDlite keeps ``BatchNorm2d`` (no ``FrozenBatchNorm2d``): training mode for the loss must not
    update its running statistics."""
    torch.manual_seed(0)
    detector = FrozenDetector(torchvision_parts(model="ssdlite320_mobilenet_v3_large"), name="ssdlite")
    before = _snapshot(detector.model)
    x = normalize(torch.rand(2, 3, 96, 128)).requires_grad_(True)
    mask = torch.zeros(2, 96, 128, dtype=torch.bool)
    mask[1, 80:, :] = True  # the second image is padded: its region is 80 x 128
    boxes = torch.tensor([[0.5, 0.5, 0.4, 0.6]])
    targets = [{"boxes": boxes, "labels": torch.tensor([1])} for _ in range(2)]
    total, terms, indices = detector.detection_loss(detector.loss_outputs(x, mask), targets)
    assert set(terms) == {"bbox_regression", "classification"} and torch.isfinite(total)
    assert all(len(q) == 0 for q, _ in indices)  # no set matching
    total.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not x.grad[1, :, 80:].any()  # padding is no part of the image torchvision sees
    after = detector.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "a batch-norm statistic moved"
    assert not any(m.training for m in detector.modules())


@pytest.mark.parametrize(
    ("version", "extra", "says"),
    [
        ("4th", (), "needs decoder features for its head"),
        ("level-up", (), "is not a facebookresearch/detr DETR"),  # level-up's default transformer-aware
        ("level-up", ("generator.name=subpixel",), "box-level groups"),
    ],
)
def test_what_a_torchvision_detector_cannot_do_is_refused_before_training(
    registries, random_checkpoint, tmp_path, version, extra, says
):
    if extra:  # people of both groups in one image, each box holding its person's group
        extra += (f"data.root={write_mixed(tmp_path / 'mixed', MixedSpec(seed=1, images=12)) / 'coco'}",)
    cfg = _config(registries, random_checkpoint, *extra, version=version)
    trainer = Trainer(cfg, registries, tmp_path / "run")
    with pytest.raises(ConfigError, match=says):
        trainer.setup()
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())
