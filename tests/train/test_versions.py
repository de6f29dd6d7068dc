"""Every registered version trains end to end on the tiny detector; exact resume at a step boundary."""

from __future__ import annotations

import math

import pytest
import torch

from faapkit.config import resolve_config
from faapkit.generators.perturb import ResearchUNetGenerator
from faapkit.io import load_checkpoint
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

REG = Registries.from_plugin_manager(make_plugin_manager())
# validation at the end on 16 images: run through, not measured (the val tests measure it)
FAST = ["train.batch_size=4", "data.limit_images=60", "train.epochs=2", "train.steps_per_epoch=2"]
FAST.append("train.val_limit_images=16")


@pytest.mark.parametrize("version", sorted(REG.versions))
def test_version_trains_end_to_end(version, tmp_path, synth_root):
    cfg = resolve_config(REG, version=version, overrides=FAST)
    trainer = Trainer(cfg, REG, tmp_path / version)
    trainer.setup()
    g0 = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    det0 = {k: v.clone() for k, v in trainer.detector.state_dict().items()}
    summary = trainer.fit()
    assert summary["global_step"] == 4 and summary["epochs_done"] == 2
    log = trainer.run.read_log()
    assert [r["epoch"] for r in log] == [0, 1]
    numeric = {k: v for r in log for k, v in r.items() if isinstance(v, float)}
    assert all(math.isfinite(v) for v in numeric.values()), numeric
    assert "total" in log[-1] and "loss_det" in log[-1]
    changed = any(not torch.equal(v, trainer.generator.state_dict()[k]) for k, v in g0.items() if v.is_floating_point())
    assert changed, "generator did not change"
    assert all(torch.equal(v, trainer.detector.state_dict()[k]) for k, v in det0.items())
    ckpt = load_checkpoint(trainer.run.epoch_checkpoint(1))
    assert ckpt["epsilon"] == pytest.approx(trainer.generator.epsilon) and ckpt["version"] == version


def test_resume_mid_epoch_is_exact(tmp_path, synth_root):
    # two steps an epoch, stopped after three: one step into epoch 1
    overrides = ["train.batch_size=4", "data.limit_images=60", "train.epochs=2", "train.steps_per_epoch=2"]
    overrides.append("train.val_limit_images=16")
    full = Trainer(resolve_config(REG, version="4th", overrides=overrides), REG, tmp_path / "full")
    full.setup()
    full.fit()
    part = Trainer(
        resolve_config(REG, version="4th", overrides=[*overrides, "train.max_steps=3"]), REG, tmp_path / "part"
    )
    part.setup()
    part.fit()
    assert part.state.epoch == 1 and part.state.position == 1
    resumed = Trainer(resolve_config(REG, version="4th", overrides=overrides), REG, tmp_path / "part", resume=True)
    resumed.setup()
    resumed.fit()
    for k, v in full.generator.state_dict().items():
        assert torch.equal(v, resumed.generator.state_dict()[k]), k
    assert [r["epoch"] for r in resumed.run.read_log()] == [0, 1]
    assert resumed.run.read_log()[1]["total"] == full.run.read_log()[1]["total"]


