"""``faap train --seeds``: one run per seed under one parent, resumed seed by seed; ``faap eval``
of the parent evaluates every seed; ``faap compare`` aggregates them into one row."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from faapkit.errors import ConfigError, FaapError
from faapkit.train import seeds as seedset
from tests.conftest import run_here


def test_parse_seeds():
    assert seedset.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert seedset.parse_seeds("3") == [3]
    assert seedset.parse_seeds("0-2, 9") == [0, 1, 2, 9]
    for bad, says in (("4-0", "backwards"), ("1,1", "twice"), ("-1", "not a seed"), ("a", "not a seed"), ("", "not")):
        with pytest.raises(ConfigError, match=says):
            seedset.parse_seeds(bad)


def test_train_seed_in_set_overrides_is_refused():
    with pytest.raises(ConfigError, match="drop --set train.seed"):
        seedset.shared_overrides(["train.epochs=2", "train.seed=3"])


def test_prepare_refuses_another_set_and_a_used_folder(tmp_path):
    a = seedset.SeedSet("4th", (0, 1), None, ("train.epochs=1",))
    assert seedset.prepare(tmp_path / "s", a, resume=False) == a
    assert seedset.prepare(tmp_path / "s", a, resume=False) == a  # the same command again continues it
    with pytest.raises(FaapError, match="holds the seed set '4th' seeds 0,1"):
        seedset.prepare(tmp_path / "s", seedset.SeedSet("4th", (0, 1, 2)), resume=False)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(FaapError, match="not an empty folder"):
        seedset.prepare(tmp_path / "used", a, resume=False)
    with pytest.raises(FaapError, match="not a seed set"):
        seedset.prepare(tmp_path / "used", a, resume=True)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "seeds.json").write_text('{"schema": "faapkit.seeds/1", "seeds": [1, 1], "version": "4th"}')
    with pytest.raises(FaapError, match="bad/seeds.json is not a faapkit seed set"):
        seedset.read_seed_set(tmp_path / "bad")


def _tiny_args(root: Path) -> list[str]:
    sets = [f"data.root='{root}'", "train.batch_size=4", "train.epochs=1", "train.steps_per_epoch=1"]
    sets += ["generator.base_channels=8", "data.val_split=val", "train.val_every=1", "eval.bootstrap=50"]
    return [a for s in sets for a in ("--set", s)]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    from faapkit.data.synth import SynthSpec, write_synthetic

    base = tmp_path_factory.mktemp("seeds-data")
    return (
        write_synthetic(base / "s", SynthSpec(seed=2, splits=(("train", 4, 4), ("val", 3, 3), ("test", 4, 4)))) / "coco"
    )


def test_seed_set_trains_resumes_evaluates_and_compares(tmp_path, tiny_root):
    parent = tmp_path / "set"
    env = {"FAAP_CACHE_DIR": os.environ["FAAP_CACHE_DIR"]}
    # no validation: whether a one-step seed narrows the val gap (and so has a best.pt) is chance,
    # and a chosen and an unchosen seed are two configurations to compare, never one set
    code, _, err = run_here("train", "--version", "4th", "--seeds", "0-1", "--jobs", "2", "--out", str(parent),
                           *_tiny_args(tiny_root), "--set", "train.val_every=0", env=env)  # fmt: skip
    assert code == 0, err
    manifest = json.loads((parent / "seeds.json").read_text())
    assert manifest["seeds"] == [0, 1] and manifest["version"] == "4th"
    for s in (0, 1):
        run = json.loads((parent / f"seed-{s}" / "run.json").read_text())
        assert run["config"]["train"]["seed"] == s
        assert seedset.seed_state(parent / f"seed-{s}") == "done"
    # a set cut short: seed 1 lost, seed 0 kept as it is
    kept = (parent / "seed-0" / "run.json").stat().st_mtime_ns
    import shutil

    shutil.rmtree(parent / "seed-1")
    code, _, err = run_here("train", "--resume", str(parent), env=env)
    assert code == 0, err
    assert "seed 1: training into" in err and "seed 0: training" not in err
    assert (parent / "seed-0" / "run.json").stat().st_mtime_ns == kept
    assert seedset.seed_state(parent / "seed-1") == "done"
    # another set asked of the same folder is refused before work
    code, _, err = run_here("train", "--version", "4th", "--seeds", "0-2", "--out", str(parent), env=env)
    assert code != 0 and "holds the seed set" in err
    code, out, err = run_here("eval", str(parent), "--json", env=env)
    assert code == 0, err
    got = json.loads(out)
    assert [r["seed"] for r in got["seeds"]] == [0, 1] and got["aggregate"]["change"]["n"] == 2
    for s in (0, 1):
        assert list((parent / f"seed-{s}" / "eval").glob("test_*.json"))
    code, out, err = run_here("compare", str(parent), "--json", env=env)
    assert code == 0, err
    (agg,) = json.loads(out)["across_seeds"]
    assert agg["run"] == "set" and agg["seeds"] == [0, 1] and agg["version"] == "4th"
    assert agg["change"]["median"] == pytest.approx(sum(r["change"] for r in got["seeds"]) / 2)


def test_eval_of_a_set_with_an_unfinished_seed_is_refused(tmp_path):
    parent = tmp_path / "set"
    seedset.prepare(parent, seedset.SeedSet("4th", (0, 1)), resume=False)
    code, _, err = run_here("eval", str(parent))
    assert code != 0 and "seed 0 (new), seed 1 (new) not trained to the end" in err


def test_eval_of_a_set_again_names_force_not_the_out_it_refuses(tmp_path, capsys, monkeypatch):
    """A seed's metrics already there: the refusal said '--out to write elsewhere', which a seed set refuses."""
    from faapkit.artifacts import seedset as seed_set_on_disk
    from faapkit.evaluate.command import flow
    from faapkit.evaluate.command.outputs import ResultTaken
    from tests.conftest import faap_in_process, one_error

    parent = tmp_path / "set"
    seedset.prepare(parent, seedset.SeedSet("4th", (0, 1)), resume=False)
    taken = parent / "seed-0" / "eval" / "test_gender_best.json"

    def refuse(*args, **kwargs):
        raise ResultTaken(taken)

    monkeypatch.setattr(seed_set_on_disk, "seed_state", lambda run, *args: "done")
    monkeypatch.setattr(flow, "preflight_seed", lambda cmd, layers: None)
    monkeypatch.setattr(flow, "evaluate_one", refuse)
    code, _, err = faap_in_process(capsys, "eval", str(parent))
    error = err[err.index("error: ") :]  # after the 'seed 0: faap eval ...' progress line
    one_error(error, 1, code, f"seed 0: {taken} already holds an evaluation")
    assert "--force" in error and "--out" not in error


