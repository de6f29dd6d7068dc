"""One short level-up run (its default generator reads the frozen DETR) shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def deploy_data(tmp_path_factory) -> Path:
    """A small embedded benchmark (3 + 3 images per split), COCO layout; v3's images, on which
    test_apply measured what 8-bit rounding does to the run's AP."""
    from faapkit.data.synth import SynthSpec, write_synthetic

    splits = (("train", 3, 3), ("val", 3, 3), ("test", 3, 3))
    spec = SynthSpec(seed=3, splits=splits, bias="v3")
    return write_synthetic(tmp_path_factory.mktemp("deploy-data"), spec) / "coco"


@pytest.fixture(scope="session")
def deploy_run(tmp_path_factory, deploy_data) -> Path:
    """Two level-up steps with validation, so the run chose a best.pt (8-channel generator; an
    unperturbed val gap set wide, so that its epoch narrows it); a
    large learning rate so the perturbation is a few grey levels already (about 2 on average,
    near the bound's 5), not lost in 8-bit rounding."""
    from faapkit.config import resolve_config
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries
    from faapkit.train.trainer import Trainer

    reg = Registries.from_plugin_manager(make_plugin_manager())
    overrides = [f"data.root='{deploy_data}'", "train.batch_size=4", "train.epochs=1", "train.steps_per_epoch=2"]
    overrides += ["train.val_every=1", "train.select_max_advantaged_drop=1.0", "generator.channels=8"]
    overrides += ["eval.bootstrap=0", "train.lr=0.05"]
    cfg = resolve_config(reg, version="level-up", overrides=overrides)
    assert cfg.generator["name"] == "transformer-aware"
    folder = tmp_path_factory.mktemp("deploy-run") / "run"
    trainer = Trainer(cfg, reg, folder)
    trainer.setup()
    # only an epoch that narrows the unperturbed val gap is chosen, and two steps seldom do: these
    # tests load a chosen best.pt, so the gap this run is compared with is set wide enough
    assert trainer.validator is not None
    trainer.validator.baseline["gap_AP"] = 1.0
    trainer.fit()
    assert (folder / "checkpoints" / "best.pt").is_file()
    return folder


def eval_json(*args: str) -> dict:
    """``faap eval ARGS --json`` (no bootstrap unless asked, no baseline cache) that must succeed."""
    import json

    from tests.conftest import run_here

    extra = [] if "--bootstrap" in args else ["--bootstrap", "0"]
    code, out, err = run_here("eval", *args, *extra, "--json", "--quiet", "--no-cache")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="session")
def run_metrics(deploy_run, tmp_path_factory) -> dict:
    """``faap eval RUN`` on its test split: the numbers the deployed forms must reproduce."""
    return eval_json(str(deploy_run), "--out", str(tmp_path_factory.mktemp("run-eval") / "m.json"))


@pytest.fixture(scope="session")
def exports(deploy_run, tmp_path_factory) -> dict[str, Path]:
    """``faap export RUN`` in both formats (the perturbation): format -> file."""
    from tests.conftest import run_here

    folder = tmp_path_factory.mktemp("exports")
    files = {"torchscript": folder / "p.ts", "onnx": folder / "p.onnx"}
    for fmt, out in files.items():
        code, _, err = run_here("export", str(deploy_run), "--format", fmt, "--out", str(out))
        assert code == 0, err
    return files
