"""faapkit: fairness-aware adversarial perturbations for frozen DETR detectors.

Importing this package is cheap: it never imports torch. Heavy parts (``faapkit.detr``,
``faapkit.train``, ``faapkit.evaluate``, ``faapkit.data``) are imported by the commands that need them.

The public deployment API, ``load_perturbation(path)`` and ``load_fair_detector(path)``
(:mod:`faapkit.deploy`), is resolved on first attribute access: this module sits at the bottom of
the layering (docs/architecture.md), so it names the module that defines them by string instead
of importing it.
"""

from typing import Any

from faapkit.plugins.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl", "load_fair_detector", "load_perturbation"]

_PUBLIC = {"load_perturbation": "faapkit.deploy", "load_fair_detector": "faapkit.deploy"}


def __getattr__(name: str) -> Any:
    """The deployment API, imported on first use (``import faapkit`` stays torch-free)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'faapkit' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(_PUBLIC[name]), name)
