"""``faapkit.evaluate.command.flow.run_eval`` with a fake host: the order of its refusals and what it
asks the host for, torch-free and without a dataset."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from faapkit.errors import ConfigError, FaapError
from faapkit.evaluate.command import run_eval
from faapkit.evaluate.requests import EvalCommand, EvalOutcome


class FakeHost:
    """A :class:`faapkit.evaluate.command.host.Host` that records what it was asked."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.asked: list[str] = []

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

    def evaluation_written(self, run_dir: Path, path: Path) -> None:
        self.asked.append(f"written {path}")


@pytest.fixture
def seed_set(tmp_path, monkeypatch):
    """A seed set's folder (its seeds.json, as faap train --seeds writes it) whose seeds' states
    are what the test sets in the returned list (read: 'seed states' in it)."""
    from faapkit.evaluate.command import flow
    from faapkit.train.seeds import SeedSet, prepare

    parent = tmp_path / "set"
    prepare(parent, SeedSet("level-up", (0, 1)), resume=False)
    states: list[tuple[int, Path, str]] = []
    asked: list[str] = []

    def seed_states(path: Path) -> list[tuple[int, Path, str]]:
        asked.append("seed states")
        return states

    monkeypatch.setattr(flow, "seed_states", seed_states)
    return parent, states, asked


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


def test_a_seed_set_refuses_out_before_reading_its_seeds(seed_set):
    parent, _, asked = seed_set
    with pytest.raises(ConfigError, match="is a seed set: each seed's metrics go to its own run folder; drop --out"):
        run_eval(EvalCommand(target=parent, out=parent / "m.json", force=True), FakeHost())
    assert "seed states" not in asked


def test_a_seed_set_with_unfinished_seeds_is_refused_naming_them(seed_set):
    parent, states, _ = seed_set
    states += [(0, parent / "seed-0", "done"), (1, parent / "seed-1", "new")]
    with pytest.raises(FaapError, match=r"seed 1 \(new\) not trained to the end; continue with faap train --resume"):
        run_eval(EvalCommand(target=parent), FakeHost())
