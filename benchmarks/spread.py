"""Min / median / max over a benchmark's repeats: one cell type for every section's tables."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Spread(NamedTuple):
    """The min, median and max of repeated measurements of one number."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            raise ValueError("a spread needs at least one value")
        return cls(float(min(values)), float(np.median(values)), float(max(values)))

    def __str__(self) -> str:
        if self.min == self.max:  # one value (or identical repeats): say it once
            return f"{self.median:.3g}"
        return f"{self.min:.3g} / {self.median:.3g} / {self.max:.3g}"
