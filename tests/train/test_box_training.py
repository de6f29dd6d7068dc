"""Training on box-level groups (each person's box holds the attribute): `level-up` trains on the
mixed benchmark end to end and validates with box-level scoring; the versions that take one group
per image refuse such data before training, in one line naming the version."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from faapkit.config import resolve_config
from faapkit.data.synth_mixed import MixedSpec, write_mixed
from faapkit.errors import ConfigError
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

REG = Registries.from_plugin_manager(make_plugin_manager())
FAST = ["train.batch_size=4", "train.epochs=2", "train.steps_per_epoch=2", "train.val_every=1"]
ONE_GROUP_PER_IMAGE = sorted(v for v in REG.versions if "box" not in REG.versions.get(v).group_levels)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    return write_mixed(tmp_path_factory.mktemp("mixed") / "m", MixedSpec(seed=1, images=12)) / "coco"


def test_which_versions_train_on_box_level_groups():
    assert [v for v in REG.versions if v not in ONE_GROUP_PER_IMAGE] == ["level-up"]
    assert {"1st", "2nd", "3rd", "4th", "7th"} <= set(ONE_GROUP_PER_IMAGE)


def test_level_up_trains_on_box_level_groups(mixed, tmp_path):
    extra = ["loss.advantaged_weight=0.5", "loss.keep_weight=1.0", "data.disadvantaged_share=0.5"]
    cfg = resolve_config(REG, version="level-up", overrides=[f"data.root={mixed}", *FAST, *extra])
    trainer = Trainer(cfg, REG, tmp_path / "run")
    trainer.setup()
    assert trainer.data.group_level == "box" and trainer.validator is not None
    g0 = {k: v.clone() for k, v in trainer.generator.state_dict().items() if v.is_floating_point()}
    summary = trainer.fit()
    assert summary["global_step"] == 4 and summary["epochs_done"] == 2
    log = trainer.run.read_log()
    for row in log:
        for key in ("total", "loss_det_dis", "loss_det_adv", "keep_adv"):
            assert math.isfinite(row[key]), (key, row)
        val = row["val"]
        assert set(val["AP"]) == {"female", "male"} and math.isfinite(val["gap_AP"])
    # validation scores each group on the images holding its boxes (mixed ones in both)
    held = trainer.validator.group_images
    assert set(held["female"]) & set(held["male"])
    state = trainer.generator.state_dict()
    assert any(not torch.equal(v, state[k]) for k, v in g0.items()), "generator did not change"
    # best.pt exactly when an epoch narrowed the val gap within the guard (four steps may not)
    selection = trainer.run.read_selection()
    base = abs(selection["val_baseline"]["gap_AP"])
    assert set(selection["eligible_epochs"]) <= {r["epoch"] for r in log if abs(r["val"]["gap_AP"]) < base}
    chose = selection["epoch"] is not None
    assert (trainer.run.path / "checkpoints" / "best.pt").is_file() == chose == bool(selection["eligible_epochs"])
    assert trainer.run.manifest().dataset.group_level == "box"  # what "auto" resolved to


@pytest.mark.parametrize("version", ONE_GROUP_PER_IMAGE)
def test_one_group_per_image_versions_refuse_box_level_groups(version, mixed, tmp_path):
    cfg = resolve_config(REG, version=version, overrides=[f"data.root={mixed}", *FAST])
    trainer = Trainer(cfg, REG, tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        trainer.setup()
    line = err.value.one_line()
    assert "\n" not in line
    assert f"version '{version}' takes one group per image" in line
    assert "groups on boxes" in line and "versions that train on them: level-up" in line
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


def _fewer_female_only_images(coco: Path, out: Path, keep: int) -> Path:
    """A copy of ``coco`` whose train split keeps ``keep`` of its female-only images (so the
    advantaged group holds more images than the disadvantaged one only through mixed images)."""
    shutil.copytree(coco, out)
    path = out / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    genders: dict[int, set[str]] = {}
    for a in data["annotations"]:
        genders.setdefault(a["image_id"], set()).add(a["attributes"]["gender"])
    female_only = [i for i, g in genders.items() if g == {"female"}]
    dropped = set(female_only[keep:])
    data["images"] = [im for im in data["images"] if im["id"] not in dropped]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] not in dropped]
    path.write_text(json.dumps(data))
    return out


def test_default_epoch_counts_a_mixed_image_once(mixed, tmp_path):
    root = _fewer_female_only_images(mixed, tmp_path / "coco", keep=1)
    cfg = resolve_config(REG, version="level-up", overrides=[f"data.root={root}", "train.batch_size=2"])
    trainer = Trainer(cfg, REG, tmp_path / "run")
    trainer.setup()
    pools = trainer.dataset.record_groups()
    held = trainer.data.group_counts()
    # female pool: the female-only and mixed images; male pool: the male-only ones
    assert pools.count(0) == 1 + sum(1 for r in trainer.data.records if len(r.held) > 1)
    assert held["male"] > max(pools.count(0), pools.count(1))  # counting held images would overdraw
    assert trainer.steps_per_epoch == 2 * max(pools.count(0), pools.count(1)) // 2
