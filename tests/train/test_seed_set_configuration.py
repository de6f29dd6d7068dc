"""A seed set is one configuration: a set whose seeds' ``run.json`` disagree with ``seeds.json``
or with each other (anything but the seed) is refused by name, with the differing keys, by
``faap train --resume``, ``faap eval``, ``faap report`` and ``faap compare --across-seeds`` alike;
a seed left out of a spread is said, never silently dropped from its n."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faapkit.artifacts import seedset
from faapkit.errors import FaapError
from tests.conftest import copy_as_seed, faap_in_process, one_error

EDITED = "seed set {parent}: the run.json of seeds 0, 1 differ from seeds.json in train.lr (0.0001 vs 0.0002)"


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory) -> Path:
    from tests.conftest import one_step_4th_run

    return one_step_4th_run(tmp_path_factory.mktemp("one-step"))


def _set_of(parent: Path, run: Path, seeds: tuple[int, ...], overrides: tuple[str, ...] = ()) -> None:
    """A seed set recording ``overrides`` whose seeds are copies of ``run`` (each its own seed)."""
    from faapkit.train.seeds import prepare

    prepare(parent, seedset.SeedSet("4th", seeds, None, overrides), resume=False)
    for s in seeds:
        copy_as_seed(run, parent / f"seed-{s}", s)


def _edit(path: Path, keys: tuple[str, ...], value: object) -> None:
    data = json.loads(path.read_text())
    inner = data
    for key in keys[:-1]:
        inner = inner[key]
    if isinstance(inner.get(keys[-1]), list) and not isinstance(value, list):
        inner[keys[-1]].append(value)
    else:
        inner[keys[-1]] = value
    path.write_text(json.dumps(data))


def _edited_set(tmp_path: Path, run: Path) -> Path:
    """A set trained with train.lr=0.0001 whose seeds.json was edited to train.lr=0.0002."""
    parent = tmp_path / "set"
    _set_of(parent, run, (0, 1), ("train.lr=0.0001",))
    _edit(parent / "seeds.json", ("overrides",), ["train.lr=0.0002"])
    return parent


def test_one_configuration_passes_and_an_edited_manifest_is_refused_with_its_keys(tmp_path, one_step_run):
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1), ("train.lr=0.0001", "train.epochs=1"))
    assert seedset.check_one_configuration(parent).seeds == (0, 1)
    _edit(parent / "seeds.json", ("overrides",), ["train.lr=0.0002", "train.epochs=1"])
    with pytest.raises(FaapError, match=r"seeds 0, 1 differ from seeds\.json in train\.lr \(0\.0001 vs 0\.0002\)"):
        seedset.check_one_configuration(parent)


def test_a_seed_trained_with_another_configuration_is_named_against_the_others(tmp_path, one_step_run):
    """The manifest restored after a seed was retrained from its edited form: the seeds disagree."""
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1, 2))
    _edit(parent / "seed-2" / "run.json", ("config", "train", "lr"), 0.0002)
    _edit(parent / "seed-2" / "run.json", ("config", "loss", "temperature"), 0.5)
    problems = seedset.configuration_problems(parent, seedset.read_seed_set(parent))
    assert problems == [
        "seed 2's run.json differs from seed 0's in loss.temperature (0.5 vs 0.1), train.lr (0.0002 vs 0.0001)"
    ]


@pytest.mark.parametrize("written", ["relative", "trailing slash"])
def test_a_path_in_seeds_json_is_the_absolute_one_its_seeds_recorded(tmp_path, one_step_run, written):
    """The trainer records data.root absolute; seeds.json keeps it as given."""
    parent = tmp_path / "set"
    root = json.loads((one_step_run / "run.json").read_text())["config"]["data"]["root"]
    given = f"../{Path(root).parent.name}/coco" if written == "relative" else root + "/"
    _set_of(parent, one_step_run, (0, 1), (f"data.root='{given}'",))
    assert seedset.configuration_problems(parent, seedset.read_seed_set(parent)) == []
    _edit(parent / "seeds.json", ("overrides",), ["data.root='/elsewhere/coco'"])
    (problem,) = seedset.configuration_problems(parent, seedset.read_seed_set(parent))
    assert problem.startswith("the run.json of seeds 0, 1 differ from seeds.json in data.root (")
    assert problem.endswith(' vs "/elsewhere/coco")')


def test_train_resume_of_an_edited_set_is_refused_before_training_the_missing_seed(tmp_path, capsys, one_step_run):
    """The hostile pass's FAIL: the missing seed was trained with the edited settings beside the others."""
    parent = _edited_set(tmp_path, one_step_run)
    shutil.rmtree(parent / "seed-1")
    code, _, err = faap_in_process(capsys, "train", "--resume", str(parent))
    one_error(err, 1, code, "seed set " + str(parent) + ": seed 0's run.json differs from seeds.json in train.lr")
    assert not (parent / "seed-1").exists() and not (parent / "seed-1.log").exists()


