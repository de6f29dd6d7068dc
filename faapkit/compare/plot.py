"""``faap compare --plot FILE``: the AP gap per epoch, one panel per split.

Each line is one run on one split of one dataset (val and test are never one line), with its
bootstrap CI as a band where the metrics have one and its unperturbed (baseline) gap as a dashed
line of the same colour. matplotlib is the optional ``plot`` extra, imported only here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from faapkit.compare.style import pyplot
from faapkit.errors import FaapError

__all__ = ["plot_formats", "plot_gaps", "pyplot"]


def plot_formats() -> list[str]:
    """The suffixes matplotlib writes (``.png``, ``.pdf``, ``.svg``, ...): a ``--plot`` with
    another would fail only after every run was read and drawn."""
    pyplot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return sorted(f".{ext}" for ext in FigureCanvasAgg.get_supported_filetypes())


def plot_gaps(path: Path, rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Write the figure to ``path``; returns each panel's (split's) line labels."""
    plt = pyplot()
    drawn = [r for r in rows if r.get("AP_gap") is not None]
    splits = sorted({str(r.get("split")) for r in drawn})
    if not splits:
        raise FaapError("--plot: no evaluated row to draw (every row is a train log without evaluation)")
    several = len({str(r.get("dataset")) for r in drawn}) > 1
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4.2), squeeze=False)
    panels: dict[str, list[str]] = {}
    for ax, split in zip(axes[0], splits, strict=True):
        mine = [r for r in drawn if str(r.get("split")) == split]
        runs = [_series(r, several, False) for r in mine]
        # a run evaluated at several epsilons gets a line per epsilon, never one zigzag line
        multi = {k for k in runs if len({r.get("epsilon") for r, k2 in zip(mine, runs, strict=True) if k2 == k}) > 1}
        keys = [_series(r, several, k in multi) for r, k in zip(mine, runs, strict=True)]
        for i, key in enumerate(sorted(set(keys))):
            series = [r for r, k in zip(mine, keys, strict=True) if k == key]
            _draw(ax, key, series, f"C{i % 10}")
        ax.set(title=f"split {split}", xlabel="epoch", ylabel="AP gap (advantaged - disadvantaged)")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.legend(fontsize=6)
        panels[split] = [str(line.get_label()) for line in ax.get_lines() if not line.get_label().startswith("_")]
    fig.tight_layout()
    from faapkit.io import atomic_write_with

    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=120), keep_suffix=True)
    plt.close(fig)
    return panels


def _series(r: dict[str, Any], with_dataset: bool, with_epsilon: bool) -> str:
    """A line's label: the run, plus the dataset when several are drawn and epsilon when it varies."""
    label = str(r.get("run"))
    if with_dataset:
        label += f" ({r.get('dataset')})"
    if with_epsilon:
        label += f" eps {r.get('epsilon')}"
    return label


def _draw(ax: Any, label: str, series: list[dict[str, Any]], color: str) -> None:
    pts = sorted(
        (r for r in series if r.get("setting") == "perturbed" and isinstance(r.get("epoch"), int)),
        key=lambda r: r["epoch"],
    )
    if pts:
        epochs = [r["epoch"] for r in pts]
        ax.plot(epochs, [r["AP_gap"] for r in pts], marker="o", ms=3, color=color, label=label)
        lo = [_ci(r, 0) for r in pts]
        hi = [_ci(r, 1) for r in pts]
        if len(pts) > 1 and any(not math.isnan(v) for v in lo):
            ax.fill_between(epochs, lo, hi, color=color, alpha=0.18, lw=0)
        elif not math.isnan(lo[0]):  # one epoch: a band would be invisible, an error bar is not
            gap = pts[0]["AP_gap"]
            ax.errorbar(epochs, [gap], yerr=[[gap - lo[0]], [hi[0] - gap]], color=color, capsize=3, lw=1)
    elif any(r.get("setting") == "perturbed" for r in series):
        # perturbed evaluations without an epoch (loose research files): points at x = 0
        ax.plot(
            [0],
            [next(r["AP_gap"] for r in series if r.get("setting") == "perturbed")],
            "x",
            color=color,
            label=f"{label} (no epoch)",
        )
    baselines = {r["AP_gap_baseline"] for r in pts if r.get("AP_gap_baseline") is not None}
    baselines |= {r["AP_gap"] for r in series if r.get("setting") == "baseline"}
    for j, b in enumerate(sorted(baselines)):
        ax.axhline(b, color=color, ls="--", lw=1, label=f"{label} baseline" if j == 0 else None)


def _ci(r: dict[str, Any], i: int) -> float:
    ci = r.get("AP_gap_ci")
    return float(ci[i]) if isinstance(ci, list | tuple) and len(ci) == 2 else math.nan
