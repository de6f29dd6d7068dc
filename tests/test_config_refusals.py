"""Configs that cannot mean anything are configuration errors naming the key, before any work;
each config format is read by its own parser."""

from __future__ import annotations

import pytest

from faapkit.config import resolve_config
from faapkit.errors import ConfigError

# --set override -> text the one-line error must contain
REFUSED = {
    "infinite lr": ("train.lr=inf", "'train.lr': inf is not a finite number"),
    "nan epsilon": ("schedules.epsilon.peak=nan", "'schedules.epsilon.peak': nan is not a finite number"),
    "empty train_scales": ("data.train_scales=[]", "'data.train_scales'"),
    "zero train scale": ("data.train_scales=[0]", "'data.train_scales.0'"),
    "misspelt train_scales sentinel": ("data.train_scales='evaluation'", "'data.train_scales'"),
    "all-zero group_weights": ("data.group_weights={female=0.0,male=0.0}", "data.group_weights must give both"),
    "negative group weight": ("data.group_weights={female=-1.0,male=1.0}", "'data.group_weights.female'"),
    "advantaged == disadvantaged": ("data.advantaged='female'", "are both 'female'"),
    "unknown device": ("train.device='banana'", "'train.device': expected auto, cpu, cuda"),
    "quoted number": ("train.lr='1e-4'", "it was read as a string: write the number without quotes"),
    "section given a number": ("data=5", "'data' must be a table of settings, got 5 (--set)"),
    "schedule given a number": ("schedules.epsilon=3", "'schedules.epsilon' must be a table"),
    "unknown benchmark": ("data.benchmark='v9'", "'data.benchmark': unknown embedded benchmark 'v9' (known: v1, v2"),
}


def test_data_benchmark_with_data_root_is_refused_naming_both(registries):
    """One names the embedded benchmark, the other another dataset: which one a run used would be a guess."""
    with pytest.raises(ConfigError) as err:
        resolve_config(registries, version="4th", overrides=["data.benchmark=v3", "data.root='/data/faap'"])
    line = err.value.one_line()
    assert "data.benchmark ('v3')" in line and "data.root (/data/faap)" in line and err.value.exit_code == 2


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_impossible_setting_is_a_config_error(case, registries):
    override, message = REFUSED[case]
    with pytest.raises(ConfigError) as err:
        resolve_config(registries, version="4th", overrides=[override])
    assert message in err.value.one_line() and err.value.exit_code == 2


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.yaml", "train:\n  lr: 1e-4\n  epochs: 3\n"),
        ("c.yml", "train: {lr: 1.0e-4, epochs: 3}\n"),
        ("c.json", '{"train": {"lr": 0.0001, "epochs": 3}}'),
        ("c.toml", "[train]\nlr = 1e-4\nepochs = 3\n"),
    ],
)
def test_each_format_has_its_reader_and_yaml_exponents_are_numbers(name, text, registries, tmp_path):
    path = tmp_path / name
    path.write_text(text)
    cfg = resolve_config(registries, version="4th", file=path)
    assert cfg.train.lr == pytest.approx(1e-4) and cfg.train.epochs == 3


def test_unknown_config_format_is_refused(registries, tmp_path):
    path = tmp_path / "c.ini"
    path.write_text("[train]\nlr = 1e-4\n")
    with pytest.raises(ConfigError, match="unknown format '.ini'"):
        resolve_config(registries, version="4th", file=path)
    bad = tmp_path / "c.json"
    bad.write_text("train:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="cannot parse config file .* as JSON"):
        resolve_config(registries, version="4th", file=bad)


def test_relative_paths_are_stored_absolute(registries, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = resolve_config(registries, version="4th", overrides=["data.root='data'", "detector.checkpoint='d.pth'"])
    assert cfg.data.root == tmp_path / "data" and cfg.detector.checkpoint == tmp_path / "d.pth"
