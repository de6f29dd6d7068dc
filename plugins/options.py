"""Shared pydantic option bases for built-in plugins."""

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Strict, closed option model: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)
