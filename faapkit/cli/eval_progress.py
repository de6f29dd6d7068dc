"""Rich progress of ``faap eval`` on stderr: images inferred, then bootstrap resamples scored."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from faapkit.cli._console import err_console

# short: the bar and the counts must fit 80 columns (bootstrap counts resamples x groups and overall x settings)
LABELS = {"inference": "inference (images)", "bootstrap": "bootstrap (resamples)"}


class EvalProgress:
    """``progress(phase, done, total)`` callback for :class:`faapkit.evaluate.requests.EvalRequest`;
    one bar per phase, removed when the evaluation ends (stdout keeps only the results)."""

    def __init__(self, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not enabled,
        )
        self.tasks: dict[str, Any] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            for task in self.tasks.values():  # the previous phase is over
                self.progress.update(task, visible=False)
            self.tasks[phase] = self.progress.add_task(LABELS.get(phase, phase), total=total)
        self.progress.update(self.tasks[phase], advance=done, total=total)

    def __enter__(self) -> EvalProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()
