"""Refusals the hostile pass found weak: each names what is wrong, before any work."""

from __future__ import annotations

import os
import stat

import pytest

from faapkit.config import read_config_file
from faapkit.errors import ConfigError
from faapkit.io import atomic_write_text
from faapkit.plugins import make_plugin_manager
from tests.conftest import faap_in_process


def test_a_misspelled_disable_plugin_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r"--disable-plugin 'v4thh': no plugin has that name; known: .*v4th"):
        make_plugin_manager(blocked=["v4thh"])
    assert not make_plugin_manager(blocked=["v4th"]).has_plugin("v4th")


def test_a_config_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"is a folder: name the TOML, YAML or JSON file in it"):
        read_config_file(tmp_path)


def test_results_are_written_with_the_users_umask_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644


def test_resuming_a_seed_set_without_its_manifest_points_at_a_seed(capsys, tmp_path):
    (tmp_path / "set" / "seed-0").mkdir(parents=True)
    (tmp_path / "set" / "seed-0" / "run.json").write_text("{}")
    code, _, err = faap_in_process(capsys, "train", "--resume", str(tmp_path / "set"))
    assert code != 0
    assert "holds seed runs (seed-0) but no seeds.json" in err and "--resume " + str(tmp_path / "set" / "seed-0") in err
    assert "Traceback" not in err
