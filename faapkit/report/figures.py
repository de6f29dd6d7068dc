"""``faap report``'s number figures, torch-free: the forest plot of per-group AP and AR with
their bootstrap CIs before and after the perturbation, the gaps and the share of the gap closed;
and the training curves (losses per epoch, the val AP gap per validation with its CI, the chosen
epoch), in the one style of :mod:`faapkit.compare.style`.

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
ACROSS = "across seeds"
FORMATS = (".png", ".pdf")


def forest_rows(runs: list[RunInputs]) -> list[dict[str, Any]]:
    """One row per point: ``panel`` (``groups``, ``gap`` or ``share closed``), ``label`` (the
    y-axis line, with each group's image count), ``group`` and ``metric``, ``setting``, ``value``
    and ``ci`` (``[lo, hi]`` or ``None``), all read from the eval results (``metrics``, ``gaps``,
    ``bootstrap``); ``seed`` is the run's seed (``None`` for a run). A seed set adds, per metric,
    the mean across its seeds of each gap and of the share closed with the Student-t CI of
    ``faap eval SEEDSET`` (:func:`faapkit.evaluate.across_seeds.spread`; ``setting``
    ``across seeds`` for the share, ``kind`` ``across seeds`` for all of them)."""
    out: list[dict[str, Any]] = []
    for r in runs:
        res, prefix = r.result, ("" if r.seed is None else f"seed {r.seed}  ")
        boot = res.get("bootstrap") or {}
        counts = res.get("groups") or {}
        for m in (m for m in METRICS if m in (res.get("gaps") or {})):
            for g in groups_of(res):
                n = (counts.get(g) or {}).get("images")
                label = f"{prefix}{g}{'' if n is None else f' (n={n})'} {m}"
                for s in SETTINGS:
                    ci = (((boot.get("groups") or {}).get(s) or {}).get(g) or {}).get(m)
                    out.append(_row("groups", label, s, res["metrics"][s][g][m], ci, g, m, r.seed))
            gap, gci = res["gaps"][m], ((boot.get("gaps") or {}).get(m) or {})
            for s in SETTINGS:
                out.append(_row("gap", f"{prefix}{m} gap", s, gap[s], gci.get(s), None, m, r.seed))
            if gap.get("share_closed") is not None:
                share, share_ci = gap["share_closed"], gci.get("share_closed")
                out.append(_row("share closed", f"{prefix}{m} gap", "share closed", share, share_ci, None, m, r.seed))
    if len(runs) > 1:
        out += _across_seeds(runs)
    return out


def _across_seeds(runs: list[RunInputs]) -> list[dict[str, Any]]:
    """The seeds' mean gaps and share closed with their across-seed t-CIs, below the seeds."""
    from faapkit.evaluate.across_seeds import spread

    conf = float((runs[0].result.get("bootstrap") or {}).get("confidence") or 0.95)
    out: list[dict[str, Any]] = []
    label = f"mean of {len(runs)} seeds  {{}} gap"
    for m in (m for m in METRICS if all(m in (r.result.get("gaps") or {}) for r in runs)):
        gaps = [r.result["gaps"][m] for r in runs]
        for s in SETTINGS:
            sp = spread([g[s] for g in gaps], conf)
            if sp["mean"] is not None:
                out.append(_row("gap", label.format(m), s, sp["mean"], sp["ci"], None, m, None, ACROSS))
        sp = spread([g["share_closed"] for g in gaps if g.get("share_closed") is not None], conf)
        if sp["mean"] is not None:
            out.append(_row("share closed", label.format(m), ACROSS, sp["mean"], sp["ci"], None, m, None, ACROSS))
    return out


def _row(
    panel: str,
    label: str,
    setting: str,
    value: Any,
    ci: Any,
    group: str | None,
    metric: str,
    seed: int | None,
    kind: str = "run",
) -> dict[str, Any]:
    return {
        "panel": panel,
        "label": label,
        "setting": setting,
        "value": value,
        "ci": list(ci) if ci else None,
        "group": group,
        "metric": metric,
        "seed": seed,
        "kind": kind,
    }


def groups_of(result: dict[str, Any]) -> list[str]:
    """The reference pair first (disadvantaged, advantaged), then any other group."""
    ref = result.get("reference") or {}
    pair = [g for g in (ref.get("disadvantaged"), ref.get("advantaged")) if g]
    return pair + [g for g in result["metrics"]["baseline"] if g not in pair]


def forest_title(target: str, result: dict[str, Any]) -> str:
    """The forest plot's title: what was evaluated, on how many images, with which CIs."""
    boot = result.get("bootstrap") or {}
    n = (result.get("dataset") or {}).get("images")
    ci = (
        f"bars: {float(boot.get('confidence') or 0.95):.0%} paired bootstrap CI ({boot.get('resamples')} resamples)"
        if boot
        else "no bootstrap CI (evaluated with --bootstrap 0)"
    )
    return (
        f"{target}: {result.get('split')} split{'' if n is None else f', {n} images'}, split by "
        f"{result.get('split_by')}, epsilon {result.get('epsilon')}; {ci}"
    )


def plot_forest(stem: Path, rows: list[dict[str, Any]], title: str, pair: tuple[str, str] | None = None) -> list[Path]:
    """Write :func:`forest_figure` as ``stem``.png and .pdf."""
    return save(forest_figure(rows, title, pair), stem)


def forest_figure(rows: list[dict[str, Any]], title: str, pair: tuple[str, str] | None = None) -> Any:
    """:func:`forest_rows` drawn as three panels side by side (a matplotlib figure), each with its
    axis label and units; ``pair``: (disadvantaged, advantaged), named on the gap axis."""
    from faapkit.compare.style import pyplot

    plt = pyplot()
    panels = [p for p in ("groups", "gap", "share closed") if any(r["panel"] == p for r in rows)]
    labels = {p: list(dict.fromkeys(r["label"] for r in rows if r["panel"] == p)) for p in panels}
    height = 1.6 + 0.32 * max(len(v) for v in labels.values())
    widths = [3 if p == "groups" else 2 for p in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.4 * len(panels) + 1.8, height), squeeze=False, gridspec_kw={"width_ratios": widths}
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        _forest_panel(ax, panel, [r for r in rows if r["panel"] == panel], labels[panel], pair)
    legend: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(name, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(3, len(legend)))
    fig.suptitle(title, fontsize=8)
    fig.tight_layout(rect=(0, 0.1 if len(legend) > 3 else 0.07, 1, 0.95))
    return fig


FOREST_AXES = {
    "groups": ("per-group AP and AR", "AP or AR (COCO, 0-1)"),
    "gap": ("gap between the groups", "gap {adv} - {dis} (0-1)"),
    "share closed": ("share of the gap closed", "share closed (1 = closed, 0 = unchanged)"),
}


def _forest_panel(
    ax: Any, panel: str, rows: list[dict[str, Any]], labels: list[str], pair: tuple[str, str] | None
) -> None:
    from faapkit.compare.style import COLOURS, SETTING_NAMES

    offsets = {"baseline": 0.15, "perturbed": -0.15, "share closed": 0.0, ACROSS: 0.0}
    for r in rows:
        y = len(labels) - 1 - labels.index(r["label"]) + offsets[r["setting"]]
        lo, hi = r["ci"] if r["ci"] else (r["value"], r["value"])
        across = r["kind"] == ACROSS
        name = SETTING_NAMES.get(r["setting"], r["setting"]) if r["setting"] != ACROSS else "share of gap closed"
        ci_name = " (95% t-CI across seeds)" if across else " (95% CI)"
        colour = COLOURS["across seeds" if across and r["setting"] == ACROSS else r["setting"]]
        # the bar is drawn from its own bounds, the point on its own: a percentile CI may exclude
        # its estimate (a skewed bootstrap), and then both are drawn where they are
        ax.errorbar(
            [(lo + hi) / 2],
            [y],
            xerr=[[(hi - lo) / 2]],
            fmt="none",
            capsize=3 if across else 2,
            lw=1.6 if across else 1.0,
            color=colour,
        )
        ax.plot(
            [r["value"]],
            [y],
            "D" if across else "o",
            ms=5 if across else 4,
            color=colour,
            label=("mean across seeds: " if across else "") + name + (ci_name if r["ci"] else ""),
        )
    ax.set_yticks(range(len(labels)), labels[::-1])
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.grid(axis="y", visible=False)
    if panel != "groups":
        ax.axvline(0.0, color="0.5", lw=0.7)
    title, xlabel = FOREST_AXES[panel]
    dis, adv = pair or ("disadvantaged", "advantaged")
    ax.set_title(title)
    ax.set_xlabel(xlabel.format(adv=adv, dis=dis))


def curve_series(runs: list[RunInputs]) -> dict[str, Any]:
    """The curves' numbers: per run (its seed or ``run``), ``losses`` ``{column: [(epoch, value)]}``
        of every ``total``/``loss_*``/``d_loss`` column of ``train_log.jsonl``, ``val_gap``
        ``[(epoch, gap_AP)]`` of the validated epochs and ``val_ci`` ``[(epoch, lo, hi)]`` of those
        whose validation drew the paired bootstrap CI, ``val_baseline`` (the unperturbed val gap) with
        its ``val_baseline_ci``, ``val_images`` and ``val_group_images`` (the val split's image count,
    in all and per group, where the log holds them) and ``pair``
        ``(disadvantaged, advantaged)``, and ``chosen`` (the epoch ``selection.json`` chose, or ``None``)."""
    out: dict[str, Any] = {}
    for r in runs:
        losses: dict[str, list[tuple[int, float]]] = {}
        for row in r.log:
            for k, v in row.items():
                if _is_loss(k) and isinstance(v, int | float) and math.isfinite(v):
                    losses.setdefault(k, []).append((row["epoch"], float(v)))
        vals = [(row["epoch"], row["val"]) for row in r.log if isinstance(row.get("val"), dict)]
        vals = [(e, v) for e, v in vals if isinstance(v.get("gap_AP"), int | float)]
        sel = r.selection or {}
        last = vals[-1][1] if vals else {}
        out["run" if r.seed is None else f"seed {r.seed}"] = {
            "losses": losses,
            "val_gap": [(e, float(v["gap_AP"])) for e, v in vals],
            "val_ci": [(e, *map(float, v["gap_AP_ci"])) for e, v in vals if _pair(v.get("gap_AP_ci"))],
            "val_baseline": (sel.get("val_baseline") or {}).get("gap_AP"),
            "val_baseline_ci": last.get("gap_AP_baseline_ci") if _pair(last.get("gap_AP_baseline_ci")) else None,
            "val_images": last.get("images"),
            "val_group_images": last.get("group_images") if isinstance(last.get("group_images"), dict) else None,
            "pair": (last["disadvantaged"], last["advantaged"]) if "advantaged" in last else None,
            "chosen": sel.get("epoch"),
        }
    return out


def _is_loss(column: str) -> bool:
    return column in ("total", "d_loss") or column.startswith("loss_")


def _pair(ci: Any) -> bool:
    return isinstance(ci, list | tuple) and len(ci) == 2 and all(isinstance(x, int | float) for x in ci)


def plot_curves(stem: Path, series: dict[str, Any], title: str) -> list[Path]:
    """Write :func:`curves_figure` as ``stem``.png and .pdf."""
    return save(curves_figure(series, title), stem)


def curves_figure(series: dict[str, Any], title: str) -> Any:
    """Losses per epoch (left) and the val AP gap per validation with its CI band (right), the
    chosen epoch a dotted line and the unperturbed val gap a dashed one with its own band (a
    matplotlib figure, epochs at whole numbers). A seed set draws each seed's total loss only,
    in the seed's colour (every column of every seed would be a legend nobody reads)."""
    from faapkit.compare.style import integer_epochs, pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6))
    for i, (name, s) in enumerate(series.items()):
        _loss_lines(left, name, s, i, len(series) > 1)
        _val_lines(right, name, s, i, len(series) > 1)
    left.set(title="training losses (mean per epoch)", xlabel="epoch", ylabel="loss (mean over the epoch's steps)")
    right.set(title=_val_title(series), xlabel="epoch", ylabel="AP gap, advantaged - disadvantaged (0-1)")
    if not any(s["val_gap"] for s in series.values()):
        right.text(0.5, 0.5, "no validation during training", ha="center", va="center", transform=right.transAxes)
    epochs = [e for s in series.values() for pts in (*s["losses"].values(), s["val_gap"]) for e, _ in pts]
    for ax in (left, right):
        integer_epochs(ax, epochs)
        if ax.get_legend_handles_labels()[0]:  # below the axes: the curves keep the width
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2 if ax is right else 1)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def _val_title(series: dict[str, Any]) -> str:
    first = next((s for s in series.values() if s["val_gap"]), None)
    if first is None:
        return "val AP gap per validation"
    dis, adv = first["pair"] or ("disadvantaged", "advantaged")
    n, per = first["val_images"], first["val_group_images"] or {}
    counts = ", ".join(f"{g} {per[g]}" for g in (dis, adv) if g in per)
    return f"val AP gap: AP({adv}) - AP({dis})" + (
        "" if n is None else f"\n{n} val images" + (f" ({counts})" if counts else "")
    )


