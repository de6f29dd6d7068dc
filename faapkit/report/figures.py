"""``faap report``'s number figures, torch-free: the forest plot of per-group AP and AR with
their bootstrap CIs before and after the perturbation, the gaps and the share of the gap closed;
and the training curves (losses per epoch, the val AP gap per validation, the chosen epoch).

Each figure's numbers come from one function (:func:`forest_rows`, :func:`curve_series`) that
the drawing only reads, so a test can hold them against the run's files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from faapkit.report.inputs import RunInputs

METRICS = ("AP", "AR")
SETTINGS = ("baseline", "perturbed")
COLOURS = {"baseline": "0.45", "perturbed": "C3", "share closed": "C0"}
FORMATS = (".png", ".pdf")


def forest_rows(runs: list[RunInputs]) -> list[dict[str, Any]]:
    """One row per point: ``panel`` (``groups``, ``gap`` or ``share closed``), ``label`` (the
    y-axis line), ``setting``, ``value`` and ``ci`` (``[lo, hi]`` or ``None``), all read from the
    eval results (``metrics``, ``gaps``, ``bootstrap``); a seed set's labels start with its seed."""
    out: list[dict[str, Any]] = []
    for r in runs:
        res, prefix = r.result, ("" if r.seed is None else f"seed {r.seed}  ")
        boot = res.get("bootstrap") or {}
        for m in (m for m in METRICS if m in (res.get("gaps") or {})):
            for g in groups_of(res):
                for s in SETTINGS:
                    ci = (((boot.get("groups") or {}).get(s) or {}).get(g) or {}).get(m)
                    value = res["metrics"][s][g][m]
                    out.append(_row("groups", f"{prefix}{g} {m}", s, value, ci))
            gap, gci = res["gaps"][m], ((boot.get("gaps") or {}).get(m) or {})
            for s in SETTINGS:
                out.append(_row("gap", f"{prefix}{m} gap", s, gap[s], gci.get(s)))
            if gap.get("share_closed") is not None:
                out.append(
                    _row(
                        "share closed", f"{prefix}{m} gap", "share closed", gap["share_closed"], gci.get("share_closed")
                    )
                )
    return out


def _row(panel: str, label: str, setting: str, value: Any, ci: Any) -> dict[str, Any]:
    return {"panel": panel, "label": label, "setting": setting, "value": value, "ci": list(ci) if ci else None}


def groups_of(result: dict[str, Any]) -> list[str]:
    """The reference pair first (disadvantaged, advantaged), then any other group."""
    ref = result.get("reference") or {}
    pair = [g for g in (ref.get("disadvantaged"), ref.get("advantaged")) if g]
    return pair + [g for g in result["metrics"]["baseline"] if g not in pair]


def plot_forest(stem: Path, rows: list[dict[str, Any]], title: str) -> list[Path]:
    """Draw :func:`forest_rows` as three panels side by side; write ``stem``.png and .pdf."""
    from faapkit.compare.plot import pyplot

    plt = pyplot()
    panels = [p for p in ("groups", "gap", "share closed") if any(r["panel"] == p for r in rows)]
    labels = {p: list(dict.fromkeys(r["label"] for r in rows if r["panel"] == p)) for p in panels}
    height = 1.4 + 0.32 * max(len(v) for v in labels.values())
    widths = [3 if p == "groups" else 2 for p in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.4 * len(panels) + 1.5, height), squeeze=False, gridspec_kw={"width_ratios": widths}
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        _forest_panel(ax, panel, [r for r in rows if r["panel"] == panel], labels[panel])
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return save(fig, stem)


def _forest_panel(ax: Any, panel: str, rows: list[dict[str, Any]], labels: list[str]) -> None:
    offsets = {"baseline": 0.15, "perturbed": -0.15, "share closed": 0.0}
    for r in rows:
        y = len(labels) - 1 - labels.index(r["label"]) + offsets[r["setting"]]
        lo, hi = r["ci"] if r["ci"] else (r["value"], r["value"])
        ax.errorbar(
            [r["value"]],
            [y],
            xerr=[[r["value"] - lo], [hi - r["value"]]],
            fmt="o",
            ms=4,
            capsize=2,
            color=COLOURS[r["setting"]],
            label=r["setting"] + (" (95% CI)" if r["ci"] else ""),
        )
    ax.set_yticks(range(len(labels)), labels[::-1], fontsize=8)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.grid(axis="x", lw=0.4, color="0.85")
    if panel != "groups":
        ax.axvline(0.0, color="0.5", lw=0.7)
    what = {
        "groups": "per-group AP / AR",
        "gap": "gap (advantaged - disadvantaged)",
        "share closed": "share of gap closed",
    }
    ax.set_title(what[panel], fontsize=9)
    # one legend entry per setting, not one per point
    seen: set[str] = set()
    for line in ax.containers:
        name = line.get_label()
        if name in seen:
            line.set_label("_" + name)
        seen.add(name)


