"""Validation during training keeps best.pt at the epoch the stated rule picks on val."""

from __future__ import annotations

import pytest

from faapkit.artifacts.integrity import file_sha256
from faapkit.compare import select_on_val
from faapkit.config import resolve_config
from faapkit.io import load_checkpoint
from faapkit.train.trainer import Trainer

FAST = ["train.batch_size=4", "data.limit_images=24", "train.epochs=3", "train.steps_per_epoch=2"]


def test_best_checkpoint_is_the_val_rule_choice(registries, tmp_path, synth_root):
    overrides = [*FAST, "train.val_every=1", "train.select_max_advantaged_drop=1.0"]
    trainer = Trainer(resolve_config(registries, version="level-up", overrides=overrides), registries, tmp_path / "r")
    trainer.setup()
    trainer.fit()
    log = trainer.run.read_log()
    assert all("val" in row for row in log)
    gaps = {row["epoch"]: row["val"]["gap_AP"] for row in log}
    selection = trainer.run.read_selection()
    assert selection["rule"] == "guarded_parity" and selection["split"] == "val"
    base = abs(selection["val_baseline"]["gap_AP"])
    narrower = {e: g for e, g in gaps.items() if abs(g) < base}
    assert selection["eligible_epochs"] == sorted(narrower)
    if not narrower:  # this tiny run may narrow nothing: then nothing is chosen
        assert selection["epoch"] is None and not (trainer.run.checkpoints / "best.pt").exists()
        return
    assert selection["epoch"] == min(narrower, key=lambda e: (abs(gaps[e]), e))
    best = load_checkpoint(trainer.run.checkpoints / "best.pt")
    assert best["epoch"] == selection["epoch"] and best["selection"]["epoch"] == selection["epoch"]
    # the file it chose, by content: faap eval refuses a best.pt replaced since
    assert selection["checkpoint_sha256"] == file_sha256(trainer.run.checkpoints / "best.pt")
    last = load_checkpoint(trainer.run.checkpoints / "last.pt")
    assert last["epoch"] == 2 and last["generator_spec"]["name"] == "transformer-aware"


def test_no_epoch_meeting_the_guard_means_no_best(registries, tmp_path, synth_root):
    overrides = [*FAST, "train.epochs=1", "train.val_every=1", "train.select_max_advantaged_drop=0.0"]
    cfg = resolve_config(registries, version="level-up", overrides=[*overrides, "train.lr=0.5"])
    trainer = Trainer(cfg, registries, tmp_path / "r")
    trainer.setup()
    trainer.validator.baseline["AP"]["male"] = 2.0  # no perturbed epoch can reach it
    trainer.fit()
    assert trainer.run.read_selection()["epoch"] is None
    assert trainer.run.read_selection()["checkpoint_sha256"] is None
    assert not (trainer.run.checkpoints / "best.pt").exists()


KEPT = {
    "same epoch, recorded": ({"epoch": 2, "checkpoint_sha256": "ab"}, 2, "ab"),
    "another epoch": ({"epoch": 1, "checkpoint_sha256": "ab"}, 2, None),
    "older run, none recorded": ({"epoch": 2}, 2, None),
    "no selection yet": (None, 2, None),
}


@pytest.mark.parametrize("case", sorted(KEPT))
def test_a_kept_best_keeps_its_recorded_hash_only_for_its_own_epoch(case):
    from faapkit.train.best import kept_sha256

    previous, epoch, expected = KEPT[case]
    assert kept_sha256(previous, epoch) == expected


def test_a_dataset_without_val_trains_without_selection_and_says_so(registries, tmp_path):
    from faapkit.data.synth import SynthSpec, write_synthetic

    root = write_synthetic(tmp_path / "s", SynthSpec(seed=7, splits=(("train", 6, 6),))) / "coco"
    overrides = [*FAST, "train.epochs=1", f"data.root='{root}'", "generator.channels=8"]
    trainer = Trainer(resolve_config(registries, version="level-up", overrides=overrides), registries, tmp_path / "r")
    trainer.setup()
    assert trainer.validator is None and "no 'val' split" in trainer.notes[0]
    trainer.fit()
    assert not (trainer.run.checkpoints / "best.pt").exists() and trainer.run.read_selection() is None


def test_a_misnamed_val_split_is_refused(registries, tmp_path, synth_root):
    from faapkit.errors import ConfigError

    cfg = resolve_config(registries, version="level-up", overrides=[*FAST, "data.val_split=nope"])
    with pytest.raises(ConfigError, match="data.val_split='nope' is not a split"):
        Trainer(cfg, registries, tmp_path / "r").setup()


def test_selecting_on_the_eval_split_is_flagged(registries, tmp_path, synth_root):
    cfg = resolve_config(registries, version="level-up", overrides=[*FAST, "data.val_split=test"])
    trainer = Trainer(cfg, registries, tmp_path / "r")
    trainer.setup()
    assert any("overstates" in note for note in trainer.notes)


def test_a_broken_val_split_is_refused_before_training(registries, tmp_path, synth_root):
    import shutil

    from faapkit.errors import ConfigError

    root = tmp_path / "data"
    shutil.copytree(synth_root / "annotations", root / "annotations")
    (root / "images").mkdir()
    for split in ("train", "val"):
        (root / "images" / split).symlink_to(synth_root / "images" / split)
    (root / "annotations" / "instances_val.json").write_text("{not json")
    cfg = resolve_config(registries, version="level-up", overrides=[*FAST, f"data.root='{root}'"])
    with pytest.raises(ConfigError, match="validation split 'val' cannot be read"):
        Trainer(cfg, registries, tmp_path / "r").setup()


def _row(run, epoch, split, gap, adv_change=0.0):
    row = {"run": run, "epoch": epoch, "split": split, "AP_gap": gap, "AP_advantaged_change": adv_change}
    return {**row, "AP_gap_baseline": 0.05}  # every val gap here narrows it


def test_compare_selects_on_val_and_reports_the_other_split():
    rows = [
        _row("a", 0, "val", 0.01),
        _row("a", 1, "val", 0.02),
        _row("a", 0, "test", 0.04),
        _row("a", 1, "test", 0.00),  # better on test, but test must not choose
        _row("b", 0, "val", 0.00, adv_change=-0.02),  # closes the gap by harming the advantaged group
        _row("b", 1, "val", 0.03),
        _row("b", 1, "test", 0.03),
        _row("c", 0, "test", 0.00),  # nothing to select on
    ]
    kept, notes = select_on_val(rows)
    assert [(r["run"], r["epoch"], r["split"]) for r in kept] == [("a", 0, "test"), ("b", 1, "test")]
    assert all(r["selected_on"] == "val" for r in kept)
    assert any(n.startswith("c:") for n in notes)
