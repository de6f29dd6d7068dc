"""Training scalars reach the built-in loggers: ``RUN/metrics.csv`` and TensorBoard event files in
``RUN/tb/``, read back here with the csv module and tensorboard's ``EventAccumulator``; a resumed
run logs exactly the rows of an uninterrupted one."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from faapkit.config import resolve_config
from faapkit.errors import ConfigError
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

REG = Registries.from_plugin_manager(make_plugin_manager())
# 2 epochs of 3 steps, a train row every 2 steps (steps 2, 4, 6), validation after each epoch
RUN = [
    "train.batch_size=4",
    "data.limit_images=24",
    "train.epochs=2",
    "train.steps_per_epoch=3",
    "train.log_every=2",
    "train.val_every=1",
    "train.val_limit_images=8",
    "generator.channels=8",
    "train.loggers=['csv', 'tensorboard']",
]


def _train(run: Path, *extra: str, resume: bool = False) -> Trainer:
    trainer = Trainer(resolve_config(REG, version="level-up", overrides=[*RUN, *extra]), REG, run, resume=resume)
    trainer.setup()
    trainer.fit()
    return trainer


def _csv(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _events(run: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def straight(tmp_path_factory, synth_root) -> Trainer:
    return _train(tmp_path_factory.mktemp("loggers") / "straight")


def test_csv_holds_train_rows_every_log_every_steps_and_val_rows_per_epoch(straight):
    rows = _csv(straight.run.path)
    train = [r for r in rows if r["split"] == "train"]
    assert sorted({int(r["step"]) for r in train}) == [2, 4, 6]
    assert {(int(r["step"]), int(r["epoch"])) for r in train} == {(2, 0), (4, 1), (6, 1)}
    names = {r["name"] for r in train if r["step"] == "6"}
    assert {"epsilon", "lr", "total", "loss_det", "delta_linf", "delta_l2", "n_dis"} <= names
    by_step = {(int(r["step"]), r["name"]): float(r["value"]) for r in train}
    assert 0 < by_step[(6, "delta_linf")] <= by_step[(6, "epsilon")] + 1e-6  # the bound holds in the log too
    log = straight.run.read_log()
    assert by_step[(6, "epsilon")] == log[1]["epsilon"] and by_step[(6, "lr")] == log[1]["lr"]

    val = [r for r in rows if r["split"] == "val"]
    assert sorted({(int(r["step"]), int(r["epoch"])) for r in val}) == [(3, 0), (6, 1)]
    baseline = straight.run.read_selection()["val_baseline"]
    for epoch, row in enumerate(log):
        scalars = {r["name"]: float(r["value"]) for r in val if int(r["epoch"]) == epoch}
        # written with repr: the CSV's numbers are the log's, bit for bit
        assert scalars["AP/female"] == row["val"]["AP"]["female"] and scalars["AP/male"] == row["val"]["AP"]["male"]
        assert scalars["AR/female"] == row["val"]["AR"]["female"]
        assert scalars["gap_AP"] == row["val"]["gap_AP"]
        assert scalars["gap_AP_change"] == pytest.approx(row["val"]["gap_AP"] - baseline["gap_AP"], abs=1e-12)
        # the validation's paired bootstrap CIs, logged beside their gaps
        assert [scalars["gap_AP_ci_lo"], scalars["gap_AP_ci_hi"]] == row["val"]["gap_AP_ci"]
        assert [scalars["gap_AP_change_ci_lo"], scalars["gap_AP_change_ci_hi"]] == row["val"]["gap_AP_change_ci"]


def test_tensorboard_events_match_the_csv(straight):
    events = _events(straight.run.path)
    rows = _csv(straight.run.path)
    assert set(events) == {f"{r['split']}/{r['name']}" for r in rows}
    assert "val/AP/female" in events and "train/loss_det" in events
    for r in rows:
        points = dict(events[f"{r['split']}/{r['name']}"])
        assert points[int(r["step"])] == pytest.approx(float(r["value"]), rel=1e-6)  # events store float32
    assert [step for step, _ in events["train/loss_det"]] == [2, 4, 6]


@pytest.mark.parametrize("stop", [3, 5], ids=["end-of-epoch-0", "mid-epoch-1"])
def test_resume_logs_the_rows_of_an_uninterrupted_run(straight, tmp_path, stop):
    run = tmp_path / "resumed"
    # rows at steps 2, 4, 6: stopping at 3 or 5 leaves a window holding one step in the checkpoint
    _train(run, f"train.max_steps={stop}")
    # step 3 ends epoch 0 (its val row is at 3); step 5 is mid-epoch (the last train row is at 4)
    assert max(int(r["step"]) for r in _csv(run)) == {3: 3, 5: 4}[stop]
    # what a process killed after its last checkpoint leaves: rows past it and a cut-off line
    with (run / "metrics.csv").open("a") as f:
        f.write(f"{stop + 1},1,train,loss_det,999.0\n{stop + 1},1,train,tot")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run / "tb")) as writer:
        writer.add_scalar("train/loss_det", 999.0, global_step=stop + 1)
    _train(run, resume=True)
    assert _csv(run) == _csv(straight.run.path)  # no duplicate, no orphan, the window carried over
    assert _events(run) == _events(straight.run.path)


def test_csv_refuses_a_corrupt_file_on_resume_naming_the_line(tmp_path):
    from faapkit.errors import FaapError
    from faapkit.train.loggers import CSVLogger

    path = tmp_path / "metrics.csv"
    path.write_text("step,epoch,split,name,value\n1,0,train,total,0.5\nxx,0,train,total,0.4\n")
    with pytest.raises(FaapError, match=r"metrics.csv line 3 is corrupt"):
        CSVLogger(tmp_path).open(1)
    path.write_text("a,b\n")
    with pytest.raises(FaapError, match=r"metrics.csv is not a faapkit metrics file"):
        CSVLogger(tmp_path).open(1)
    logger = CSVLogger(tmp_path)
    logger.open(0)  # a fresh run starts a fresh file whatever was there
    logger.log("train", 1, 0, {"total": 0.1 + 0.2})
    logger.close()
    assert path.read_text() == "step,epoch,split,name,value\n1,0,train,total,0.30000000000000004\n"


@pytest.mark.parametrize("name", ["metrics.csv", "tb", "train_log.jsonl"])
def test_a_fresh_run_never_writes_over_files_of_a_folder_that_is_not_a_run(tmp_path, name):
    """``--out`` naming a folder that holds a metrics.csv, tb/ or train log but no run.json (not a
    faapkit run): the loggers' fresh start would replace or mix into them, so it is refused."""
    from faapkit.errors import FaapError

    folder = tmp_path / "mine"
    (folder / "tb").mkdir(parents=True) if name == "tb" else folder.mkdir()
    kept = folder / ("tb/events.out.tfevents.1" if name == "tb" else name)
    kept.write_text("precious\n")
    with pytest.raises(FaapError, match=rf"{folder}.* holds {name} but no run.json"):
        Trainer(resolve_config(REG, version="level-up", overrides=[*RUN]), REG, folder).setup()
    assert kept.read_text() == "precious\n" and not (folder / "run.json").exists()


