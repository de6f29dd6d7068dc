"""The retrain anchor (``faap probe retrain``) on the real tiny detector, two steps a seed: it runs
end to end, chooses on val by the selection rule, scores the chosen weights on test against the
shipped detector with faap eval's bootstrap, and never writes the shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faapkit.train.retrain import BUDGETS, plan_for
from tests.conftest import faap_in_process, one_error

SMOKE = [
    "--detector", "detr-synth-tiny", "--limit-images", "16", "--device", "cpu",
    "--set", "train.epochs=2", "--set", "train.steps_per_epoch=1", "--set", "train.batch_size=2",
    "--set", "train.val_every=1", "--set", "eval.bootstrap=20", "--set", "train.select_max_advantaged_drop=1.0",
]  # fmt: skip


@pytest.fixture(scope="module")
def shipped() -> Path:
    from faapkit.detr.build import packaged_path
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    spec = Registries.from_plugin_manager(make_plugin_manager()).detectors.get("detr-synth-tiny")
    return packaged_path(spec.weights)


@pytest.fixture(scope="module")
def anchor(tmp_path_factory, synth_root, shipped) -> tuple[Path, int, str, str]:
    """One seed of the smoke anchor: (out, exit code, stderr, sha256 of the shipped weights before)."""
    from faapkit.detr.build import file_sha256

    before = file_sha256(shipped)
    out = tmp_path_factory.mktemp("retrain") / "anchor"
    from faapkit.cli import main  # capsys is function-scoped: the module's one run calls main itself

    try:
        main(["probe", "retrain", "--out", str(out), "--seeds", "3", "--data", str(synth_root), *SMOKE, "--json"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return out, code, "", before


def test_it_runs_end_to_end_and_never_writes_the_shipped_weights(anchor, shipped):
    from faapkit.detr.build import file_sha256

    out, code, _, before = anchor
    assert code == 0
    summary = json.loads((out / "retrain.json").read_text())
    assert summary["schema"] == "faapkit.retrain/1" and summary["seeds"] == {"3": "seed-3"}
    assert summary["plan"]["steps"] == 2 and summary["plan"]["images"] == 4
    assert file_sha256(shipped) == before == summary["detector"]["sha256"]
    report = json.loads((out / "seed-3" / "retrain.json").read_text())
    assert [r["epoch"] for r in report["val"]] == [0, 1] and len(report["losses"]) == 2


def test_the_choice_is_made_on_val_by_the_selection_rule_and_reported_on_test(anchor, synth_root):
    from faapkit.data.coco import load_split
    from faapkit.train.selection import select_epoch

    out, _, _, _ = anchor
    report = json.loads((out / "seed-3" / "retrain.json").read_text())
    base = report["baseline_val"]
    assert report["selection"]["split"] == "val" and base["images"] == 16
    expected = select_epoch(report["val"], base["AP"]["male"], 1.0, "parity", baseline_gap=base["gap_AP"])
    assert report["selection"]["epoch"] == (None if expected is None else expected["epoch"])
    if expected is None:
        assert report["test"] is None and not (out / "seed-3" / "detector.pth").exists()
        return
    test = report["test"]
    assert test["split"] == "test" and test["epoch"] == expected["epoch"]
    held = load_split(synth_root, "test", limit=16)
    assert {g: v["images"] for g, v in test["groups"].items()} == {
        g: len(ids) for g, ids in held.group_images().items()
    }
    gaps = test["gaps"]["AP"]
    assert gaps["change"] == pytest.approx(gaps["perturbed"] - gaps["baseline"])
    assert test["bootstrap"]["resamples"] == 20 and report["row"]["change_ci"] is not None
    assert (out / "seed-3" / "detector.pth").is_file()


def test_the_shipped_detector_against_itself_changes_nothing(tiny_detector, synth_root, shipped):
    """A known answer: scoring the shipped weights as 'retrained' gives no change, share closed 0."""
    import torch

    from faapkit.config import resolve_config
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries
    from faapkit.train.retrain import SeedInputs, frozen_view, score_on_test, test_split

    reg = Registries.from_plugin_manager(make_plugin_manager())
    config = resolve_config(reg, version="level-up", overrides=["detector.name=detr-synth-tiny", "eval.bootstrap=10"])
    spec = reg.detectors.get("detr-synth-tiny")
    inputs = SeedInputs(config, spec, tiny_detector, shipped, synth_root, torch.device("cpu"), limit=12)
    test = score_on_test(inputs, test_split(inputs), frozen_view(tiny_detector.parts, inputs))
    assert test["gaps"]["AP"]["change"] == pytest.approx(0.0, abs=1e-9)
    assert test["gaps"]["AP"]["share_closed"] == pytest.approx(0.0, abs=1e-9)
    assert all(abs(d["AP"]) < 1e-9 for d in test["deltas"].values())


def test_budgets_are_level_up_s_steps_and_images_and_four_times_them(registries):
    from faapkit.config import resolve_config

    config = resolve_config(registries, version="level-up")
    equal, long = plan_for(config, "equal", lr=5e-5), plan_for(config, "long", lr=5e-5)
    t = config.train
    assert (equal.epochs, equal.steps, equal.batch_size) == (t.epochs, t.epochs * t.steps_per_epoch, t.batch_size)
    assert equal.images == t.epochs * t.steps_per_epoch * t.batch_size
    assert long.steps == BUDGETS["long"] * equal.steps and long.val_every == equal.val_every == t.val_every


@pytest.mark.parametrize(("share", "groups"), [(1.0, {"female"}), (0.5, {"female", "male"})])
def test_the_draws_follow_the_disadvantaged_share(tiny_detector, synth_root, shipped, share, groups):
    """At 1.0 every batch image is the disadvantaged group's (as level-up draws); at 0.5 both groups."""
    import torch

    from faapkit.config import resolve_config
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries
    from faapkit.train.retrain import SeedInputs, train_loader

    reg = Registries.from_plugin_manager(make_plugin_manager())
    config = resolve_config(reg, version="level-up", overrides=["detector.name=detr-synth-tiny"])
    spec = reg.detectors.get("detr-synth-tiny")
    inputs = SeedInputs(config, spec, tiny_detector, shipped, synth_root, torch.device("cpu"), limit=40)
    plan = plan_for(config, "equal", lr=1e-5, disadvantaged_share=share)
    loader, _ = train_loader(inputs, plan, seed=0)
    names = [config.data.disadvantaged, config.data.advantaged]
    seen = {names[g] for batch in loader for g in batch.groups.tolist()}
    assert seen == groups


