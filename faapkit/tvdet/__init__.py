"""torchvision's detection models as frozen detectors: Faster R-CNN, RetinaNet, FCOS and SSDlite,
built without any download (``weights=None, weights_backbone=None``) in the layout of torchvision's
own COCO checkpoints (``build.py``), behind faapkit's detector contract with their own input
policy, detections and training loss (``wrapper.py``). The DETR code stays in ``faapkit.detr``."""