def _train_generator(tmp_path, name: str, extra: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """(the update of every floating generator tensor, the epoch's logged means) after 2 steps."""
    overrides = ["train.batch_size=4", "data.limit_images=40", "train.epochs=1", "train.steps_per_epoch=2", *extra]
    overrides.append("train.val_every=0")  # what is compared is the training, not a val score
    trainer = Trainer(resolve_config(REG, version="4th", overrides=overrides), REG, tmp_path / name)
    trainer.setup()
    init = {k: v.clone() for k, v in trainer.generator.state_dict().items() if v.is_floating_point()}
    trainer.fit()
    final = trainer.generator.state_dict()
    return {k: final[k] - v for k, v in init.items()}, trainer.run.read_log()[0]


def _assert_same_training(a, b) -> None:
    """Same losses up to float rounding and the same update direction (Adam turns rounding-level
    gradient differences into lr-sized steps on near-zero gradients, so weights are not compared)."""
    (update_a, log_a), (update_b, log_b) = a, b
    for key in ("total", "loss_det", "delta_linf"):
        assert log_a[key] == pytest.approx(log_b[key], rel=1e-4), key
    flat_a = torch.cat([u.flatten() for u in update_a.values()])
    flat_b = torch.cat([update_b[k].flatten() for k in update_a])
    assert flat_a.abs().sum() > 0
    assert torch.nn.functional.cosine_similarity(flat_a, flat_b, dim=0) > 0.95


def test_channels_last_trains_the_same_generator(tmp_path, synth_root):
    """A memory format is a speed option: same steps, same losses up to float rounding."""
    eager = _train_generator(tmp_path, "nchw", [])
    nhwc = _train_generator(tmp_path, "nhwc", ["train.channels_last=true"])
    _assert_same_training(eager, nhwc)


@pytest.mark.slow
def test_compiled_generator_trains_the_same_generator(tmp_path, synth_root):
    """``train.compile`` compiles the network body only; checkpoints keep the research keys."""
    eager = _train_generator(tmp_path, "eager", [])
    compiled = _train_generator(tmp_path, "compiled", ["train.compile=true"])
    _assert_same_training(eager, compiled)
    ckpt = load_checkpoint(tmp_path / "compiled" / "checkpoints" / "epoch_0000.pt")
    assert set(ckpt["generator"]) == set(ResearchUNetGenerator().state_dict())


def test_shape_buckets_feed_the_detector_unpadded_batches(tmp_path, synth_root):
    """``data.shape_buckets``: every training batch has one size and scale, so no row is padded
    (a detector trained unpadded otherwise trains its generator on inputs evaluation never shows)."""
    # detr-synth-tiny was trained on padded batches, so its generators train padded unless set
    overrides = ["train.batch_size=4", "data.limit_images=60", "train.epochs=1", "train.steps_per_epoch=6"]
    overrides += ["detector.name=detr-synth-tiny", "train.val_every=0"]  # the training batches are the point
    padded = Trainer(resolve_config(REG, version="level-up", overrides=overrides), REG, tmp_path / "p")
    padded.setup()
    assert any(bool(batch.mask.any()) for batch in padded.loader)
    cfg = resolve_config(REG, version="level-up", overrides=[*overrides, "data.shape_buckets=true"])
    bucketed = Trainer(cfg, REG, tmp_path / "b")
    bucketed.setup()
    batches = list(bucketed.loader)
    assert len(batches) == 6 and not any(bool(batch.mask.any()) for batch in batches)
    assert bucketed.fit()["global_step"] == 6


def test_a_run_written_before_a_config_key_existed_resumes(tmp_path, synth_root):
    """Keys added later (here ``data.shape_buckets``) read as their defaults, the behaviour the
    run was trained with, instead of refusing the resume as a changed config."""
    import json

    overrides = ["train.batch_size=4", "data.limit_images=60", "train.epochs=2", "train.steps_per_epoch=2"]
    overrides.append("detector.name=detr-synth-tiny")  # the detector runs of that time trained against
    overrides.append("train.val_every=0")  # the resume is the point, not a val score
    part = Trainer(resolve_config(REG, version="4th", overrides=[*overrides, "train.max_steps=2"]), REG, tmp_path / "r")
    part.setup()
    part.fit()
    manifest_path = tmp_path / "r" / "run.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["dataset"]["group_level"] == "image"  # what data.group_level "auto" resolved to
    del manifest["config"]["data"]["shape_buckets"], manifest["dataset"]["group_level"]  # neither was recorded then
    manifest_path.write_text(json.dumps(manifest))
    resumed = Trainer(resolve_config(REG, version="4th", overrides=overrides), REG, tmp_path / "r", resume=True)
    resumed.setup()
    assert resumed.fit()["global_step"] == 4


def test_a_run_without_a_dataset_trains_on_its_detectors_benchmark(tmp_path, synth_root, monkeypatch):
    """No ``data.root``: the embedded benchmark the detector was trained on, so the ``v2`` detector
    is not trained against (and its run then evaluated on) the default benchmark's images."""
    import faapkit.train.parts as parts_module

    asked: list[str | None] = []

    def embedded_for(spec, checkpoint, recorded=None, benchmark=None):
        asked.append(spec.benchmark)
        return synth_root

    monkeypatch.setattr(parts_module, "embedded_dataset_for", embedded_for)
    overrides = ["train.batch_size=4", "data.limit_images=20", "train.epochs=1", "train.steps_per_epoch=1"]
    for detector, name in (("detr-synth-tiny", "a"), ("detr-synth-tiny-v2", "b")):
        cfg = resolve_config(REG, version="level-up", overrides=[*overrides, f"detector.name={detector}"])
        Trainer(cfg, REG, tmp_path / name).setup()
    assert asked == ["v1", "v2"]


def test_data_benchmark_trains_on_that_benchmarks_cache_folder_and_records_it(tmp_path, synth_root, monkeypatch):
    """``data.benchmark=v3`` trains on v3's cache folder (the former default's runs), not its
    detector's v4, and the run records that folder, on which it resumes and is evaluated. The
    folder holds the session's images under a v3 manifest: rendering v3 is not the point."""
    import json

    cache = tmp_path / "cache"
    monkeypatch.setenv("FAAP_CACHE_DIR", str(cache))
    folder = cache / "synth-v3-seed0"
    folder.mkdir(parents=True)
    manifest = json.loads((synth_root.parent / "manifest.json").read_text())
    manifest.pop("train_seed", None)
    (folder / "manifest.json").write_text(json.dumps({**manifest, "bias": "v3"}))
    (folder / "coco").symlink_to(synth_root, target_is_directory=True)
    overrides = ["train.batch_size=4", "data.limit_images=20", "train.epochs=1", "train.steps_per_epoch=1"]
    cfg = resolve_config(REG, version="level-up", overrides=[*overrides, "data.benchmark=v3"])
    trainer = Trainer(cfg, REG, tmp_path / "r")
    trainer.setup()
    assert trainer.data.root == folder / "coco"
    assert trainer.run.read_manifest()["dataset"]["root"] == str(folder / "coco")


def test_a_run_resumes_on_the_benchmark_it_recorded(tmp_path, synth_root, monkeypatch):
    """A run made before the embedded data followed the detector (here: the v2 detector on v1's
    images) resumes on the images it recorded, not on its detector's benchmark."""
    import faapkit.train.parts as parts_module

    overrides = ["train.batch_size=4", "data.limit_images=20", "train.epochs=2", "train.steps_per_epoch=1"]
    overrides += ["detector.name=detr-synth-tiny-v2", "train.val_every=0"]  # the images resumed on are the point
    with monkeypatch.context() as patch:
        patch.setattr(parts_module, "embedded_dataset_for", lambda spec, checkpoint, **_: synth_root)
        part = Trainer(
            resolve_config(REG, version="level-up", overrides=[*overrides, "train.max_steps=1"]), REG, tmp_path / "r"
        )
        part.setup()
        part.fit()
    resumed = Trainer(resolve_config(REG, version="level-up", overrides=overrides), REG, tmp_path / "r", resume=True)
    resumed.setup()
    assert resumed.data.root == part.data.root and resumed.fit()["global_step"] == 2
