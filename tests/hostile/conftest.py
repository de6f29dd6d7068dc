"""What the hostile pass attacks, built once per session and copied for each case: a tiny
benchmark, a two-epoch level-up run (evaluated, exported in both formats) and a two-seed 4th set
(evaluated)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_here


def tiny_sets(root: Path) -> list[str]:
    """``--set`` arguments of a one-step 4th run on ``root`` (8-channel U-Net, no validation)."""
    sets = [f"data.root='{root}'", "train.batch_size=4", "train.epochs=1", "train.steps_per_epoch=1"]
    sets += ["generator.base_channels=8", "train.val_every=0", "eval.bootstrap=0"]
    return [a for s in sets for a in ("--set", s)]


def _ok(*args: str) -> None:
    code, _, err = run_here(*args)
    assert code == 0, err


@pytest.fixture(scope="session")
def hostile_world(tmp_path_factory) -> dict[str, Path]:
    """Paths of the pristine things each case copies: data, run, set, exports."""
    return build_world(tmp_path_factory.mktemp("hostile-world"))


def build_world(base: Path) -> dict[str, Path]:
    """Write the benchmark, the run, the seed set and the exports under ``base``."""
    from faapkit.config import resolve_config
    from faapkit.data.synth import SynthSpec, write_synthetic
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries
    from faapkit.train.trainer import Trainer

    splits = (("train", 4, 4), ("val", 3, 3), ("test", 3, 3))
    data = write_synthetic(base / "synth", SynthSpec(seed=3, splits=splits)) / "coco"
    reg = Registries.from_plugin_manager(make_plugin_manager())
    overrides = [f"data.root='{data}'", "train.batch_size=4", "train.epochs=2", "train.steps_per_epoch=1"]
    overrides += ["train.val_every=1", "train.select_max_advantaged_drop=1.0", "generator.channels=8"]
    overrides += ["eval.bootstrap=0", "train.lr=0.05"]
    run = base / "run"
    trainer = Trainer(resolve_config(reg, version="level-up", overrides=overrides), reg, run)
    trainer.setup()
    # a chosen best.pt needs an epoch that narrows the unperturbed val gap: set wide, as the deploy tests do
    assert trainer.validator is not None
    trainer.validator.baseline["gap_AP"] = 1.0
    trainer.fit()
    assert (run / "checkpoints" / "best.pt").is_file()
    _ok("eval", str(run), "--bootstrap", "20", "--quiet")
    seedset = base / "set"
    _ok("train", "--version", "4th", "--seeds", "0-1", "--out", str(seedset), "--quiet", *tiny_sets(data))
    _ok("eval", str(seedset), "--bootstrap", "10", "--quiet")
    exports = base / "exports"
    exports.mkdir()
    for fmt, name in (("torchscript", "p.ts"), ("onnx", "p.onnx")):
        _ok("export", str(run), "--format", fmt, "--out", str(exports / name))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return {"data": data, "run": run, "set": seedset, "exports": exports}
