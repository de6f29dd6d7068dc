"""``faapkit.evaluate.command.run_eval`` with a fake host: the order of its refusals and what it
asks the host for, torch-free and without a dataset."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from faapkit.errors import ConfigError, FaapError
from faapkit.evaluate.command import run_eval
from faapkit.evaluate.request import EvalCommand, EvalOutcome


class FakeHost:
    """A :class:`faapkit.evaluate.host.Host` that records what it was asked."""

    def __init__(self, seed_set: bool = False, states: list[tuple[int, Path, str]] | None = None) -> None:
        self.said: list[str] = []
        self.asked: list[str] = []
        self.seed_set, self.states = seed_set, states or []

    def info(self, message: str) -> None:
        self.said.append(message)

    def warn(self, message: str) -> None:
        self.said.append(message)

    def registries(self):
        self.asked.append("registries")
        return object()

    def progress(self, enabled: bool):
        return contextlib.nullcontext(lambda phase, done, total: None)

    def launch(self, nproc: int) -> None:
        self.asked.append(f"launch {nproc}")

    def not_metrics(self, path: Path) -> str | None:
        return "is no faap eval metrics file"

    def is_seed_set(self, path: Path) -> bool:
        return self.seed_set

    def seed_states(self, path: Path) -> list[tuple[int, Path, str]]:
        self.asked.append("seed states")
        return self.states


def test_impossible_options_are_refused_first():
    with pytest.raises(ConfigError, match=r"--bootstrap must be 0 \(no CIs\) or at least 10, got 3"):
        run_eval(EvalCommand(bootstrap=3, nproc=2), FakeHost())


def test_a_rescore_refuses_what_needs_inference_before_reading_its_file(tmp_path):
    cmd = EvalCommand(rescore=tmp_path / "missing.json", epoch=3)
    with pytest.raises(ConfigError, match="--rescore scores the saved detections again; --epoch needs a new"):
        run_eval(cmd, FakeHost())


def test_several_processes_relaunch_without_loading_the_plugins():
    host = FakeHost()
    assert run_eval(EvalCommand(nproc=2), host) == EvalOutcome()
    assert host.asked == ["launch 2"]


def test_a_seed_set_refuses_out_before_reading_its_seeds(tmp_path):
    host = FakeHost(seed_set=True)
    with pytest.raises(ConfigError, match="is a seed set: each seed's metrics go to its own run folder; drop --out"):
        run_eval(EvalCommand(target=tmp_path, out=tmp_path / "m.json", force=True), host)
    assert "seed states" not in host.asked


def test_a_seed_set_with_unfinished_seeds_is_refused_naming_them(tmp_path):
    host = FakeHost(seed_set=True, states=[(0, tmp_path / "seed-0", "done"), (1, tmp_path / "seed-1", "new")])
    with pytest.raises(FaapError, match=r"seed 1 \(new\) not trained to the end; continue with faap train --resume"):
        run_eval(EvalCommand(target=tmp_path), host)