def curve_series(runs: list[RunInputs]) -> dict[str, Any]:
    """The curves' numbers: per run (its seed or ``run``), ``losses`` ``{name: [(epoch, value)]}``
    of every ``total``/``loss_*`` column of ``train_log.jsonl``, ``val_gap`` ``[(epoch, gap_AP)]``
    of the validated epochs, ``val_baseline`` (the unperturbed val gap) and ``chosen`` (the epoch
    ``selection.json`` chose, or ``None``)."""
    out: dict[str, Any] = {}
    for r in runs:
        losses: dict[str, list[tuple[int, float]]] = {}
        for row in r.log:
            for k, v in row.items():
                if (k == "total" or k.startswith("loss_")) and isinstance(v, int | float) and math.isfinite(v):
                    losses.setdefault(k, []).append((row["epoch"], float(v)))
        val = [
            (row["epoch"], float(row["val"]["gap_AP"]))
            for row in r.log
            if isinstance(row.get("val"), dict) and isinstance(row["val"].get("gap_AP"), int | float)
        ]
        sel = r.selection or {}
        out["run" if r.seed is None else f"seed {r.seed}"] = {
            "losses": losses,
            "val_gap": val,
            "val_baseline": (sel.get("val_baseline") or {}).get("gap_AP"),
            "chosen": sel.get("epoch"),
        }
    return out


def plot_curves(stem: Path, series: dict[str, Any], title: str) -> list[Path]:
    """Losses per epoch (left) and the val AP gap per validation (right), the chosen epoch a
    dotted line and the unperturbed val gap a dashed one; write ``stem``.png and .pdf. A seed
    set draws each seed's total loss only, in the seed's colour (every column of every seed
    would be a legend nobody reads)."""
    from faapkit.compare.plot import pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.0))
    several = len(series) > 1
    for i, (name, s) in enumerate(series.items()):
        colour = f"C{i % 10}"
        losses = _distinct(s["losses"])
        if several:
            losses = [(n, pts) for n, pts in losses if "total" in n.split(" = ")][:1]
        for j, (loss, pts) in enumerate(losses):
            label = f"{name} ({loss})" if several else loss
            left.plot(*zip(*pts, strict=True), lw=1, color=colour if several else f"C{j % 10}", label=label)
        if s["val_gap"]:
            label = name if several else "perturbed (val)"
            right.plot(*zip(*s["val_gap"], strict=True), marker="o", ms=3, color=colour, label=label)
        if s["val_baseline"] is not None:
            label = "unperturbed (val)" if i == 0 else "_"
            right.axhline(s["val_baseline"], color="0.4" if several else colour, ls="--", lw=0.9, label=label)
        for ax in (left, right):
            if s["chosen"] is not None:
                label = (
                    "chosen epochs" if several and i == 0 else (f"chosen epoch {s['chosen']}" if not several else "_")
                )
                ax.axvline(s["chosen"], color=colour if several else "0.3", ls=":", lw=1, label=label)
    left.set(title="training losses", xlabel="epoch", ylabel="loss")
    right.set(title="val AP gap per validation", xlabel="epoch", ylabel="AP gap (adv - dis)")
    if not any(s["val_gap"] for s in series.values()):
        right.text(0.5, 0.5, "no validation during training", ha="center", va="center", transform=right.transAxes)
    for ax in (left, right):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        ax.grid(lw=0.4, color="0.9")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, stem)


def _distinct(losses: dict[str, list[tuple[int, float]]]) -> list[tuple[str, list[tuple[int, float]]]]:
    """One line per distinct series: columns with the same values (``total`` = ``loss_det`` for a
    single-term loss) share one line whose label names them all, instead of hiding each other."""
    merged: dict[tuple[tuple[int, float], ...], list[str]] = {}
    for name, pts in sorted(losses.items()):
        merged.setdefault(tuple(pts), []).append(name)
    return [(" = ".join(names), list(pts)) for pts, names in merged.items()]


def save(fig: Any, stem: Path) -> list[Path]:
    """``stem``.png (150 dpi) and ``stem``.pdf, each written atomically; the figure is closed."""
    from faapkit.compare.plot import pyplot
    from faapkit.io import atomic_write_with

    paths = [stem.with_suffix(s) for s in FORMATS]
    for path in paths:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=150), keep_suffix=True)
    pyplot().close(fig)
    return paths
