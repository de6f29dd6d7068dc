"""The defaults the configuration layers in and the built-in names it refers to, each defined once.

The tiny detectors and the default version are registered by the built-in plugins
(``faap_plugins.detectors``, ``faap_plugins.level_up``); the core names them here, for its defaults and
for the pretraining presets that reproduce the detectors' weights. The input size of those
detectors (the embedded benchmark's) is ``faapkit.plugins.specs.EMBEDDED_MIN_SIZE`` and its
neighbours, the defaults of every ``DetectorSpec``.
"""

from __future__ import annotations

from typing import Any

# the version a run trains when nothing names one
DEFAULT_VERSION = "level-up"

# the checkpoint-selection guard: how much val AP the advantaged group may lose (train.selection)
DEFAULT_MAX_ADVANTAGED_DROP = 0.005

# the tiny detectors of the embedded benchmark, by the benchmark bias each was trained on
# (faapkit.data.synth.BIASES): v1 the weaker bias, v2 a stronger one, v3 v2's images with a larger val split
TINY_DETECTORS: dict[str, str] = {"v1": "detr-synth-tiny", "v2": "detr-synth-tiny-v2", "v3": "detr-synth-tiny-v3"}
# the embedded benchmark's biases (faapkit.data.synth.BIASES), the values of data.benchmark
BENCHMARKS: tuple[str, ...] = ("v1", "v2", "v3", "v4")
# the detector of the default benchmark (faapkit.data.synth.DEFAULT_BIAS, v4: v3's val and test, and
# train images this detector never saw)
DEFAULT_DETECTOR = TINY_DETECTORS["v3"]

# Without a dataset of its own a run trains on the embedded benchmark, which is small and must train on
# 2 CPU cores in minutes: short epochs keep the paper's 24-epoch schedules, and a 16-channel generator
# quarters the research U-Net's cost on its 128 px images. Explicit values win.
EMBEDDED_DEFAULTS: dict[str, dict[str, Any]] = {"train": {"steps_per_epoch": 10}}
EMBEDDED_UNET_DEFAULTS: dict[str, Any] = {"base_channels": 16}
