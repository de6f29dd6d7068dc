"""Experiment-tracker output: a training run's scalars, handed to the registered loggers.

Loggers are registered through ``faap_register_loggers`` (built-ins: ``csv`` writes
``RUN/metrics.csv``, ``tensorboard`` writes event files into ``RUN/tb/``) and chosen with
``train.loggers``. The trainer reports two kinds of rows, each a ``split`` of named scalars at a
global step:

- ``train``: every ``train.log_every`` steps, the mean of each engine meter (losses, delta norms,
  group counts, the strategy's terms) over the steps since the previous row, with the epoch's
  ``epsilon``, ``lr`` and schedule weights. Under DDP the mean is over every process's steps.
- ``val``: at each validated epoch, per-group val ``AP/<group>`` and ``AR/<group>``, ``gap_AP``
  and ``gap_AP_change`` (against the unperturbed val split).

Only the main process writes. A resumed run continues from a checkpoint's step ``S``: loggers
drop what they wrote after ``S`` (the rows a killed process wrote past its last checkpoint), and
the meters of a half-filled window are checkpointed, so a resumed run logs the same rows as an
uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from faapkit.distributed import DistInfo, gather_objects
from faapkit.errors import ConfigError, FaapError
from faapkit.io import atomic_write_text
from faapkit.train.meters import Meters


class MetricsLogger(Protocol):
    """What a logger factory returns. ``open`` is called once before the first step, ``close``
    at the end of training and on any error."""

    def open(self, start_step: int) -> None:
        """Start writing; forget anything logged at a step after ``start_step`` (0 for a fresh run)."""

    def log(self, split: str, step: int, epoch: int, scalars: Mapping[str, float]) -> None:
        """Record finite ``scalars`` (name -> value) of ``split`` at global ``step``."""

    def close(self) -> None:
        """Flush and release files."""


CSV_FIELDS = ("step", "epoch", "split", "name", "value")


class CSVLogger:
    """``RUN/metrics.csv`` in long form: one row ``step,epoch,split,name,value`` per scalar, so a
    name appearing mid-run (a term of a later epoch) never shifts columns. Values are written with
    ``repr`` (they read back bit-exactly); every call is flushed, so a killed run keeps its rows."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self._file: io.TextIOWrapper | None = None

    def _rows_up_to(self, step: int) -> list[list[str]]:
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines.pop()  # cut short by a killed process: its number may be truncated, never keep it
        rows = list(csv.reader(lines))
        if not rows or tuple(rows[0]) != CSV_FIELDS:
            raise FaapError(f"{self.path} is not a faapkit metrics file (header {rows[0] if rows else 'missing'})")
        kept = []
        for number, row in enumerate(rows[1:], start=2):
            try:
                if int(row[0]) <= step:
                    kept.append(row)
            except (IndexError, ValueError):
                raise FaapError(f"{self.path} line {number} is corrupt: {','.join(row)!r}") from None
        return kept

    def open(self, start_step: int) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        writer.writerows(self._rows_up_to(start_step) if start_step > 0 else [])
        atomic_write_text(self.path, buffer.getvalue())
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file, lineterminator="\n")

    def log(self, split: str, step: int, epoch: int, scalars: Mapping[str, float]) -> None:
        assert self._file is not None, "CSVLogger.log before open"
        self._writer.writerows([step, epoch, split, name, repr(float(v))] for name, v in scalars.items())
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoardLogger:
    """Event files in ``RUN/tb/``, tags ``<split>/<name>`` (e.g. ``train/loss_det``,
    ``val/AP/female``). On resume the new writer purges events after the checkpoint's step, so
    TensorBoard shows each step once."""

    def __init__(self, run_dir: Path, flush_secs: int = 30) -> None:
        try:  # checked when the trainer is set up, before anything is trained or written
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "train.loggers includes 'tensorboard' but the tensorboard package is not installed "
                "(pip install 'faapkit[tensorboard]', or remove it from train.loggers)"
            ) from None
        self._writer_class = SummaryWriter
        self.path = Path(run_dir) / "tb"
        self.flush_secs = flush_secs
        self._writer: Any = None

    def open(self, start_step: int) -> None:
        # purge_step hides events at steps >= it that earlier files of this folder hold
        self._writer = self._writer_class(str(self.path), purge_step=start_step + 1, flush_secs=self.flush_secs)

    def log(self, split: str, step: int, epoch: int, scalars: Mapping[str, float]) -> None:
        for name, value in scalars.items():
            self._writer.add_scalar(f"{split}/{name}", value, global_step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _finite(scalars: Mapping[str, Any]) -> dict[str, float]:
    """Plain finite floats only: a missing value is left out, never written as a number."""
    out = {}
    for name, value in scalars.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def _merged(states: Sequence[Mapping[str, Any]]) -> Meters:
    merged = Meters()
    for state in states:
        for key, total in state.get("sums", {}).items():
            merged.sums[key] = merged.sums.get(key, 0.0) + float(total)
            merged.counts[key] = merged.counts.get(key, 0) + int(state["counts"][key])
    return merged


class ScalarLog:
    """The run's loggers (the main process's; empty elsewhere) and the meters of the current window.

    ``active`` is the same on every process (``train.loggers`` is not empty): under DDP all of them
    take part in gathering the window, whether or not they write."""

    def __init__(self, loggers: Sequence[MetricsLogger], *, every: int, active: bool, dist: DistInfo) -> None:
        self.loggers = list(loggers)
        self.every = every
        self.active = active
        self.dist = dist
        self.window = Meters()

    def open(self, start_step: int) -> None:
        for logger in self.loggers:
            logger.open(start_step)

    def update(self, values: Mapping[str, float]) -> None:
        """Add one optimiser step's meter values (plain numbers) to the window."""
        self.window.update(values)

    def _gathered(self) -> Meters:
        """The window summed over all processes (a collective: every process calls it)."""
        if not self.dist.enabled:
            return self.window
        return _merged(gather_objects(self.window.state_dict(), self.dist))

    def after_step(self, step: int, epoch: int, settings: Mapping[str, float]) -> None:
        """At every ``every``-th global step, write the window's means and start a new window."""
        if not self.active or step % self.every:
            return
        means = self._gathered().means()
        self.window = Meters()
        self._emit("train", step, epoch, {**settings, **means})

    def log_val(self, step: int, epoch: int, val: Mapping[str, Any], baseline: Mapping[str, Any]) -> None:
        """Per-group val AP/AR, the gap of a validated epoch and its change from the unperturbed
        gap, each gap with its CI bounds (``..._ci_lo`` / ``..._ci_hi``) when validation drew them
        (main process only)."""
        scalars: dict[str, Any] = {f"AP/{g}": v for g, v in val["AP"].items()}
        scalars.update({f"AR/{g}": v for g, v in val["AR"].items()})
        scalars["gap_AP"] = val["gap_AP"]
        scalars["gap_AP_change"] = val["gap_AP"] - baseline["gap_AP"]
        for name in ("gap_AP", "gap_AP_change"):  # the paired bootstrap CI where validation drew one
            ci = val.get(f"{name}_ci")
            if ci:
                scalars[f"{name}_ci_lo"], scalars[f"{name}_ci_hi"] = ci
        self._emit("val", step, epoch, scalars)

    def _emit(self, split: str, step: int, epoch: int, scalars: Mapping[str, Any]) -> None:
        finite = _finite(scalars)
        for logger in self.loggers:
            logger.log(split, step, epoch, finite)

    def window_state(self) -> dict[str, Any]:
        """The window for a checkpoint: every process's steps (a collective under DDP)."""
        return self._gathered().state_dict() if self.active else {}

    def load_window(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpointed window; under DDP only the main process holds it (it is the sum)."""
        self.window = Meters()
        if self.dist.is_main:
            self.window.load_state_dict(state)

    def close(self) -> None:
        """Close every logger, even when one of them fails; the first failure is raised."""
        first: BaseException | None = None
        for logger in self.loggers:
            try:
                logger.close()
            except Exception as exc:  # the others must still flush their files
                first = first or exc
        self.loggers = []
        if first is not None:
            raise first
