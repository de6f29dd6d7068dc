"""Helpers shared by the built-in version plugins (the options base is the public API's)."""

from faapkit.plugin_api import Options

__all__ = ["Options", "research_train_defaults"]


def research_train_defaults(*, batch_size: int, max_norm: float, augment: str, weight_decay: float = 0.01) -> dict:
    """The ``train`` section the research scripts used: 24 epochs at lr 1e-4 (docs/research-defaults.md)."""
    return {
        "batch_size": batch_size,
        "epochs": 24,
        "lr": 1e-4,
        "weight_decay": weight_decay,
        "max_norm": max_norm,
        "augment": augment,
    }
