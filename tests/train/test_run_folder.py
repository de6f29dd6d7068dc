"""Run folders: one writer, resume only from this run's own state, settings that cannot train are
refused before the first step, and a run that stopped before its first checkpoint has a way out."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from faapkit.artifacts.checkpoint import latest_checkpoint
from faapkit.config import resolve_config
from faapkit.data.synth import SynthSpec, write_synthetic
from faapkit.errors import CheckpointError, ConfigError, FaapError
from faapkit.io import load_checkpoint, save_checkpoint
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.providers import version_providers
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

REG = Registries.from_plugin_manager(make_plugin_manager())
QUICK = [
    "train.batch_size=4",
    "train.max_steps=1",
    "train.epochs=1",
    "train.steps_per_epoch=2",
    "generator.base_channels=8",
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("rf") / "s", SynthSpec(seed=9, splits=(("train", 6, 6),))) / "coco"


def _trainer(run: Path, root: Path, *extra: str, resume: bool = False, version: str = "4th") -> Trainer:
    cfg = resolve_config(REG, version=version, overrides=[*QUICK, f"data.root='{root}'", *extra])
    return Trainer(cfg, REG, run, resume=resume)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root) -> Path:
    """A run folder holding one mid-epoch checkpoint (step 1)."""
    run = tmp_path_factory.mktemp("rf-run") / "run"
    trainer = _trainer(run, data_root)
    trainer.setup()
    trainer.fit()
    return run


def _copy(run: Path, dst: Path) -> Path:
    shutil.copytree(run, dst)
    return dst


def test_second_writer_is_refused_and_changes_nothing(tmp_path, data_root):
    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run, os.O_RDONLY)  # another process holding the folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FaapError, match="in use by another faap process"):
            _trainer(run, data_root).setup()
    finally:
        os.close(fd)
    assert list(run.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["train.batch_size=1"], "train.batch_size=1 cannot train version '4th'"),
        (["data.group_weights={female=1.0,male=1.0,child=1.0}"], "data.group_weights names group(s) child"),
    ],
)
def test_settings_that_cannot_train_are_refused_before_the_first_step(tmp_path, data_root, extra, message):
    run = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        _trainer(run, data_root, *extra).setup()
    assert message in err.value.one_line() and err.value.exit_code == 2
    assert not run.exists(), "a refused setup takes back the folder it created"
    mine = tmp_path / "mine"  # a folder the user made is left where it was, empty
    mine.mkdir()
    with pytest.raises(ConfigError):
        _trainer(mine, data_root, *extra).setup()
    assert mine.is_dir() and list(mine.rglob("*")) in ([], [mine / "checkpoints"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ck: ck.update(version="3rd"), "version '3rd' (this run: '4th')"),
        (lambda ck: ck.update(run_id="0123456789abcdef"), "copied from another run?"),
        (lambda ck: ck["detector"].update(sha256="feedbeef" * 8), "detector weights feedbeef"),
        (lambda ck: ck.update(dataset_fingerprint="0" * 16), "dataset fingerprint"),
    ],
)
def test_resume_refuses_a_foreign_checkpoint(tmp_path, data_root, trained, edit, message):
    run = _copy(trained, tmp_path / "run")
    path = next((run / "checkpoints").iterdir())
    ckpt = load_checkpoint(path)
    edit(ckpt)
    save_checkpoint(path, ckpt)
    with pytest.raises(CheckpointError) as err:
        _trainer(run, data_root, resume=True).setup()
    assert message in str(err.value) and path.name in str(err.value)


def test_resume_refuses_changed_images(tmp_path, data_root, trained):
    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    run = _copy(trained, tmp_path / "run")
    manifest = json.loads((run / "run.json").read_text())
    manifest["config"]["data"]["root"] = str(root)
    (run / "run.json").write_text(json.dumps(manifest))
    image = sorted((root / "images" / "train").iterdir())[0]
    with Image.open(image) as im:
        im.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(image, format=im.format)
    with pytest.raises(CheckpointError, match="images or annotations changed"):
        _trainer(run, root, resume=True).setup()


def test_run_stopped_before_its_first_checkpoint_can_be_restarted(tmp_path, data_root):
    run = tmp_path / "run"
    _trainer(run, data_root).setup()  # manifest written, then "killed" before any step
    assert (run / "run.json").is_file() and not list((run / "checkpoints").iterdir())
    with pytest.raises(FaapError, match=f"faap train --resume {run} starts it afresh"):
        _trainer(run, data_root).setup()
    again = _trainer(run, data_root, resume=True)
    again.setup()  # accepted: starts from step 0 with a fresh manifest
    assert again.state.global_step == 0 and again.state.epoch == 0
    assert json.loads((run / "run.json").read_text())["run_id"] == again.run_id


def test_latest_checkpoint_is_the_highest_stored_step_not_the_newest_file(tmp_path):
    for name, step in (("epoch_0000.pt", 7), ("step_00000003.pt", 3), ("step_00000009.pt", 9)):
        save_checkpoint(tmp_path / name, {"global_step": step, "epoch_complete": name.startswith("epoch")})
    os.utime(tmp_path / "step_00000009.pt", (0, 0))  # a copy can give the latest state the oldest time
    assert latest_checkpoint(sorted(tmp_path.iterdir())) == tmp_path / "step_00000009.pt"
    save_checkpoint(tmp_path / "x.pt", {"generator": {"w": torch.zeros(1)}})
    with pytest.raises(CheckpointError, match="x.pt stores no global_step"):
        latest_checkpoint([tmp_path / "x.pt"])


def test_a_run_recording_the_loss_s_earlier_name_resumes(tmp_path, data_root):
    """Level-up's loss was registered as ``levelup_detection``; run folders made then record it
    under ``providers``. A run is rebuilt from its version, so the recorded name is provenance
    only and such a run resumes."""
    run = tmp_path / "run"
    quick = [f"data.root='{data_root}'", "train.batch_size=4", "train.epochs=1", "train.steps_per_epoch=2"]
    quick += ["train.val_every=0", "generator.name=subpixel", "generator.channels=8"]

    providers = version_providers(make_plugin_manager(), REG, "level-up")

    def trainer(*extra: str, resume: bool = False) -> Trainer:
        cfg = resolve_config(REG, version="level-up", overrides=[*quick, *extra])
        return Trainer(cfg, REG, run, resume=resume, providers=providers)

    first = trainer("train.max_steps=1")
    first.setup()
    assert first.fit()["stopped"] == {"epoch": 0, "step": 1, "steps_per_epoch": 2}  # where, for the way on
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["providers"]["loss"]["name"] == "level_up_detection"
    manifest["providers"]["loss"]["name"] = "levelup_detection"
    (run / "run.json").write_text(json.dumps(manifest))
    resumed = trainer(resume=True)
    resumed.setup()
    done = resumed.fit()
    assert done["global_step"] == 2 and done["stopped"] is None


def test_resume_leaves_out_a_damaged_older_checkpoint_with_a_warning_naming_it(tmp_path, data_root, trained):
    """Resume reads whole only the checkpoint it continues from; a truncated older one is named."""
    run = _copy(trained, tmp_path / "run")
    latest = next((run / "checkpoints").glob("step_*.pt"))
    damaged = run / "checkpoints" / "step_00000000.pt"
    damaged.write_bytes(latest.read_bytes()[:4096])
    resumed = _trainer(run, data_root, "train.max_steps=2", resume=True)
    resumed.setup()
    assert resumed.state.global_step == 1
    warned = [n for n in resumed.notes if str(damaged) in n]
    assert len(warned) == 1 and "truncated" in warned[0] and f"resuming from {latest.name}" in warned[0]
    with pytest.raises(CheckpointError, match="truncated"):
        latest_checkpoint([damaged])  # nothing else to resume from: refused, as before


def test_faap_train_resume_of_a_run_killed_before_its_first_checkpoint(tmp_path, data_root, capsys):
    """run.json beside an empty checkpoints/: eval says there is nothing yet and how to go on;
    ``faap train --resume`` starts it from step 0 under the same run id and config."""
    from tests.conftest import faap_in_process, one_error

    run = tmp_path / "run"
    killed = _trainer(run, data_root, "train.val_every=0")
    killed.setup()  # manifest written, then "killed" before any step
    before = json.loads((run / "run.json").read_text())
    code, _, err = faap_in_process(capsys, "eval", str(run), "--device", "cpu", "--quiet")
    one_error(err, 1, code, f"{run} has no checkpoint yet: the run stopped before its first one, so there is")
    assert f"continue it with faap train --resume {run}" in err
    code, _, err = faap_in_process(capsys, "train", "--resume", str(run), "--device", "cpu", "--quiet")
    assert code == 0, err
    after = json.loads((run / "run.json").read_text())
    assert after["run_id"] == before["run_id"]
    for cfg in (before, after):
        cfg["config"]["train"].pop("device")  # --device: a key a resume may change
    assert after["config"] == before["config"]
    assert latest_checkpoint(sorted((run / "checkpoints").glob("*_*.pt"))) is not None
