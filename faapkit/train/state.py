"""Where a run stands: its training position and meters within the epoch (``EpochState``) and the
global random state a checkpoint snapshots and a resumed run restores."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from faapkit.train.meters import Meters


@dataclass
class EpochState:
    """``epoch`` (0-based) and ``position`` (batches done in it), ``global_step`` over the run; the
    rest is the current epoch's bookkeeping (means, skip reasons, non-finite steps, throughput)."""

    epoch: int = 0
    position: int = 0
    global_step: int = 0
    meters: Meters = field(default_factory=Meters)
    skips: Counter = field(default_factory=Counter)
    nonfinite: int = 0
    images: int = 0
    seconds: float = 0.0

    def next_epoch(self) -> None:
        """Move to the start of the next epoch with fresh epoch bookkeeping."""
        self.epoch += 1
        self.position = 0
        self.meters = Meters()
        self.skips = Counter()
        self.nonfinite = 0
        self.images = 0
        self.seconds = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global torch (and CUDA) and Python generators' state, as a checkpoint stores it."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
