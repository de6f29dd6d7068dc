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


def _tiny(name: str, *, benchmark: str, description: str, trained_unpadded: bool = False) -> DetectorSpec:
    """A tiny detector of the embedded benchmark: ``_TINY``'s architecture at DetectorSpec's default
    input size (the benchmark's 128 px images, as it was trained), its weights shipped with faapkit
    under its name."""
    return DetectorSpec(
        name=name,
        factory=BUILD,
        arch=dict(_TINY),
        weights=f"faapkit:weights/{name}.pth",
        trained_unpadded=trained_unpadded,
        benchmark=benchmark,
        description=description,
    )


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
        _tiny(
            "detr-synth-tiny",
            benchmark="v1",
            description="tiny DETR (stride-16 conv backbone) trained on the embedded synthetic benchmark",
        )
    )
    register(
        _tiny(
            "detr-synth-tiny-v2",
            benchmark="v2",
            trained_unpadded=True,
            description="the tiny DETR trained unpadded on the stronger-bias benchmark (faap data synth --bias v2)",
        )
    )
    register(
        _tiny(
            "detr-synth-tiny-v3",
            benchmark="v4",
            trained_unpadded=True,
            description="the default: detr-synth-tiny-v2 trained to the end of its schedule, on benchmark v3 "
            "(v2's images, val as large as test); its runs use v4 (v3 with train images it never saw)",
        )
    )
