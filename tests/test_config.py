"""``faapkit.config``: the embedded benchmark's small defaults apply only when no dataset is named."""

import pytest

from faapkit.config import resolve_config


def test_embedded_defaults_apply_without_a_dataset(registries):
    cfg = resolve_config(registries, version="4th")
    assert cfg.data.root is None
    assert cfg.generator["base_channels"] == 16 and cfg.train.steps_per_epoch == 10


@pytest.mark.parametrize("how", ["override", "file"])
def test_a_named_dataset_gets_the_research_defaults(registries, tmp_path, how):
    if how == "override":
        cfg = resolve_config(registries, version="4th", overrides=["data.root='/data/faap'"])
    else:
        path = tmp_path / "run.toml"
        path.write_text('[data]\nroot = "/data/faap"\n')
        cfg = resolve_config(registries, version="4th", file=path)
    assert cfg.generator["base_channels"] == 32  # the research U-Net, not the embedded 16
    assert cfg.train.steps_per_epoch is None  # a full epoch over the data


def test_embedded_defaults_apply_on_the_benchmark_data_benchmark_names(registries):
    """``data.benchmark`` names an embedded benchmark: its small defaults stay (a v3 row reproduces
    with the budget it was made with)."""
    cfg = resolve_config(registries, version="4th", overrides=["data.benchmark=v3"])
    assert (cfg.data.root, cfg.data.benchmark) == (None, "v3")
    assert cfg.generator["base_channels"] == 16 and cfg.train.steps_per_epoch == 10


def test_explicit_values_win_over_embedded_defaults(registries):
    cfg = resolve_config(registries, version="4th", overrides=["generator.base_channels=8"])
    assert cfg.generator["base_channels"] == 8 and cfg.train.steps_per_epoch == 10


def test_shape_buckets_follow_the_detector_unless_set(registries):
    """Generators train on unpadded batches against a detector trained on unpadded batches."""
    reg = registries
    assert reg.detectors.get("detr-synth-tiny-v2").trained_unpadded
    assert not reg.detectors.get("detr-synth-tiny").trained_unpadded
    assert reg.detectors.get("detr-synth-tiny-v3").trained_unpadded
    assert resolve_config(reg, version="level-up").data.shape_buckets  # the default detector: unpadded
    assert not resolve_config(reg, version="level-up", overrides=["detector.name=detr-synth-tiny"]).data.shape_buckets
    v2 = ["detector.name=detr-synth-tiny-v2"]
    assert resolve_config(reg, version="level-up", overrides=v2).data.shape_buckets
    assert not resolve_config(reg, version="level-up", overrides=[*v2, "data.shape_buckets=false"]).data.shape_buckets
    # other weights than the packaged ones follow their own training record (a pretrain file's:
    # tests/train/test_pretrain_buckets.py); one that is not there records nothing (the loader refuses it)
    other = [*v2, "detector.checkpoint=/nonexistent/weights.pth"]
    assert not resolve_config(reg, version="level-up", overrides=other).data.shape_buckets


def test_the_names_and_sizes_the_core_defaults_to_are_the_registered_ones(registries):
    """Each default is defined once: the core names the built-in plugin's tiny detectors and default
    version (faapkit.config.defaults), and their input size is DetectorSpec's default. This holds
    the two sides of the plugin boundary together."""
    from faapkit.config import DataConfig
    from faapkit.config.defaults import BENCHMARKS, DEFAULT_DETECTOR, DEFAULT_VERSION, TINY_DETECTORS
    from faapkit.data.synth import BIASES
    from faapkit.plugins.specs import EMBEDDED_MAX_SIZE, EMBEDDED_MIN_SIZE, EMBEDDED_TRAIN_SCALES
    from faapkit.train.pretrain import PRESETS

    size = (EMBEDDED_MIN_SIZE, EMBEDDED_MAX_SIZE, EMBEDDED_TRAIN_SCALES)
    assert size == (128, 213, (112, 120, 128, 136, 144))
    runs_on = {"v3": "v4"}  # v3's detector's runs use v3's val and test with train images it never saw
    for bias, name in TINY_DETECTORS.items():
        spec = registries.detectors.get(name)
        weights = f"faapkit:weights/{name}.pth"
        assert (spec.name, spec.benchmark, spec.weights) == (name, runs_on.get(bias, bias), weights)
        assert (spec.min_size, spec.max_size, spec.train_scales) == size
    assert DEFAULT_DETECTOR in registries.detectors and DEFAULT_VERSION in registries.versions
    assert tuple(BIASES) == BENCHMARKS  # data.benchmark's values
    data = DataConfig()
    assert (data.min_size, data.max_size, tuple(data.train_scales)) == size
    for preset in PRESETS.values():
        assert TINY_DETECTORS[preset.bias] == preset.detector and preset.init in {None, *TINY_DETECTORS.values()}
        assert (preset.min_size, preset.max_size, preset.scales) == size
