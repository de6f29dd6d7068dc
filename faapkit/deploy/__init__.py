"""Deploying what a run trained: its perturbation in front of a detector, outside faapkit.

- :func:`load_perturbation`, :func:`load_fair_detector` (``loading.py``): a run folder, one seed's
  folder or a checkpoint -> a ``torch.nn.Module`` on ``[0, 1]`` RGB images (``modules.py``);
- ``export.py``: the module as one TorchScript or ONNX file, its parity with the eager module
  checked, and its sidecar JSON (:mod:`faapkit.artifacts.exported` reads both back);
- ``apply.py``: a folder of images or a COCO split perturbed to lossless files with a manifest.

Importing this package imports no torch; the functions do.
"""

from faapkit.deploy.loading import load_fair_detector, load_perturbation

__all__ = ["load_fair_detector", "load_perturbation"]
