"""Config files are read as written or refused by name, and ``faap config show``
writes TOML that reads back to the same configuration. In-process ``faap``."""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faapkit import hookimpl
from faapkit.config import resolve_config
from faapkit.errors import ConfigError
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.plugins.specs import VersionSpec
from tests.conftest import faap_in_process, one_error

BOM = b"\xef\xbb\xbf"
CONFLICTS = {
    "--version vs the file": (["--version", "4th"], 'version = "1st"\n', "--version names version '4th'"),
    "--set vs the file": (["--set", "version='3rd'"], 'version = "1st"\n', "--set version names version '3rd'"),
    "--version vs --set": (["--version", "4th", "--set", "version='1st'"], "", "--set version names '1st'"),
}


@pytest.mark.parametrize("command", [["config", "show"], ["train", "--max-steps", "1"]])
@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_two_versions_named_is_an_error_naming_both(capsys, tmp_path, case, command):
    """``faap train --version 4th --config F`` with ``version = "1st"`` in F trained the 4th."""
    args, text, says = CONFLICTS[case]
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    out = tmp_path / "run"
    extra = ["--out", str(out)] if command[0] == "train" else []
    code, _, err = faap_in_process(capsys, *command, *args, "--config", str(cfg), *extra)
    one_error(err, 2, code, says)
    assert not out.exists()


def test_an_alias_of_the_same_version_is_no_conflict_and_a_resumed_run_s_version_counts(tmp_path):
    class Aliased:
        @hookimpl
        def faap_register_versions(self, register):
            register(
                VersionSpec(
                    name="4th-short",
                    aliases=("4s",),
                    loss="infonce_anchor_aligned",
                    head="stabilized_mlp",
                    schedules={"epsilon": "constant", "beta": "linear"},
                )
            )

    reg = Registries.from_plugin_manager(make_plugin_manager(extra_plugins=[("aliased", Aliased())]))
    cfg = tmp_path / "c.toml"
    cfg.write_text('version = "4th-short"\n')
    assert resolve_config(reg, version="4s", file=cfg).version == "4th-short"
    with pytest.raises(ConfigError, match=r"the run R names version '4th' but the config file .* names '4th-short'"):
        resolve_config(reg, version="4th", file=cfg, version_from="the run R")


BOM_FILES = {
    "c.toml": "[train]\nlr = 0.001\n",
    "c.yaml": "train:\n  lr: 0.001\n",
    "c.json": '{"train": {"lr": 0.001}}',
}


@pytest.mark.parametrize("name", sorted(BOM_FILES))
def test_a_config_file_with_a_byte_order_mark_is_read_as_written(capsys, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BOM + BOM_FILES[name].encode())
    code, out, err = faap_in_process(capsys, "config", "show", "--config", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["train"]["lr"] == 0.001


YAML11 = {
    "on as a group": ("data:\n  advantaged: on\n", "line 2: 'data.advantaged' is on, a boolean in YAML 1.1"),
    "No as a group": ("data:\n  disadvantaged: No\n", "line 2: 'data.disadvantaged' is No"),
    "yes as a key": ("data:\n  group_weights:\n    yes: 1.0\n", "line 3: the key 'data.group_weights.yes' is yes"),
    "off in a list": ("train:\n  loggers: [csv, off]\n", "line 2: 'train.loggers[1]' is off"),
}


@pytest.mark.parametrize("case", sorted(YAML11))
def test_yaml_1_1_booleans_are_refused_naming_key_file_and_the_quotes(capsys, tmp_path, case):
    """``advantaged: on`` failed as "Input should be a valid string (got true)" naming nothing."""
    text, says = YAML11[case]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    code, _, err = faap_in_process(capsys, "config", "show", "--config", str(path))
    one_error(err, 2, code, f"config file {path}, {says}")
    assert "quote it" in err


def test_yaml_true_and_false_stay_booleans(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  amp: false\n  compile: True\n")
    code, out, err = faap_in_process(capsys, "config", "show", "--config", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["train"]["amp"] is False and json.loads(out)["train"]["compile"] is True


def test_config_show_quotes_a_group_weight_key_with_spaces(capsys, tmp_path):
    """A key such as ``skin 6-10`` is quoted, so ``skin 6-10 = 1.0`` is written as TOML that parses."""
    path = tmp_path / "c.json"
    weights = {"skin 6-10": 1.0, "skin 1-5": 2.0}
    path.write_text(
        json.dumps({"data": {"disadvantaged": "skin 6-10", "advantaged": "skin 1-5", "group_weights": weights}})
    )
    code, out, err = faap_in_process(capsys, "config", "show", "--config", str(path))
    assert code == 0, err
    assert '"skin 6-10" = 1.0' in out and tomllib.loads(out)["data"]["group_weights"] == weights
    assert "# data.root = (unset)" in out  # what TOML cannot hold (null) is still shown


def _without_none(node: object) -> object:
    if isinstance(node, dict):
        return {k: _without_none(v) for k, v in node.items() if v is not None}
    return node


groups = st.text(max_size=12)
weights = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)


@st.composite
def configs(draw: st.DrawFn) -> dict:
    """A config the 4th accepts, with arbitrary group names (any text a dataset attribute may
    hold) and arbitrary finite loss weights."""
    pair = draw(st.lists(groups, min_size=2, max_size=2, unique=True))
    table = draw(st.dictionaries(groups, weights, max_size=4))
    table.update({pair[0]: draw(positive), pair[1]: draw(positive)})
    data = {"split_by": draw(groups), "disadvantaged": pair[0], "advantaged": pair[1], "group_weights": table}
    loss = {"temperature": draw(positive), "lambda_align": draw(weights), "lambda_wass": draw(weights)}
    return {"version": "4th", "data": data, "loss": loss}


REG = Registries.from_plugin_manager(make_plugin_manager())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configs())
def test_config_show_parses_and_round_trips(capsys, config):
    """What ``faap config show`` prints is TOML that tomllib reads to the resolved configuration,
    and that, given back as a config file, resolves to the same configuration."""
    with tempfile.TemporaryDirectory() as tmp:
        first = Path(tmp) / "in.json"
        first.write_text(json.dumps(config))
        code, text, err = faap_in_process(capsys, "config", "show", "--config", str(first))
        assert code == 0, err
        resolved = resolve_config(REG, file=first).model_dump(mode="json")
        assert tomllib.loads(text) == _without_none(resolved)
        again = Path(tmp) / "shown.toml"
        again.write_text(text, encoding="utf-8")
        assert resolve_config(REG, file=again).model_dump(mode="json") == resolved