def test_train_resume_refuses_a_seed_set_whose_manifest_now_resolves_otherwise(tmp_path, capsys, one_step_run):
    """An override dropped from seeds.json: the kept seeds agree with what it still says, but the
    missing seed would be trained with the defaults (here the 16-channel generator)."""
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1))
    shutil.rmtree(parent / "seed-1")
    code, _, err = faap_in_process(capsys, "train", "--resume", str(parent))
    one_error(err, 1, code, "seed 0's run.json differs from what seeds.json trains now in ")
    assert "generator.base_channels (8 vs 16)" in err and not (parent / "seed-1").exists()


@pytest.mark.parametrize("command", ["eval", "report", "compare"])
def test_readers_refuse_an_edited_set_by_name(tmp_path, capsys, one_step_run, command):
    parent = _edited_set(tmp_path, one_step_run)
    args = {
        "eval": ["eval", str(parent), "--device", "cpu"],
        "report": ["report", str(parent), "--no-panel"],
        "compare": ["compare", str(parent), "--across-seeds"],
    }[command]
    code, _, err = faap_in_process(capsys, *args)
    one_error(err, 1, code, EDITED.format(parent=parent))
    assert not (parent / "seed-0" / "eval").exists() and not (parent / "report").exists()


def test_compare_without_across_seeds_says_the_set_and_shows_its_runs(tmp_path, capsys, one_step_run):
    parent = _edited_set(tmp_path, one_step_run)
    code, out, err = faap_in_process(capsys, "compare", str(parent), "--json")
    assert code == 0 and EDITED.format(parent=parent) in err and f"faap compare {parent} shows its seeds as" in err
    assert json.loads(out)["rows"] or json.loads(out)["log_only"]  # its runs, as runs


def test_inspect_says_whether_the_set_is_one_configuration(tmp_path, capsys, one_step_run):
    parent = _edited_set(tmp_path, one_step_run)
    code, out, err = faap_in_process(capsys, "inspect", "run", str(parent), "--json")
    assert code == 0, err
    assert json.loads(out)["configuration"].startswith("refused: the run.json of seeds 0, 1 differ")


def test_eval_of_a_set_without_its_manifest_advises_what_reads_it(tmp_path, capsys, one_step_run):
    """The advice was 'start it with faap train --out', into a folder of trained seeds."""
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1))
    (parent / "seeds.json").unlink()
    code, _, err = faap_in_process(capsys, "eval", str(parent), "--device", "cpu")
    one_error(err, 1, code, f"{parent} holds seed runs (seed-0, seed-1) but no seeds.json")
    assert f"faap eval {parent / 'seed-0'}" in err and "train --out" not in err


def test_eval_of_a_set_evaluates_the_seeds_with_a_chosen_checkpoint_and_says_the_other(tmp_path, capsys, one_step_run):
    """One seed whose selection chose no epoch refused the whole set."""
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1, 2))
    outcome = "none: no guarded epoch narrowed the val AP gap (unperturbed val AP gap +0.2000; 1 guarded epoch(s))"
    (parent / "seed-1" / "selection.json").write_text(json.dumps({"epoch": None, "outcome": outcome}))
    code, out, err = faap_in_process(capsys, "eval", str(parent), "--bootstrap", "0", "--device", "cpu", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert [r["seed"] for r in got["seeds"]] == [0, 2] and got["aggregate"]["of"] == 3
    (left,) = got["aggregate"]["left_out"]
    assert left.startswith("seed 1 (no chosen checkpoint: no guarded epoch narrowed")
    assert "seed 1: no chosen checkpoint" in err and not (parent / "seed-1" / "eval").exists()


def test_report_of_a_set_with_an_unevaluated_seed_names_it_and_counts_n_of_n(tmp_path, capsys, one_step_run):
    """The report showed the evaluated seeds without a word of the others."""
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0, 1))
    code, _, err = faap_in_process(capsys, "eval", str(parent / "seed-0"), "--bootstrap", "0", "--device", "cpu")
    assert code == 0, err
    code, _, err = faap_in_process(capsys, "report", str(parent), "--no-panel")
    assert code == 0, err
    assert f"seed 1 (no evaluation: faap eval {parent / 'seed-1'})" in err
    page = (parent / "report" / "report.md").read_text()
    assert f"Not shown: seed 1 (no evaluation: faap eval {parent / 'seed-1'})" in page
    assert "- over 1 of 2 seeds; left out: seed 1" in page and "## Seed 0" in page


def test_a_seed_folder_holding_a_copy_of_another_seed_s_run_is_refused(tmp_path, capsys, one_step_run):
    """seed-0 copied to seed-1 and its train.seed edited was counted as a second sample."""
    parent = tmp_path / "set"
    _set_of(parent, one_step_run, (0,))
    shutil.copytree(parent / "seed-0", parent / "seed-1")
    _edit(parent / "seed-1" / "run.json", ("config", "train", "seed"), 1)
    _edit(parent / "seeds.json", ("seeds",), 1)
    run_id = json.loads((parent / "seed-0" / "run.json").read_text())["run_id"]
    code, _, err = faap_in_process(capsys, "eval", str(parent), "--device", "cpu")
    one_error(err, 1, code, f"the run.json of seeds 0, 1 record one run (run id {run_id})")
