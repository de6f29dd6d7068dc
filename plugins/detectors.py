"""Detector configurations: the published DETR models and the tiny one shipped with faapkit."""

from collections.abc import Callable

from faapkit.plugin_api import DetectorSpec, hookimpl

BUILD = "faapkit.detr.build:detr_parts"

_RESNET_COMMON = {
    "hidden_dim": 256,
    "nheads": 8,
    "enc_layers": 6,
    "dec_layers": 6,
    "dim_feedforward": 2048,
    "num_queries": 100,
    "num_classes": 91,
    "dilation": False,
}

# upstream DETR's input size (datasets/coco.py): evaluation at 800 px on the short side, long side
# at most 1333; training draws the short side from 480..800 in steps of 32
UPSTREAM_MIN, UPSTREAM_MAX, UPSTREAM_SCALES = 800, 1333, tuple(range(480, 801, 32))
# the tiny detectors' (the embedded benchmark's 128 px images, as they were trained)
TINY_MIN, TINY_MAX, TINY_SCALES = 128, 213, (112, 120, 128, 136, 144)

_TINY = {
    "backbone": "tinyconv",
    "hidden_dim": 128,
    "nheads": 4,
    "enc_layers": 2,
    "dec_layers": 2,
    "dim_feedforward": 256,
    "num_queries": 16,
    "num_classes": 2,
    "dilation": False,
}


@hookimpl
def faap_register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    register(
        DetectorSpec(
            name="detr-r50",
            factory=BUILD,
            arch={"backbone": "resnet50", **_RESNET_COMMON},
            min_size=UPSTREAM_MIN,
            max_size=UPSTREAM_MAX,
            train_scales=UPSTREAM_SCALES,
            description="facebookresearch/detr DETR-R50 (COCO, 91 classes); load detr-r50-e632da11.pth",
        )
    )
    register(
        DetectorSpec(
            name="detr-r101",
            factory=BUILD,
            arch={"backbone": "resnet101", **_RESNET_COMMON},
            min_size=UPSTREAM_MIN,
            max_size=UPSTREAM_MAX,
            train_scales=UPSTREAM_SCALES,
            description="facebookresearch/detr DETR-R101 (COCO, 91 classes); load detr-r101-2c7b67e5.pth",
        )
    )
    register(
        DetectorSpec(
            name="detr-r18-d64",
            factory=BUILD,
            arch={
                "backbone": "resnet18",
                "hidden_dim": 64,
                "nheads": 4,
                "enc_layers": 2,
                "dec_layers": 2,
                "dim_feedforward": 128,
                "num_queries": 20,
                "num_classes": 91,
                "dilation": False,
            },
            min_size=UPSTREAM_MIN,
            max_size=UPSTREAM_MAX,
            train_scales=UPSTREAM_SCALES,
            description="small upstream-compatible config (ResNet-18, d 64) used for parity tests",
        )
    )
    register(
        DetectorSpec(
            name="detr-synth-tiny",
            factory=BUILD,
            arch=dict(_TINY),
            min_size=TINY_MIN,
            max_size=TINY_MAX,
            train_scales=TINY_SCALES,
            weights="faapkit:weights/detr-synth-tiny.pth",
            benchmark="v1",
            description="tiny DETR (stride-16 conv backbone) trained on the embedded synthetic benchmark",
        )
    )
    register(
        DetectorSpec(
            name="detr-synth-tiny-v2",
            factory=BUILD,
            arch=dict(_TINY),
            min_size=TINY_MIN,
            max_size=TINY_MAX,
            train_scales=TINY_SCALES,
            weights="faapkit:weights/detr-synth-tiny-v2.pth",
            trained_unpadded=True,
            benchmark="v2",
            description="the tiny DETR trained unpadded on the stronger-bias benchmark (faap data synth --bias v2)",
        )
    )
    register(
        DetectorSpec(
            name="detr-synth-tiny-v3",
            factory=BUILD,
            arch=dict(_TINY),
            min_size=TINY_MIN,
            max_size=TINY_MAX,
            train_scales=TINY_SCALES,
            weights="faapkit:weights/detr-synth-tiny-v3.pth",
            trained_unpadded=True,
            benchmark="v3",
            description="the default: detr-synth-tiny-v2 trained to the end of its schedule, on benchmark v3 "
            "(v2's images, val as large as test)",
        )
    )