def test_compare_reads_a_seed_set_without_calling_its_manifest_unreadable(tmp_path):
    import shutil

    from tests.conftest import compare_json, fixture_path

    shutil.copytree(fixture_path("native_runs", "level-up-tiny"), tmp_path / "set" / "seed-0")
    seedset.prepare(tmp_path / "set2", seedset.SeedSet("level-up", (0,)), resume=False)
    shutil.move(tmp_path / "set2" / "seeds.json", tmp_path / "set" / "seeds.json")
    got, err = compare_json(str(tmp_path / "set"))
    assert got["rows"] and "seeds.json" not in err


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory) -> Path:
    from tests.conftest import one_step_4th_run

    return one_step_4th_run(tmp_path_factory.mktemp("one-step"))


def _set_of(parent: Path, run: Path, seeds: tuple[int, ...]) -> None:
    """A seed set whose seeds are copies of ``run`` (each recording its own seed and run id)."""
    from tests.conftest import copy_as_seed

    seedset.prepare(parent, seedset.SeedSet("4th", seeds), resume=False)
    for s in seeds:
        copy_as_seed(run, parent / f"seed-{s}", s)


def _changed_best(seed_run: Path) -> None:
    import shutil

    shutil.copy(seed_run / "checkpoints" / "last.pt", seed_run / "checkpoints" / "best.pt")
    selection = {"rule": "guarded_parity", "split": "val", "epoch": 0, "checkpoint_sha256": "0" * 64}
    (seed_run / "selection.json").write_text(json.dumps(selection))