def test_a_missing_tensorboard_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    cfg = resolve_config(REG, version="level-up", overrides=[*RUN])
    with pytest.raises(ConfigError, match=r"tensorboard package is not installed.*faapkit\[tensorboard\]"):
        Trainer(cfg, REG, tmp_path / "run").setup()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.loggers=['tensorbord']", r"train.loggers: unknown logger 'tensorbord'; did you mean 'tensorboard'"),
        ("train.loggers=['csv', 'csv']", "train.loggers names csv more than once"),
        ("train.logger_options.tensorboard.flush_secs=5", "configures a logger that train.loggers"),
    ],
)
def test_bad_logger_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(REG, version="level-up", overrides=[override])


def test_logger_options_are_validated_and_resumable():
    from faapkit.config.differences import config_differences

    with pytest.raises(ConfigError, match="train.logger_options.tensorboard"):
        resolve_config(REG, version="level-up", overrides=[*RUN, "train.logger_options.tensorboard.flush_secs=0"])
    a = resolve_config(REG, version="level-up").model_dump(mode="json")
    b = resolve_config(REG, version="level-up", overrides=[*RUN[-1:], "train.logger_options.tensorboard.flush_secs=5"])
    assert config_differences(a, b.model_dump(mode="json")) == []  # loggers change no result: --resume may
