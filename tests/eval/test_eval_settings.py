"""``faap eval``'s settings (:mod:`faapkit.evaluate.command.settings`): the input size layered over the
detector's, and the ``[data]`` keys of ``--set`` and ``--config`` that eval reads."""

from __future__ import annotations

import pytest

from faapkit.errors import ConfigError
from faapkit.evaluate.command import settings
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries

REG = Registries.from_plugin_manager(make_plugin_manager())


class Said:
    """Notes kept, to be read back."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def info(self, message: str) -> None:
        self.said.append(message)

    def warn(self, message: str) -> None:
        self.said.append(message)


def test_eval_sizes_layer_over_the_detectors():
    r50 = REG.detectors.get("detr-r50")
    assert settings.resolve_sizes(r50, {}, []) == {
        "min_size": 800,
        "max_size": 1333,
        "source": "detector 'detr-r50'",
    }
    stored = {"min_size": 128, "max_size": 213, "root": None}
    assert settings.resolve_sizes(r50, stored, [])["source"] == "the run's config"
    got = settings.resolve_sizes(r50, stored, [("--config c.toml", {"max_size": 999}), ("--set", {"min_size": 600})])
    assert got == {
        "min_size": 600,
        "max_size": 999,
        "source": "min_size: --set; max_size: --config c.toml",
    }
    with pytest.raises(ConfigError, match=r"invalid value for 'data.min_size'.*\(--set\)"):
        settings.resolve_sizes(r50, {}, [("--set", {"min_size": 0})])


def test_eval_reads_the_sizes_of_set_and_config(tmp_path):
    notes = Said()
    assert settings.set_layers(["data.min_size=800", "eval.seed=3"]) == ({"seed": 3}, {"min_size": 800})
    with pytest.raises(
        ConfigError, match="faap eval --set takes eval.<key>=value, data.min_size or data.max_size or data.group_level"
    ):
        settings.set_layers(["data.root='x'"])
    cfg = tmp_path / "c.toml"
    cfg.write_text("[eval]\nseed = 4\n[data]\nmin_size = 800\nmax_size = 1333\nroot = 'x'\n")
    assert settings.file_layers(cfg, notes) == ({"seed": 4}, {"min_size": 800, "max_size": 1333})
    assert "not data.root" in notes.said[-1]  # a [data] key eval does not read is named
    cfg.write_text("[data]\nmin_sise = 800\n")
    with pytest.raises(ConfigError, match="unknown key 'data.min_sise'"):
        settings.file_layers(cfg, notes)


def test_the_group_level_is_an_eval_setting_of_data_too(tmp_path):
    """A dataset whose images and boxes both carry the attribute is evaluated without a run:
    ``--set data.group_level=box`` (or ``[data]`` of ``--config``) chooses, checked by name."""
    from faapkit.evaluate.command.host import Silent
    from faapkit.evaluate.command.settings import file_layers, group_level_of, set_layers

    _, data = set_layers(["data.group_level=box"])
    assert group_level_of([("--set", data)]) == "box"
    config = tmp_path / "c.toml"
    config.write_text('[data]\ngroup_level = "image"\n')
    _, from_file = file_layers(config, Silent())
    assert group_level_of([("--config", from_file), ("--set", data)]) == "box"
    assert group_level_of([("--config", from_file)]) == "image"
    assert group_level_of([]) is None
    with pytest.raises(ConfigError, match=r"data.group_level.*\(--set\)"):
        group_level_of([("--set", set_layers(["data.group_level=pixel"])[1])])