LATE_REFUSALS = {
    "seed 1 evaluated already": ([], "seed 1: ", "already holds an evaluation"),
    "seed 1's best.pt changed since its run chose it": (["--force"], "seed-1/checkpoints/best.pt has sha256", ""),
}


@pytest.mark.parametrize("case", sorted(LATE_REFUSALS))
def test_eval_of_a_set_refuses_a_later_seed_before_evaluating_the_first(tmp_path, capsys, one_step_run, case):
    """Seed 0 was evaluated (and, with --force, its earlier result replaced) before seed 1's taken
    result or changed best.pt was refused: a refusal after work, leaving the set half evaluated."""
    from tests.conftest import faap_in_process

    flags, says, also = LATE_REFUSALS[case]
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1))
    if "evaluated" in case:
        code, _, err = faap_in_process(capsys, "eval", str(parent / "seed-1"), "--bootstrap", "0", "--device", "cpu")
        assert code == 0, err
    else:
        _changed_best(parent / "seed-1")
    code, _, err = faap_in_process(capsys, "eval", str(parent), "--bootstrap", "0", "--device", "cpu", *flags)
    assert code == 1 and says in err and also in err, err
    assert "seed 0: faap eval" not in err and not (parent / "seed-0" / "eval").exists()


EDITED_SEED = {
    "another seed": (("config", "train", "seed"), 7, "records the run of seed 7, version '4th', not seed 1"),
    "another version": (("version",), "2nd", "records the run of seed 1, version '2nd', not seed 1 of this '4th' set"),
}


@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize("case", sorted(EDITED_SEED))
def test_a_seed_folder_holding_another_run_is_refused(tmp_path, capsys, one_step_run, case, command):
    """seed-1/run.json edited to seed 7 was taken as seed 1 'done': faap eval SEEDSET reported it
    as seed 1 and compare as a seed 7 of the set."""
    from tests.conftest import faap_in_process, one_error

    keys, value, says = EDITED_SEED[case]
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1))
    manifest = json.loads((parent / "seed-1" / "run.json").read_text())
    inner = manifest
    for key in keys[:-1]:
        inner = inner[key]
    inner[keys[-1]] = value
    (parent / "seed-1" / "run.json").write_text(json.dumps(manifest))
    args = ["train", "--resume", str(parent)] if command == "train" else ["eval", str(parent), "--device", "cpu"]
    code, _, err = faap_in_process(capsys, *args)
    error = err[err.index("error: ") :]  # after the 'seed set ...' line of train
    one_error(error, 1, code, f"{parent / 'seed-1'} {says}")
    assert not (parent / "seed-0" / "eval").exists() and not (parent / "seed-0.log").exists()


SETUP_REFUSALS = {
    "settings that cannot train": (["--set", "train.batch_size=1"], 2, "train.batch_size=1 cannot train"),
    "a dataset root that is not there": (["--set", "data.root='/nonexistent-faap'"], 1, "dataset root not found"),
}


