"""The 2-D picture of ``faap inspect features``: a t-SNE embedding (scikit-learn, the ``features``
extra) of every person's decoder feature, clean and perturbed, both groups in one embedding, with
an arrow from each group's clean centre to its perturbed centre, as the research drew it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faapkit.errors import ConfigError
from faapkit.evaluate.features import GroupFeatures

STATES = ("clean", "perturbed")
# (clean, perturbed) colours of the disadvantaged and the advantaged group
COLOURS = (("#ff9999", "#d62728"), ("#9999ff", "#1f3fbf"))


def require_sklearn() -> None:
    """scikit-learn is an optional extra: said before any work when it is missing."""
    try:
        import sklearn.manifold  # noqa: F401
    except ImportError:
        raise ConfigError(
            "faap inspect features draws a t-SNE embedding with scikit-learn: pip install 'faapkit[features]'"
        ) from None


def embed_2d(groups: dict[str, GroupFeatures], pair: tuple[str, str], seed: int = 42) -> dict[tuple[str, str], Any]:
    """``(group, state) -> (N, 2)`` t-SNE coordinates of one joint embedding (perplexity 30, or
    fewer points than that allow)."""
    from sklearn.manifold import TSNE

    keys = [(g, s) for g in pair for s in STATES]
    blocks = [getattr(groups[g], s).numpy() for g, s in keys]
    points = np.concatenate(blocks)
    if len(points) < 4:
        raise ConfigError(f"{len(points)} feature vectors: too few for a 2-D embedding (at least 4)")
    tsne = TSNE(n_components=2, perplexity=float(min(30, len(points) - 1)), random_state=seed, init="pca")
    embedded = tsne.fit_transform(points)
    out, start = {}, 0
    for key, block in zip(keys, blocks, strict=True):
        out[key] = embedded[start : start + len(block)]
        start += len(block)
    return out


def plot_embedding(
    embedded: dict[tuple[str, str], Any], metrics: dict[str, Any], pair: tuple[str, str], title: str, out: Path
) -> None:
    """The scatter (circles clean, triangles perturbed), the centre arrows and the numbers, to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from faapkit.io import atomic_write_with

    fig, ax = plt.subplots(figsize=(8, 7))
    for g, (c_clean, c_pert) in zip(pair, COLOURS, strict=True):
        for s, colour, marker in (("clean", c_clean, "o"), ("perturbed", c_pert, "^")):
            xy = embedded[(g, s)]
            ax.scatter(xy[:, 0], xy[:, 1], s=12, alpha=0.6, c=colour, marker=marker, label=f"{s} {g}")
        start, end = embedded[(g, "clean")].mean(axis=0), embedded[(g, "perturbed")].mean(axis=0)
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": c_pert, "lw": 2.5})
    dis, adv = pair
    ax.text(
        0.02, 0.02,
        f"disp {dis} {metrics[f'disp_{dis}']:.4f}  disp {adv} {metrics[f'disp_{adv}']:.4f}  "
        f"ratio {metrics['disp_ratio']:.2f}\ncentre distance {metrics['center_dist_before']:.4f} -> "
        f"{metrics['center_dist_after']:.4f}\ncentre cosine {metrics['cos_sim_before']:.4f} -> "
        f"{metrics['cos_sim_after']:.4f} ({metrics['cos_sim_delta']:+.4f})",
        transform=ax.transAxes, fontsize=8, family="monospace", va="bottom",
        bbox={"boxstyle": "round", "facecolor": "wheat", "alpha": 0.5},
    )  # fmt: skip
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    atomic_write_with(out, lambda tmp: fig.savefig(tmp, dpi=150), keep_suffix=True)
    plt.close(fig)
