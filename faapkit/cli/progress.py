"""Rich live progress for training and one compact line per finished epoch, both on stderr.

The epoch line is ``key=value`` tokens, so a narrow terminal wraps it between tokens and never
inside a number or a name (a table per epoch would cut its headers to "tot…" in a narrow terminal).
"""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from faapkit.cli._console import err_console

SHOWN = (
    "total",
    "loss_det",
    "loss_contrastive",
    "loss_align",
    "loss_wasserstein",
    "loss_fair",
    "d_loss",
    "delta_linf",
    "score_gap",
)


class TrainReporter:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not enabled,
        )
        self.task: Any = None
        self.total = 0
        self.t0 = time.perf_counter()
        self.images0 = 0

    def start_epoch(self, epoch: int, total: int, position: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=total, epoch=epoch, info="")
        self.progress.reset(self.task, total=total, completed=position, epoch=epoch, info="")
        self.total = total
        self.t0 = time.perf_counter()
        self.images0 = 0

    def step(self, state: Any, eps: float, lr: float) -> None:
        means = state.meters.means()
        elapsed = max(1e-9, time.perf_counter() - self.t0)
        info = " ".join(f"{k}={means[k]:.3f}" for k in ("total", "loss_det") if k in means)
        info += f" eps={eps:.4f} lr={lr:.2e} {(state.images - self.images0) / elapsed:.1f} img/s"
        if state.skips:
            info += f" skipped={sum(state.skips.values())}"
        # state.position counts the steps done, this one included; never past the epoch's total
        self.progress.update(self.task, completed=min(state.position, self.total), info=info)

    def validating(self, epoch: int, done: int, total: int) -> None:
        """Validation's progress after an epoch: val images scored of ``total``."""
        if self.task is not None:
            self.progress.reset(self.task, total=total, completed=min(done, total), epoch=f"{epoch} val", info="images")

    def end_epoch(self, row: dict[str, Any]) -> None:
        self.progress.console.print(epoch_line(row), markup=False, highlight=False)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.stop()


def epoch_line(row: dict[str, Any]) -> str:
    """``epoch 3: total=1.982 loss_det=1.982 ... eps=0.09 lr=0.01 34.1img/s val_AP_gap=0.0723``."""
    parts = [f"epoch {row['epoch']}:"]
    parts += [f"{k}={_fmt(row[k])}" for k in SHOWN if k in row]
    parts += [f"eps={_fmt(row.get('epsilon'))}", f"lr={_fmt(row.get('lr'))}"]
    if row.get("skipped"):
        parts.append(f"skipped={row['skipped']}")
    if row.get("images_per_s") is not None:
        parts.append(f"{row['images_per_s']:.1f}img/s")
    val = row.get("val")
    if isinstance(val, dict) and val.get("gap_AP") is not None:
        parts.append(f"val_AP_gap={val['gap_AP']:+.4f}")
    return " ".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)
