"""torchvision's COCO detectors as frozen detectors (``faapkit.tvdet``): Faster R-CNN (ResNet-50
FPN, MobileNetV3-Large FPN and its 320 px variant), RetinaNet, FCOS and SSDlite, under torchvision's
builder names. Nothing is downloaded: ``detector.checkpoint`` names torchvision's own checkpoint
file (the name each description gives), loaded strictly by key. Each spec's input size is the
model's own (its ``GeneralizedRCNNTransform``); training trains at that one scale, as torchvision's
references train them. They train against their own loss (the loss dict torchvision's models
return in training mode) and give no decoder features, so versions with a head refuse them."""

from collections.abc import Callable

from faapkit.plugin_api import DetectorSpec, hookimpl

BUILD = "faapkit.tvdet.build:torchvision_parts"

# (name, min_size, max_size, what it is, torchvision's checkpoint file of its COCO weights)
_DETECTORS = (
    ("fasterrcnn_resnet50_fpn", 800, 1333, "Faster R-CNN ResNet-50 FPN", "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"),
    (
        "fasterrcnn_mobilenet_v3_large_fpn",
        800,
        1333,
        "Faster R-CNN MobileNetV3-Large FPN",
        "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
    ),
    (
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        320,
        640,
        "Faster R-CNN MobileNetV3-Large 320 FPN (low resolution)",
        "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth",
    ),
    ("retinanet_resnet50_fpn", 800, 1333, "RetinaNet ResNet-50 FPN", "retinanet_resnet50_fpn_coco-eeacb38b.pth"),
    ("fcos_resnet50_fpn", 800, 1333, "FCOS ResNet-50 FPN", "fcos_resnet50_fpn_coco-99b0c9b7.pth"),
    # SSDlite resizes every image to 320 x 320 itself; faapkit hands it at most 320 px a side
    (
        "ssdlite320_mobilenet_v3_large",
        320,
        320,
        "SSDlite320 MobileNetV3-Large",
        "ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
    ),
)


@hookimpl
def faap_register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    for name, min_size, max_size, what, checkpoint in _DETECTORS:
        register(
            DetectorSpec(
                name=name,
                factory=BUILD,
                arch={"model": name},
                min_size=min_size,
                max_size=max_size,
                train_scales=(min_size,),
                description=f"torchvision {what} (COCO, 91 classes, own loss); load {checkpoint}",
            )
        )