def test_an_earlier_report_is_kept_without_force(anchor, capsys):
    out, _, _, _ = anchor
    before = (out / "retrain.json").read_bytes()
    code, _, err = faap_in_process(capsys, "probe", "retrain", "--out", str(out), "--seeds", "3", *SMOKE)
    one_error(err, 1, code, "exists; pass --force to replace it")
    assert (out / "retrain.json").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--budget", "huge"], "--budget must be one of equal, long"),
        (["--seeds", "2-1"], "runs backwards"),
        (["--lr", "0"], "--lr must be in (0, 1)"),
        (["--disadvantaged-share", "0"], "--disadvantaged-share must be in (0, 1]"),
        (["--disadvantaged-share", "1.5"], "--disadvantaged-share must be in (0, 1]"),
        (["--data", "/data/coco", "--set", "data.benchmark=v3"], "--data (/data/coco) names a dataset and data.bench"),
        (["--set", "data.benchmark=v9"], "'data.benchmark': unknown embedded benchmark 'v9'"),
    ],
)
def test_bad_options_are_one_line_before_any_work(capsys, tmp_path, args, says):
    code, _, err = faap_in_process(capsys, "probe", "retrain", "--out", str(tmp_path / "x"), *args)
    one_error(err, 2, code, says)
    assert list(tmp_path.iterdir()) == []


def test_a_run_folder_is_never_an_output(capsys, tmp_path):
    (tmp_path / "run.json").write_text("{}")
    code, _, err = faap_in_process(capsys, "probe", "retrain", "--out", str(tmp_path / "anchor"), "--force")
    one_error(err, 2, code, "never written there")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
