"""NaN-aware running means with counts (research P11: skipped batches never enter an average)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class Meters:
    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            v = float(value)
            if math.isfinite(v):
                self.sums[key] = self.sums.get(key, 0.0) + v
                self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums if self.counts[k]}

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sums = {k: float(v) for k, v in state.get("sums", {}).items()}
        self.counts = {k: int(v) for k, v in state.get("counts", {}).items()}
