"""The one style of faapkit's figures (``faap report``'s forest plot and curves, ``faap compare
--plot``): matplotlib on the file-only Agg backend with one set of rcParams, the colours of the
settings, human names for the training log's loss columns, and integer epoch ticks.

matplotlib is the optional ``plot`` extra, imported only when a figure is drawn (torch-free).
"""

from __future__ import annotations

from typing import Any

from faapkit.errors import FaapError

# sized for a two-column paper at 150 dpi: 8 pt ticks, 9 pt labels, no top/right spines
RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.2,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # TrueType in the PDF: the text stays text for a journal's checks
}

SETTING_NAMES = {"baseline": "unperturbed", "perturbed": "perturbed", "share closed": "share of gap closed"}
COLOURS = {"baseline": "0.45", "perturbed": "#c0392b", "share closed": "#2471a3", "across seeds": "black"}
SERIES = ("#2471a3", "#c0392b", "#27ae60", "#8e44ad", "#d68910", "#17a589", "#7f8c8d", "#a04000")

LOSS_NAMES = {
    "total": "total loss",
    "loss_det": "detection loss",
    "loss_det_dis": "detection loss, disadvantaged group",
    "loss_det_adv": "detection loss, advantaged group",
    "loss_contrastive": "contrastive loss",
    "loss_align": "alignment loss",
    "loss_wasserstein": "Wasserstein loss",
    "loss_fair": "fairness loss",
    "d_loss": "discriminator loss",
}
AP_UNITS = "COCO AP, 0-1"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend with :data:`RC` applied, or the one-line error
    saying how to get it."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed, none opened
        import matplotlib.pyplot as plt
    except ImportError:
        raise FaapError("--plot needs matplotlib, which is not installed: pip install 'faapkit[plot]'") from None
    rc: Any = plt.rcParams
    rc.update(RC)
    return plt


def colour(i: int) -> str:
    """The ``i``-th series colour (runs, seeds, losses), cycling."""
    return SERIES[i % len(SERIES)]


def loss_name(column: str) -> str:
    """A ``train_log.jsonl`` loss column as a legend names it: ``loss_det`` -> ``detection loss``;
    a column this table does not know keeps its name with ``_`` as spaces."""
    return LOSS_NAMES.get(column, column.replace("_", " "))


def integer_epochs(ax: Any, epochs: list[int] | None = None) -> None:
    """Epoch ticks at whole epochs only (a 3-epoch run is not drawn at 0.5, 1.5, ...); ``epochs``
    (the drawn ones): a single epoch gets the epochs on either side, not ticks at 2.84 ... 3.16."""
    from matplotlib.ticker import MaxNLocator

    if epochs and max(epochs) - min(epochs) < 2:
        ax.set_xlim(min(epochs) - 1, max(epochs) + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
