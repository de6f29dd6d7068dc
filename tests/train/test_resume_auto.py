"""``faap train --resume auto --out RUN`` (``faapkit.train.start``): continue the run RUN holds, or
start one in RUN when it holds none; a folder holding something else, or a run of another config,
is refused before any work. What a requeued SLURM job relies on to continue by itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faapkit.errors import ConfigError, FaapError
from faapkit.train.seeds import SeedSet, prepare
from faapkit.train.start import TrainRequest, plan_submission, resolve_auto, seed_set_asked, start_run
from tests.conftest import faap_in_process, one_error, one_step_4th_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[str]]:
    """A one-step run and the overrides that asked for it (read back from its run.json)."""
    run = one_step_4th_run(tmp_path_factory.mktemp("auto"))
    stored = json.loads((run / "run.json").read_text())["config"]
    overrides = [f"data.root='{stored['data']['root']}'", "train.batch_size=4", "train.epochs=1"]
    overrides += ["train.steps_per_epoch=1", "train.val_every=0", "generator.base_channels=8"]
    return run, overrides


def test_a_missing_or_empty_folder_starts_a_fresh_run(tmp_path, registries):
    resolved, run, resuming = resolve_auto(
        registries, TrainRequest(version="4th", overrides=("train.epochs=2",), out=tmp_path / "new")
    )
    assert (run, resuming, resolved.train.epochs) == (tmp_path / "new", False, 2)
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)  # a job stopped before run.json: nothing written
    assert resolve_auto(registries, TrainRequest(version="4th", out=tmp_path / "empty"))[2] is False
    assert not (tmp_path / "new").exists()  # deciding writes nothing


def test_a_folder_holding_a_run_continues_it(registries, trained):
    run, overrides = trained
    resolved, folder, resuming = resolve_auto(
        registries, TrainRequest(version="4th", overrides=tuple(overrides), out=run)
    )
    assert (folder, resuming, resolved.version) == (run, True, "4th")
    # the keys --resume may change (device, max_steps, ...) may differ here too
    assert (
        resolve_auto(registries, TrainRequest(version="4th", overrides=(*overrides, "train.device='cpu'"), out=run))[2]
        is True
    )


@pytest.mark.parametrize(
    ("version", "extra", "says"),
    [
        ("4th", ["train.lr=0.5"], "the config differs in train.lr"),
        ("4th", ["train.epochs=3"], "the config differs in train.epochs"),
        ("3rd", [], "it is a '4th' run, not '3rd'"),
    ],
)
def test_a_run_of_another_config_is_refused(registries, trained, version, extra, says):
    run, overrides = trained
    with pytest.raises(ConfigError, match=says):
        resolve_auto(registries, TrainRequest(version=version, overrides=(*overrides, *extra), out=run))


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, registries):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "ideas.txt").write_text("mine\n")
    with pytest.raises(FaapError, match=r"not a faapkit run folder \(no run.json, but it holds ideas.txt\)"):
        resolve_auto(registries, TrainRequest(version="4th", out=tmp_path / "notes"))
    (tmp_path / "file").write_text("")
    with pytest.raises(FaapError, match="is a file"):
        resolve_auto(registries, TrainRequest(version="4th", out=tmp_path / "file"))
    assert (tmp_path / "notes" / "ideas.txt").read_text() == "mine\n"


def test_auto_needs_out_and_is_refused_in_one_line(capsys, registries):
    with pytest.raises(ConfigError, match="--resume auto needs --out RUN"):
        start_run(registries, TrainRequest(version="4th", resume="auto"))
    code, _, err = faap_in_process(capsys, "train", "--resume", "auto", "--max-steps", "1")
    one_error(err, 2, code, "--resume auto needs --out RUN")


def test_seed_sets_with_auto(tmp_path):
    """With --seeds, auto is the --seeds command itself (re-run, it continues its set); without,
    a seed set in --out is continued as --resume PARENT would."""
    assert seed_set_asked(TrainRequest(out=tmp_path / "set", resume="auto", seeds="0-1")) == (True, None)
    with pytest.raises(ConfigError, match="--resume auto needs --out PARENT"):
        seed_set_asked(TrainRequest(resume="auto", seeds="0-1"))
    assert seed_set_asked(TrainRequest(out=tmp_path / "set", resume="auto")) == (False, None)
    prepare(tmp_path / "set", SeedSet("4th", (0, 1)), resume=False)
    assert seed_set_asked(TrainRequest(out=tmp_path / "set", resume="auto")) == (True, tmp_path / "set")
    assert seed_set_asked(TrainRequest(resume=str(tmp_path / "set"))) == (True, tmp_path / "set")
    with pytest.raises(ConfigError, match="--jobs runs several seeds at once"):
        seed_set_asked(TrainRequest(out=tmp_path / "one"), jobs=2)


def test_a_submission_is_checked_before_it_is_queued(tmp_path, registries, trained):
    run, overrides = trained
    with pytest.raises(ConfigError, match="submit one job per seed"):
        plan_submission(registries, TrainRequest(out=tmp_path / "x", seeds="0-2"))
    with pytest.raises(FaapError, match="already holds a run; use --resume auto"):
        plan_submission(registries, TrainRequest(version="4th", overrides=tuple(overrides), out=run))
    assert plan_submission(
        registries, TrainRequest(version="4th", overrides=tuple(overrides), out=run, resume="auto")
    ) == (run.absolute(), True)
    assert plan_submission(registries, TrainRequest(resume=str(run))) == (run.absolute(), False)
    with pytest.raises(ConfigError, match="the config differs in train.lr"):
        plan_submission(
            registries, TrainRequest(version="4th", overrides=(*overrides, "train.lr=0.5"), out=run, resume="auto")
        )
    fresh = plan_submission(registries, TrainRequest(version="4th", out=tmp_path / "fresh"))
    assert fresh == ((tmp_path / "fresh").absolute(), True) and not (tmp_path / "fresh").exists()


def test_a_run_killed_while_writing_its_first_file_is_started(tmp_path, registries):
    """A job killed (SIGKILL after SLURM's grace time) while writing run.json leaves only the
    temporary file a fresh start drops: the requeued job's --resume auto starts the run there."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".run.json.k3x9.tmp").write_text('{"format": "faapkit.ru')
    (run / "checkpoints" / ".epoch_0000.pt.q1.tmp").write_bytes(b"\0")
    assert resolve_auto(registries, TrainRequest(version="4th", out=run))[1:] == (run, False)
    (run / "checkpoints" / "notes.tmp").write_text("mine\n")  # not a partial write: someone's file
    with pytest.raises(FaapError, match=r"--out .* is not a faapkit run folder .*holds checkpoints/notes.tmp"):
        resolve_auto(registries, TrainRequest(version="4th", out=run))


def test_a_submission_names_its_run_folder_and_trains_one_run(tmp_path, registries):
    """--launcher slurm refuses what the job's `--resume auto` would refuse or misread: no --out
    (it would submit a fresh runs/<version>-<time>), and a seed set (one job trains one run)."""
    with pytest.raises(ConfigError, match="--resume auto needs --out RUN"):
        plan_submission(registries, TrainRequest(version="4th", resume="auto"))
    prepare(tmp_path / "set", SeedSet("4th", (0, 1)), resume=False)
    for out, resume in ((None, str(tmp_path / "set")), (tmp_path / "set", "auto"), (tmp_path / "set", None)):
        with pytest.raises(ConfigError, match=r"trains one run and .*set is a seed set: submit one job per seed"):
            plan_submission(registries, TrainRequest(version="4th", out=out, resume=resume))
