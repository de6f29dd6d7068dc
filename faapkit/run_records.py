"""The record rows ``faap compare`` reads, shared by the native and the research-run readers
(torch-free: the research reader is imported by a plugin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train_only_records(
    label: str,
    path: Path,
    source: str,
    version: str | None,
    dataset: str | None,
    log: dict[int, dict[str, Any]],
    evaluated: set[Any],
    default_epsilon: float | None = None,
) -> list[dict[str, Any]]:
    """One record per logged epoch that no metrics file covers (native and research runs alike)."""
    return [
        {
            "run": label,
            "path": str(path),
            "source": source,
            "version": version,
            "epoch": epoch,
            "split": None,
            "dataset": dataset,
            "epsilon": row.get("epsilon", default_epsilon),
            "perturbed": None,
            "baseline": None,
            "train": row,
        }
        for epoch, row in log.items()
        if epoch not in evaluated
    ]
