"""``faap report RUN``: one Markdown page of a run or a seed set with its figures, in
``RUN/report/``: ``report.md``, ``forest`` (per-group AP / AR, gaps, share closed, with CIs),
``curves`` (training losses, val gap, chosen epoch) and ``panel`` (ground truth and detections
before and after the perturbation), each as PNG and PDF.

The page and the number figures are torch-free (:mod:`faapkit.report.figures`,
:mod:`faapkit.report.page`); only the panel loads the detector and the generator
(:mod:`faapkit.report.panel`)."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.errors import ConfigError
from faapkit.report.inputs import RunInputs, read_target

OUTPUTS = ("report.md", "forest.png", "forest.pdf", "curves.png", "curves.pdf", "panel.png", "panel.pdf")

__all__ = ["OUTPUTS", "PanelOptions", "RunInputs", "check_outputs", "log_to_trackers", "prepare", "write_report"]


def check_outputs(folder: Path, force: bool) -> None:
    """Refuse, before any work, a report folder that cannot take the files or already holds a
    report (without ``force``): :func:`faapkit.artifacts.outputs.check_output` per file."""
    from faapkit.artifacts.outputs import check_output, ensure_folder

    ensure_folder(folder / OUTPUTS[0], "--out")
    for name in OUTPUTS:
        check_output(folder / name, "--out", force=force)


def prepare(target: Path, out: Path | None = None, result: Path | None = None, force: bool = False) -> list[RunInputs]:
    """Read what the report shows and check its folder (default ``target/report``, made if
    missing) before any drawing: a target without an evaluation is refused in one line."""
    runs = read_target(target, result)
    check_outputs(out or target / "report", force)
    return runs


@dataclass(frozen=True)
class PanelOptions:
    """The perturbation panel: ``per_group`` images per group, detections with a score of at
    least ``score``, the delta times ``amplify``; refused in one line when they cannot be drawn."""

    per_group: int = 2
    score: float = 0.5
    amplify: float = 10.0

    def __post_init__(self) -> None:
        wrong = [
            f"--images {self.per_group} is not at least 1" if self.per_group < 1 else "",
            f"--score {self.score:g} is not in [0, 1]" if not 0 <= self.score <= 1 else "",
            f"--amplify {self.amplify:g} is not a positive number" if not (0 < self.amplify < math.inf) else "",
        ]
        if any(wrong):
            raise ConfigError("; ".join(w for w in wrong if w))


def write_report(
    target: Path,
    runs: list[RunInputs] | None = None,
    out: Path | None = None,
    registries: Any = None,
    panel: PanelOptions | None = PanelOptions(),
    *,
    result: Path | None = None,
    force: bool = False,
    warn: Callable[[str], None] = lambda line: None,
) -> Path:
    """Write the page and its figures for ``target`` (a run or a seed set) into ``out``
    (default ``target/report``) and return the page's path. ``runs``: what :func:`prepare`
    returned (read and checked already). ``panel``: draw the perturbation panel (needs
    ``registries`` and torch), or not (``None``); a panel that cannot be drawn faithfully (its
    checkpoint is not this run's) is left out, said on the page and through ``warn``."""
    from faapkit.io import atomic_write_text
    from faapkit.report.figures import curve_series, forest_rows, forest_title, plot_curves, plot_forest
    from faapkit.report.page import page

    runs = runs or prepare(target, out, result, force)
    folder = out or target / "report"
    with staged(folder) as stage:
        title = f"faap report: {target.absolute().name}"
        res = runs[0].result
        ref = res.get("reference") or {}
        pair = (ref["disadvantaged"], ref["advantaged"]) if ref.get("disadvantaged") and ref.get("advantaged") else None
        what = target.absolute().name + ("" if len(runs) == 1 else f" ({len(runs)} seeds)")
        plot_forest(stage / "forest", forest_rows(runs), forest_title(what, res), pair)
        about = f"{what}: trained by {res.get('version')}, epsilon {res.get('epsilon')}"
        plot_curves(stage / "curves", curve_series(runs), about)
        figures = {"forest": "forest.png", "curves": "curves.png"}
        note = "No perturbation panel (--no-panel)."
        if panel is not None:
            note = _panel(stage, runs[0], registries, panel, warn)
            if (stage / "panel.png").is_file():
                figures["panel"] = "panel.png"
        atomic_write_text(stage / "report.md", page(runs, title, figures, note))
    return folder / "report.md"


@contextmanager
def staged(folder: Path) -> Iterator[Path]:
    """A temporary folder inside ``folder`` that the report is drawn into; when the block ends
    without an error its files replace :data:`OUTPUTS` in ``folder`` (one not drawn, such as the
    panel with ``--no-panel``, is removed, never left from an earlier report), else it is
    removed and ``folder`` is as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    for left in folder.glob(".report-*"):  # of a report killed while drawing (its writer held the lock)
        shutil.rmtree(left, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=folder))
    try:
        yield stage
        for name in (*OUTPUTS[1:], OUTPUTS[0]):  # the page last: it never names a figure of another report
            if (stage / name).is_file():
                os.replace(stage / name, folder / name)
            else:
                (folder / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _panel(folder: Path, r: RunInputs, registries: Any, opts: PanelOptions, warn: Callable[[str], None]) -> str:
    per_group, score, amplify = opts.per_group, opts.score, opts.amplify
    from faapkit.report.panel import PanelUnavailable, panel_rows, plot_panel

    try:
        rows = panel_rows(r, registries, per_group=per_group, score=score, amplify=amplify)
    except PanelUnavailable as exc:
        warn(f"no perturbation panel: {exc}")
        return f"No perturbation panel: {exc}."
    eps = r.result.get("epsilon")
    who = f"{r.run.name}" + ("" if r.seed is None else f" (seed {r.seed})")
    title = (
        f"{who}: {r.result.get('split')} split by {r.result.get('split_by')}, epsilon {eps}, "
        f"delta amplified x{amplify:g}"
    )
    plot_panel(folder / "panel", rows, title, score, amplify)
    return (
        f"Perturbation panel ({who}, epoch {r.result.get('epoch')}): {per_group} image(s) per group of the "
        f"{r.result.get('split')} split at the evaluated input size; green: ground truth, blue: detections on "
        f"the clean image, red: on the perturbed image (score >= {score:g}); last column: "
        f"0.5 + {amplify:g} x (perturbed - clean), mid grey is no change. epsilon {eps}."
    )


def log_to_trackers(runs: list[RunInputs], folder: Path) -> list[str]:
    """Add the report's figures (PNG and PDF) and each shown evaluation's numbers with their CIs
    to the tracker runs (MLflow, W&B) of the runs shown, where ``RUN/trackers.json`` names any:
    :func:`faapkit.train.trackers.log_evaluation`. Returns ``"<run>: <tracker>"`` per tracker run
    logged to; a tracker's failure is one ``FaapError`` (the report is written already)."""
    from faapkit.train.trackers import log_evaluation

    figures = [folder / name for name in OUTPUTS[1:] if (folder / name).is_file()]
    done = []
    for r in runs:
        done += [f"{r.run.name}: {name}" for name in log_evaluation(r.run, r.result_path, figures)]
    return done
