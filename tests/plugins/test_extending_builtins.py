"""Building on the built-ins through ``faapkit.plugin_api``: a version that ``extends`` another
(parts and defaults inherited, its own defaults deep-merged on top), and the level-up-plus-a-term
example (``examples/faap-level-up-plus-plugin``) trained a few tiny steps."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

from faapkit.config import resolve_config
from faapkit.errors import ConfigError
from faapkit.plugin_api import VersionSpec, hookimpl
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "faap-level-up-plus-plugin"
TINY = ["train.steps_per_epoch=2", "train.epochs=1", "train.batch_size=4", "data.limit_images=16"]
TINY += ["train.val_every=0", "generator.name=subpixel", "generator.channels=8"]  # the loss is the point


def _versions(*specs: VersionSpec) -> Registries:
    class P:
        @hookimpl
        def faap_register_versions(self, register):
            for spec in specs:
                register(spec)

    return Registries.from_plugin_manager(make_plugin_manager(extra_plugins=[("testplugin", P())]))


def test_an_extending_version_takes_its_base_s_parts_and_merges_its_defaults():
    reg = _versions(
        VersionSpec(name="lu-wide", extends="level-up", defaults={"train": {"epochs": 3}, "data": {"x": 1}}),
        VersionSpec(name="lu-wider", extends="lu-wide", generator="unet", description="a chain"),
    )
    base, wide, wider = (reg.versions.get(n) for n in ("level-up", "lu-wide", "lu-wider"))
    assert (wide.loss, wide.head, wide.generator) == (base.loss, base.head, base.generator)
    assert wide.schedules == base.schedules and wide.group_levels == base.group_levels == ("image", "box")
    assert wide.defaults["train"] == {**base.defaults["train"], "epochs": 3}
    assert wide.defaults["data"] == {**base.defaults["data"], "x": 1}
    assert wide.defaults["schedules"] == base.defaults["schedules"]
    assert wider.generator == "unet" and wider.defaults == wide.defaults and wider.loss == base.loss


def test_an_unknown_base_a_cycle_and_a_version_without_parts_are_refused_naming_them():
    with pytest.raises(ConfigError) as err:
        _versions(VersionSpec(name="mine", extends="level-upp"))
    assert err.value.one_line() == ("version 'mine' (plugin 'testplugin') extends an unknown version 'level-upp'")
    with pytest.raises(ConfigError, match="extends itself through a -> b -> a"):
        _versions(VersionSpec(name="a", extends="b"), VersionSpec(name="b", extends="a"))
    with pytest.raises(ConfigError, match="version 'bare' gives no loss, head, schedules"):
        VersionSpec(name="bare")


def test_level_up_plus_a_term_extends_level_up_and_trains(monkeypatch, tmp_path, synth_root):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    pm = make_plugin_manager()
    pm.register(importlib.import_module("faap_level_up_plus"), name="level_up_plus")
    reg = Registries.from_plugin_manager(pm)
    base, smooth = reg.versions.get("level-up"), reg.versions.get("level-up-smooth")
    assert (smooth.generator, smooth.group_levels) == (base.generator, base.group_levels)
    assert smooth.loss == "level_up_smooth"
    cfg = resolve_config(reg, version="level-up-smooth", overrides=[*TINY, "loss.tv_weight=2.0"])
    level_up = resolve_config(reg, version="level-up", overrides=TINY)
    assert cfg.train.lr == level_up.train.lr and cfg.schedules == level_up.schedules
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    assert trainer.fit()["global_step"] == 2
    row = trainer.run.read_log()[-1]
    assert math.isfinite(row["tv"]) and row["tv"] >= 0
    # level-up's terms are kept and the new one is added on top (keep_weight is 0 by default)
    assert row["total"] == pytest.approx(row["loss_det_dis"] + 2.0 * row["tv"], rel=1e-4)
