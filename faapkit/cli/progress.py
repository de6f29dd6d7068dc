"""Rich live progress for training (stderr) and the end-of-epoch table."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

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
        self.t0 = time.perf_counter()
        self.images0 = 0

    def start_epoch(self, epoch: int, total: int, position: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=total, epoch=epoch, info="")
        self.progress.reset(self.task, total=total, completed=position, epoch=epoch, info="")
        self.t0 = time.perf_counter()
        self.images0 = 0

    def step(self, state: Any, eps: float, lr: float) -> None:
        means = state.meters.means()
        elapsed = max(1e-9, time.perf_counter() - self.t0)
        info = " ".join(f"{k}={means[k]:.3f}" for k in ("total", "loss_det") if k in means)
        info += f" eps={eps:.4f} lr={lr:.2e} {(state.images - self.images0) / elapsed:.1f} img/s"
        if state.skips:
            info += f" skipped={sum(state.skips.values())}"
        self.progress.update(self.task, completed=state.position + 1, info=info)

    def end_epoch(self, row: dict[str, Any]) -> None:
        table = Table(title=f"epoch {row['epoch']}", show_header=True, header_style="bold")
        keys = [k for k in SHOWN if k in row] + ["epsilon", "lr", "skipped", "images_per_s"]
        for k in keys:
            table.add_column(k, justify="right")
        table.add_row(*[_fmt(row.get(k)) for k in keys])
        self.progress.console.print(table)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.stop()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)
