"""Bring your own detector: a small FCOS registered as a faap detector (docs/detectors.md).

Not a DETR: it has no queries, no set criterion and no decoder features. It trains against its
own loss, the loss dict torchvision-style detection models return in training mode, and detects
people on the embedded benchmark's 128 px images. Registering it imports no torch: the factory is
named by a string and lives in ``faap_tiny_fcos_model``.

    pip install -e examples/faap-tiny-fcos-plugin
    faap inspect plugins                      # lists tiny-fcos
    faap train --version level-up --set detector.name=tiny-fcos \\
        --set detector.checkpoint=tiny-fcos.pth --set generator.name=detector-aware
"""

from collections.abc import Callable

from faapkit.plugin_api import DetectorSpec, hookimpl


@hookimpl
def faap_register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    register(
        DetectorSpec(
            name="tiny-fcos",
            factory="faap_tiny_fcos_model:tiny_fcos_parts",
            arch={"channels": 32, "num_classes": 2},
            # DetectorSpec's default input size is the embedded benchmark's (128 px short side)
            description="example: a small FCOS on a four-convolution backbone, trained on its own loss",
        )
    )