@pytest.mark.parametrize("case", sorted(SETUP_REFUSALS))
def test_a_set_whose_settings_cannot_train_stops_at_the_first_seed_and_leaves_no_folder(tmp_path, case):
    """Every seed was started and refused in turn (each loading the data), the command exited 1
    even for a configuration error, and seeds.json and the logs stayed: the corrected command then
    found a folder 'holding the seed set' of the bad settings and was refused."""
    extra, code_expected, says = SETUP_REFUSALS[case]
    parent = tmp_path / "set"
    env = {"FAAP_CACHE_DIR": os.environ["FAAP_CACHE_DIR"]}
    code, _, err = run_here("train", "--version", "4th", "--seeds", "0-2", "--out", str(parent), *extra, env=env)
    assert code == code_expected and "Traceback" not in err, err
    (error,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "1 of 3 seeds refused before training; 2 not started" in error and says in error, err
    assert f"{parent} removed again (nothing was trained)" in error and not parent.exists()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda seed_run: None, "done; 0 evaluation(s)"),
        (lambda seed_run: __import__("shutil").rmtree(seed_run), "new; 0 evaluation(s)"),
        (lambda seed_run: (seed_run / "train_log.jsonl").write_text(""), "partial"),
        (
            lambda seed_run: (seed_run / "run.json").write_text(
                (seed_run / "run.json").read_text().replace('"seed": 1', '"seed": 7')
            ),
            "refused: ",
        ),
    ],
)
def test_inspect_run_of_a_seed_set_says_each_seed_s_state(tmp_path, capsys, one_step_run, change, says):
    """faap inspect run SEEDSET showed the set as one run of N records, naming neither the set nor
    which seed was trained, cut short or not that seed's run."""
    from tests.conftest import faap_in_process

    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1))
    change(parent / "seed-1")
    code, out, err = faap_in_process(capsys, "inspect", "run", str(parent), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["format"] == "faapkit seed set" and got["seeds"] == [0, 1] and got["version"] == "4th"
    assert got["seed 0"].startswith("done") and got["seed 1"].startswith(says)


@pytest.mark.parametrize("accept", [True])
def test_eval_of_a_set_says_a_seed_s_checkpoint_note_once(tmp_path, capsys, one_step_run, accept):
    """The check of every seed before inference said each seed's best.pt warning a second time."""
    from tests.conftest import faap_in_process

    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1))
    _changed_best(parent / "seed-1")
    flags = ["--accept-changed-best"] if accept else []
    code, _, err = faap_in_process(capsys, "eval", str(parent), "--bootstrap", "0", "--device", "cpu", *flags)
    assert code == 0, err
    assert " ".join(err.split()).count("seed-1/checkpoints/best.pt has sha256") == 1, err


@pytest.mark.parametrize("resume", [False, True])
def test_a_second_train_of_one_seed_set_is_refused_while_the_first_runs(tmp_path, resume):
    """Two `faap train --seeds` into one folder both ran: each started the same seeds (refused one
    by one in the seed folders), and a set refused in setup could take back the folder the other
    was setting up. The set's folder has one writer, as a run folder does."""
    import subprocess
    import sys

    parent = tmp_path / "set"
    seedset.prepare(parent, seedset.SeedSet("4th", (0, 1)), resume=False)
    holder = subprocess.Popen(  # another faap process holding the set's folder
        [sys.executable, "-c", "import sys,time; from faapkit.artifacts.rundir import RunDir; "
         f"RunDir({str(parent)!r}).lock(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        args = ["--resume", str(parent)] if resume else ["--version", "4th", "--seeds", "0-1", "--out", str(parent)]
        code, _, err = run_here("train", *args)
    finally:
        holder.kill()
        holder.wait()
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(lines) == 1 and "is in use by another faap process" in lines[0], err
    assert sorted(p.name for p in parent.iterdir()) == ["seeds.json"]


def test_a_finished_seed_whose_checkpoints_are_gone_is_not_counted_as_done(tmp_path):
    """The hostile pass's R5: a seed's log says it finished, but nothing is left to evaluate or
    resume from; the set says so, naming the folder, instead of counting it as done."""
    import json

    from faapkit.errors import FaapError
    from tests.conftest import a_run_manifest

    run = tmp_path / "set" / "seed-0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps(a_run_manifest(version="4th", config={"train": {"seed": 0, "epochs": 1}})))
    (run / "train_log.jsonl").write_text(json.dumps({"epoch": 0, "global_step": 10}) + "\n")
    with pytest.raises(FaapError, match=r"seed-0 finished training but its checkpoints are gone"):
        seedset.seed_state(run, 0, "4th")
    (run / "checkpoints" / "last.pt").write_bytes(b"PK")
    assert seedset.seed_state(run, 0, "4th") == "done"