def _loss_lines(ax: Any, name: str, s: dict[str, Any], i: int, several: bool) -> None:
    from faapkit.compare.style import colour

    losses = _distinct(s["losses"])
    if several:
        losses = [(n, pts) for n, pts in losses if "total" in n][:1]
    for j, (columns, pts) in enumerate(losses):
        label = f"{name}: total loss" if several else _loss_label(columns)
        ax.plot(
            *zip(*pts, strict=True),
            marker="." if len(pts) < 30 else None,
            color=colour(i if several else j),
            label=label,
        )
    _chosen(ax, s, i, several)


def _loss_label(columns: list[str]) -> str:
    """``["loss_det", "loss_det_dis", "total"]`` -> ``total loss = detection loss = ...``."""
    from faapkit.compare.style import loss_name

    ordered = sorted(columns, key=lambda c: (c != "total", c))
    return " = ".join(loss_name(c) for c in ordered)


def _val_lines(ax: Any, name: str, s: dict[str, Any], i: int, several: bool) -> None:
    from faapkit.compare.style import COLOURS, colour

    c = colour(i) if several else COLOURS["perturbed"]
    if s["val_gap"]:
        label = name if several else "perturbed" + ("" if s["val_ci"] else " (the log holds no CI)")
        ax.plot(*zip(*s["val_gap"], strict=True), marker="o", ms=3, color=c, label=label)
    if s["val_ci"]:
        epochs, lo, hi = zip(*s["val_ci"], strict=True)
        if len(epochs) > 1:
            ax.fill_between(epochs, lo, hi, color=c, alpha=0.18, lw=0, label="_" if i else "95% paired bootstrap CI")
        else:
            gap = dict(s["val_gap"])[epochs[0]]
            ax.errorbar(epochs, [gap], yerr=[[gap - lo[0]], [hi[0] - gap]], color=c, capsize=3, lw=1)
    if s["val_baseline"] is not None:
        base = COLOURS["baseline"]
        ax.axhline(s["val_baseline"], color=base, ls="--", lw=0.9, label="_" if i else "unperturbed")
        if s["val_baseline_ci"] and i == 0:
            ax.axhspan(*s["val_baseline_ci"], color=base, alpha=0.12, lw=0, label="unperturbed 95% CI")
    _chosen(ax, s, i, several)


