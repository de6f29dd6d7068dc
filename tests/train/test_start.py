"""Where ``faap train`` starts (``faapkit.train.start``) and how a failed ``--nproc`` rank is
reported (``faapkit.distributed.launch``), without training."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from faapkit.distributed import launch
from faapkit.errors import ConfigError, FaapError
from faapkit.train.start import TrainRequest, check_counts, plan_seed_set, resolve_run, with_shortcuts


def test_shortcut_options_follow_the_set_overrides():
    shortcuts = {"train.epochs": 3, "train.max_steps": None, "train.device": "cpu"}
    assert with_shortcuts(["a.b=1"], shortcuts) == ["a.b=1", "train.epochs=3", "train.device='cpu'"]


@pytest.mark.parametrize(("jobs", "nproc", "says"), [(0, 1, "--jobs must be at least 1, got 0"), (1, 0, "--nproc")])
def test_process_counts_are_at_least_one(jobs, nproc, says):
    with pytest.raises(ConfigError, match=says):
        check_counts(jobs, nproc)


def test_resume_refusals_come_before_any_registry_is_read(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match="name different run folders"):
        resolve_run(None, TrainRequest(out=tmp_path / "other", resume=str(run)))  # type: ignore[arg-type]
    (run / "seed-0").mkdir(parents=True)
    (run / "seed-0" / "run.json").write_text("{}")
    with pytest.raises(FaapError, match=r"holds seed runs \(seed-0\) but no seeds.json"):
        resolve_run(None, TrainRequest(resume=str(run)))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="give no --seeds, --version, --config or --set"):
        plan_seed_set(None, TrainRequest(resume=str(run), seeds="0-1"), run)  # type: ignore[arg-type]


def _failed(**exitcodes: int) -> SimpleNamespace:
    failures = {int(r[1:]): SimpleNamespace(exitcode=c, timestamp=i) for i, (r, c) in enumerate(exitcodes.items())}
    return SimpleNamespace(failures=failures, get_first_failure=lambda: next(iter(failures.items())))


def test_the_rank_that_failed_by_itself_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv(launch.LAUNCH_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("RANK", "1")
    launch.leave_rank_error("error: rank one's problem", 2)
    errors = launch.rank_errors(tmp_path)
    assert errors == {1: (2, "error: rank one's problem")}
    found = launch._failure(_failed(r0=-15, r1=2), errors)  # rank 0 only stopped by a signal
    assert (found.code, found.line) == (2, "error: rank one's problem")
    assert launch._failure(_failed(r0=3), {0: (3, "error: own")}).line is None  # rank 0 printed its own
    silent = launch._failure(_failed(r0=-9), {})
    assert (silent.code, silent.line) == (1, "error: process 0 failed with status -9")
    assert launch.without_nproc(["train", "--nproc", "2", "--nproc=3", "-o", "x"]) == ["train", "-o", "x"]
