"""Shared pydantic option bases for built-in plugins."""

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Strict, closed option model: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


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
