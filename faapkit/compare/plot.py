"""``faap compare --plot FILE``: the AP gap per epoch, one panel per dataset and split.

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
    """Write the figure to ``path``, one panel per dataset and split (numbers of two datasets are
    never drawn on one axis); returns each panel's title and its line labels (the run, with
    epsilon where it varies)."""
    from faapkit.compare.style import colour, integer_epochs

    plt = pyplot()
    drawn = [r for r in rows if r.get("AP_gap") is not None]
    keys = sorted({(str(r.get("dataset")), str(r.get("split"))) for r in drawn})
    if not keys:
        raise FaapError("--plot: no evaluated row to draw (every row is a train log without evaluation)")
    cols = min(len(keys), 3)
    rows_n = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 4.4 * rows_n), squeeze=False)
    panels: dict[str, list[str]] = {}
    for ax, (dataset, split) in zip(axes.flat, keys, strict=False):
        mine = [r for r in drawn if (str(r.get("dataset")), str(r.get("split"))) == (dataset, split)]
        # a run evaluated at several epsilons (or through several codecs) gets a line per
        # epsilon (codec), never one zigzag line
        varies = {
            (str(run), key)
            for run in {r.get("run") for r in mine}
            for key in ("epsilon", "codec")
            if len({r.get(key) for r in mine if r.get("run") == run}) > 1
        }
        series_keys = [_series(r, varies) for r in mine]
        for i, key in enumerate(sorted(set(series_keys))):
            _draw(ax, key, [r for r, k in zip(mine, series_keys, strict=True) if k == key], colour(i))
        title = f"{dataset}, {split} split"
        ax.set(title=title, xlabel="epoch", ylabel="AP gap, advantaged - disadvantaged (0-1)")
        integer_epochs(ax, [r["epoch"] for r in mine if isinstance(r.get("epoch"), int)])
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
        panels[title] = [str(line.get_label()) for line in ax.get_lines() if not line.get_label().startswith("_")]
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle("AP gap per epoch: perturbed (line, its bootstrap CI a band) and unperturbed (dashed)")
    fig.tight_layout()
    from faapkit.io import atomic_write_with

    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=150), keep_suffix=True)
    plt.close(fig)
    return panels


def _series(r: dict[str, Any], varies: set[tuple[str, str]]) -> str:
    """A line's label: the run, plus its epsilon and codec where they vary for that run."""
    run = str(r.get("run"))
    label = run + (f" eps {r.get('epsilon')}" if (run, "epsilon") in varies else "")
    return label + (f" codec {r.get('codec') or 'none'}" if (run, "codec") in varies else "")


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
        ax.axhline(b, color=color, ls="--", lw=1, label=f"{label} unperturbed" if j == 0 else None)


def _ci(r: dict[str, Any], i: int) -> float:
    ci = r.get("AP_gap_ci")
    return float(ci[i]) if isinstance(ci, list | tuple) and len(ci) == 2 else math.nan
