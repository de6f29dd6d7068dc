"""The rows ``faap compare`` shows: one flat row per record (per-group AP/AR, gaps by the one rule
of ``faapkit.fairness``, change vs baseline, share closed, CIs), then which of them are shown (each
run at its epoch chosen on val, every logged epoch, or one summary per run of epochs never
evaluated) and in what order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faapkit.compare.records import RunRecord
from faapkit.compare.selection import best_on_val
from faapkit.fairness import gap_if_known, overshoot, share_closed
from faapkit.train.selection import SelectRule

# the research's tsne_compare fields a row takes (faapkit.evaluate.features defines them)
FEATURE_PREFIXES = ("disp_", "center_dist_", "cos_sim_", "n_")


def summarize(record: RunRecord) -> dict[str, Any]:
    """Flat row: per-group AP/AR (perturbed, else baseline), gaps, change vs baseline, CIs."""
    ref = record.reference or {}
    setting = record.perturbed or record.baseline
    row: dict[str, Any] = {
        k: getattr(record, k)
        for k in ("run", "version", "epoch", "split", "dataset", "epsilon", "source", "selected_epoch", "seed")
    }
    if record.config_key:
        row["config_key"] = record.config_key
        row["run_path"] = record.run_path
        # what the gap was measured between: seeds evaluated on other groups are not one configuration
        row["gap_groups"] = [record.split_by, ref.get("disadvantaged"), ref.get("advantaged")]
    if record.iou_thresholds:
        row["iou_thresholds"] = record.iou_thresholds
    if record.codec:
        row["codec"] = record.codec
    if record.exported:  # the numbers are the exported file's, not the eager checkpoint's
        row["exported"] = record.exported
    if record.also_at:
        row["also_at"] = record.also_at
    if record.flags is not None:  # a faapkit metrics file, checked (an empty list: nothing found)
        row["flags"] = record.flags
    row["setting"] = "perturbed" if record.perturbed else ("baseline" if record.baseline else "train only")
    if record.features is not None:  # decoder features of a checkpoint (a tsne_compare file), no AP
        row["setting"] = "features"
        row.update({k: v for k, v in record.features.items() if k.startswith(FEATURE_PREFIXES)})
    if setting:
        groups = list(setting)
        for g in groups:
            row[f"AP_{g}"] = setting[g].get("AP")
            row[f"AR_{g}"] = setting[g].get("AR")
        adv, dis = ref.get("advantaged"), ref.get("disadvantaged")
        if record.perturbed and record.baseline and adv in record.perturbed:
            after, before = record.perturbed[adv].get("AP"), record.baseline.get(adv, {}).get("AP")
            if after is not None and before is not None:
                row["AP_advantaged_change"] = after - before
        for m in ("AP", "AR"):
            row[f"{m}_gap"] = _gap(setting, m, adv, dis)
            if record.perturbed and record.baseline:
                base_gap = _gap(record.baseline, m, adv, dis)
                row[f"{m}_gap_baseline"] = base_gap
                row[f"{m}_gap_change"] = (
                    None if row[f"{m}_gap"] is None or base_gap is None else row[f"{m}_gap"] - base_gap
                )
                row[f"{m}_share_closed"] = share_closed(base_gap, row[f"{m}_gap"])
                row[f"{m}_overshoot"] = overshoot(base_gap, row[f"{m}_gap"])
        boot = (record.bootstrap or {}).get("gaps", {})
        if boot:  # the level every CI of the row was computed at (compare's headers say it)
            row["ci_level"] = (record.bootstrap or {}).get("confidence")
        for m in ("AP", "AR"):
            if m in boot:
                row[f"{m}_gap_ci"] = boot[m].get("perturbed") or boot[m].get("baseline")
                row[f"{m}_change_ci"] = boot[m].get("change")
                row[f"{m}_significant"] = boot[m].get("significant")
                row[f"{m}_share_ci"] = boot[m].get("share_closed")
    train = record.train or {}
    if "total_g" in train or "total" in train:
        row["train_total"] = train.get("total", train.get("total_g"))
    return row


def _gap(setting: dict[str, Any], metric: str, adv: str | None, dis: str | None) -> float | None:
    """The record's gap by the one rule (``faapkit.fairness``): the named pair, else max - min."""
    pair = (dis, adv) if dis is not None and adv is not None else None
    return gap_if_known({g: v.get(metric) for g, v in setting.items()}, pair)


LOG_ONLY = "not evaluated"


def arrange(
    rows: list[dict[str, Any]],
    sort_key: str,
    *,
    best_per_run: tuple[str, SelectRule] | None,
    all_epochs: bool,
    say: Callable[[str], None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows shown, sorted by ``sort_key``, and one summary per run of its epochs logged but
    never evaluated: with ``best_per_run`` (``(metric, rule)``) each run at its epoch chosen on
    val, reported on the other splits (its notes go to ``say``); with ``all_epochs`` every logged
    epoch as a row; else the evaluated rows and the summaries."""
    logged = [r for r in rows if r["setting"] == "train only"]
    rows = [r for r in rows if r["setting"] != "train only"]
    if best_per_run is not None:
        rows = best_on_val(rows, *best_per_run, say=say)
    elif all_epochs:
        rows += logged
    summaries = [] if best_per_run is not None or all_epochs else log_summaries(logged)
    sort_rows(rows, sort_key)
    return rows, summaries


def log_summaries(logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (run, dataset) for its epochs with a train log and no evaluation."""
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in logged:
        by_run.setdefault((str(r.get("run")), str(r.get("dataset"))), []).append(r)
    out = []
    for (run, _), mine in sorted(by_run.items()):
        epochs = sorted(int(r["epoch"]) for r in mine if r.get("epoch") is not None)
        out.append(
            {
                "run": run,
                "version": mine[0].get("version"),
                "epoch": ranges(epochs) if epochs else None,
                "split": None,
                "setting": LOG_ONLY,
                "dataset": mine[0].get("dataset"),
                "source": mine[0].get("source"),
                "epochs_logged": epochs,
            }
        )
    return out


def ranges(epochs: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``0-2,5,7-8``."""
    parts: list[str] = []
    start = prev = epochs[0]
    for e in [*epochs[1:], None]:
        if e is not None and e == prev + 1:
            prev = e
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if e is not None:
            start = prev = e
    return ",".join(parts)


def sort_rows(rows: list[dict[str, Any]], key: str) -> None:
    """By ``key`` (rows without it last), then run and epoch."""
    rows.sort(
        key=lambda r: (
            r.get(key) is None,
            r.get(key) if r.get(key) is not None else 0,
            str(r.get("run")),
            r.get("epoch") if isinstance(r.get("epoch"), int) else -1,
        )
    )


def ci_levels(rows: list[dict[str, Any]]) -> list[float]:
    """The CI levels of the rows that have a CI (a row without one has none to say)."""
    return sorted({r["ci_level"] for r in rows if r.get("ci_level") is not None})


def seed_sets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs that differ only in ``train.seed``, one entry per configuration
    (``faapkit.evaluate.across_seeds``), at the rows' (first) CI level, else 95%."""
    from faapkit.evaluate.across_seeds import seed_groups

    return seed_groups(rows, (ci_levels(rows) or [0.95])[0])