def _chosen(ax: Any, s: dict[str, Any], i: int, several: bool) -> None:
    from faapkit.compare.style import colour

    if s["chosen"] is None:
        return
    label = ("chosen epochs" if i == 0 else "_") if several else f"chosen epoch ({s['chosen']})"
    ax.axvline(s["chosen"], color=colour(i) if several else "0.3", ls=":", lw=1, label=label)


def _distinct(losses: dict[str, list[tuple[int, float]]]) -> list[tuple[list[str], list[tuple[int, float]]]]:
    """One line per distinct series: columns with the same values (``total`` = ``loss_det`` for a
    single-term loss) share one line whose label names them all, instead of hiding each other."""
    merged: dict[tuple[tuple[int, float], ...], list[str]] = {}
    for name, pts in sorted(losses.items()):
        merged.setdefault(tuple(pts), []).append(name)
    return [(names, list(pts)) for pts, names in merged.items()]


def save(fig: Any, stem: Path) -> list[Path]:
    """``stem``.png (150 dpi) and ``stem``.pdf, each written atomically; the figure is closed."""
    from faapkit.compare.style import pyplot
    from faapkit.io import atomic_write_with

    paths = [stem.with_suffix(s) for s in FORMATS]
    for path in paths:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=150), keep_suffix=True)
    pyplot().close(fig)
    return paths
