"""faapkit: fairness-aware adversarial perturbations for frozen DETR detectors.

Importing this package is cheap: it never imports torch. Heavy parts (``faapkit.detr``,
``faapkit.train``, ``faapkit.evaluate``, ``faapkit.data``) are imported by the commands that need them.
"""

from faapkit.plugins.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
