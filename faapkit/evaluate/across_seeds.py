"""One configuration over several training seeds: what ``faap eval SEEDSET`` prints and
``faap compare`` puts in one row. Torch-free.

A single run is a sample of its seed (and, on CPU, of the processor and thread count); the claim is
the spread over seeds. For a per-seed value (the change of AP gap, the share of the gap closed) this
gives its median and range, and the mean with a Student-t CI across seeds (the seeds are the
units resampled, not the images: each seed's own image-bootstrap CI says how sure that one run is,
and ``significant`` counts the seeds whose own CI of the change excludes 0). The prediction
interval says where one more run (another seed, another machine) is expected to fall: the
number a stranger's single quick-start run is checked against.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def spread(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """``{n, median, min, max, mean, ci, predict}`` of per-seed ``values``; ``ci`` is the Student-t
    interval of the mean at ``confidence``, ``predict`` the Student-t prediction interval of one
    more value, ``mean +- t * sd * sqrt(1 + 1/n)`` (both ``None`` for fewer than 2 values)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"n": 0, "median": None, "min": None, "max": None, "mean": None, "ci": None, "predict": None}
    out: dict[str, Any] = {
        "n": len(xs),
        "median": statistics.median(xs),
        "min": min(xs),
        "max": max(xs),
        "mean": statistics.fmean(xs),
        "ci": None,
        "predict": None,
    }
    if len(xs) >= 2:
        from scipy.stats import t

        quantile, sd, n = float(t.ppf((1 + confidence) / 2, len(xs) - 1)), statistics.stdev(xs), len(xs)
        half = quantile * sd / math.sqrt(n)
        out["ci"] = [out["mean"] - half, out["mean"] + half]
        half = quantile * sd * math.sqrt(1 + 1 / n)
        out["predict"] = [out["mean"] - half, out["mean"] + half]
    return out


def seed_row(seed: int, result: Mapping[str, Any], metric: str = "AP") -> dict[str, Any]:
    """What one seed's evaluation (a ``faap eval`` result with a perturbed setting) contributes."""
    gaps = result["gaps"][metric]
    boot = ((result.get("bootstrap") or {}).get("gaps") or {}).get(metric) or {}
    ref = result.get("reference") or {}
    adv = ref.get("advantaged")
    deltas = result.get("deltas") or {}
    return {
        "seed": seed,
        "epoch": result.get("epoch"),
        "gap_before": gaps["baseline"],
        "gap_after": gaps["perturbed"],
        "change": gaps["change"],
        "change_ci": boot.get("change"),
        "significant": boot.get("significant"),
        "share_closed": gaps.get("share_closed"),
        "share_closed_ci": boot.get("share_closed"),
        "overshoot": gaps.get("overshoot"),
        "advantaged_change": (deltas.get(adv) or {}).get(metric) if adv else None,
    }


def aggregate(
    rows: Sequence[Mapping[str, Any]], confidence: float = 0.95, left_out: Sequence[str] = ()
) -> dict[str, Any]:
    """Across-seed summary of :func:`seed_row` rows: spreads of the change, the share closed and
    the advantaged group's change; how many seeds' own change CI excludes 0 (and how many lie below 0).
    ``left_out``: the set's other seeds, each said with why it is not among the rows (no
    evaluation, no chosen checkpoint, numbers edited); the set has ``of`` seeds in all."""
    changes = [r for r in rows if r.get("change") is not None]
    return {
        "seeds": [r["seed"] for r in rows],
        "of": len(rows) + len(left_out),
        "left_out": list(left_out),
        "change": spread([r["change"] for r in changes], confidence),
        "share_closed": spread([r["share_closed"] for r in rows if r.get("share_closed") is not None], confidence),
        "advantaged_change": spread(
            [r["advantaged_change"] for r in rows if r.get("advantaged_change") is not None], confidence
        ),
        "significant": sum(1 for r in rows if r.get("significant")),
        "significant_closing": sum(1 for r in rows if _closes_significantly(r)),
        "overshoot": sum(1 for r in rows if r.get("overshoot")),
        "confidence": confidence,
    }


def _closes_significantly(row: Mapping[str, Any]) -> bool:
    """The seed's own CI of the change excludes 0 on the side that shrinks the gap."""
    ci, before = row.get("change_ci"), row.get("gap_before")
    if not row.get("significant") or not ci or before is None or before == 0:
        return False
    return bool(ci[1] < 0) if before > 0 else bool(ci[0] > 0)


# row fields that say through what an evaluation ran: rows differing in one are never seeds of one row
EVALUATION_KINDS = ("codec", "exported", "other_detector")


def seed_groups(rows: Sequence[Mapping[str, Any]], confidence: float = 0.95) -> list[dict[str, Any]]:
    """``faap compare``'s rows of runs that differ only in ``train.seed`` (same ``config_key``,
    split, dataset, epsilon, groups compared, IoU thresholds and checkpoint choice), one aggregate
    per configuration with at least two seeds: medians, ranges and across-seed CIs of the change,
    the share closed and the advantaged group's change, and how many seeds close the gap
    significantly."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("config_key") is None or r.get("seed") is None or r.get("setting") != "perturbed":
            continue
        chosen = r.get("selected_epoch") is not None and r.get("epoch") == r.get("selected_epoch")
        which = "chosen on val" if chosen or r.get("selected_on") == "val" else f"epoch {r.get('epoch')}"
        # the evaluation too: the epsilon applied, the groups compared (``faap eval --epsilon``,
        # ``--split-by``, ``--disadvantaged``) and what stood between generator and detector (an
        # image codec, an exported file, another detector) make another configuration, never another seed
        evaluated = (
            r.get("epsilon"),
            str(r.get("gap_groups")),
            str(r.get("iou_thresholds")),
            *(str(r.get(k)) for k in EVALUATION_KINDS),
        )
        key = (r["config_key"], r.get("split"), r.get("dataset"), evaluated, which)
        groups.setdefault(key, []).append(r)
    out = []
    for (_, split, dataset, _, which), members in groups.items():
        # every run counts, two runs of one seed included (the same command twice is two samples
        # of the processor's float trajectory, never one silently dropped)
        every = sorted(members, key=lambda m: (m["seed"], str(m.get("run"))))
        if len({m["seed"] for m in every}) < 2:
            continue
        runs, left_out = _trusted(every)
        per_seed = [_seed_values(m) for m in runs]
        summary = aggregate(per_seed, confidence, left_out)
        first = every[0]
        out.append(
            {
                "run": _set_label([str(m.get("run_path") or m.get("run")) for m in every]),
                "version": first.get("version"),
                "split": split,
                "dataset": dataset,
                "checkpoint": which,
                "through": ", ".join(f"{k} {first[k]}" for k in EVALUATION_KINDS if first.get(k)),
                "seeds": [m["seed"] for m in runs],
                "of": summary["of"],
                "left_out": left_out,
                "AP_gap_baseline": spread([p["gap_before"] for p in per_seed if p["gap_before"] is not None])["median"],
                **{k: summary[k] for k in ("change", "share_closed", "advantaged_change")},
                "significant_closing": summary["significant_closing"],
                "overshoot": summary["overshoot"],
                "confidence": confidence,
                "runs": [str(m.get("run")) for m in runs],
            }
        )
    return out


def _trusted(runs: list[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The runs whose metrics file passed compare's checks, and each other one said with its flags
    (edited by hand, a gap that is not its groups' difference, outside its own CI): a number
    faapkit did not compute never enters a spread across seeds."""
    from faapkit.artifacts.integrity import UNTRUSTED_FLAGS

    kept, left_out = [], []
    for m in runs:
        bad = [f for f in m.get("flags") or [] if f in UNTRUSTED_FLAGS]
        if bad:
            left_out.append(f"seed {m['seed']} ({', '.join(bad)}: {m.get('run')})")
        else:
            kept.append(m)
    return kept, left_out


def _seed_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """What one run's compare row contributes to :func:`aggregate`."""
    return {
        "seed": row["seed"],
        "change": row.get("AP_gap_change"),
        "change_ci": row.get("AP_change_ci"),
        "significant": row.get("AP_significant"),
        "gap_before": row.get("AP_gap_baseline"),
        "share_closed": row.get("AP_share_closed"),
        "overshoot": row.get("AP_overshoot"),
        "advantaged_change": row.get("AP_advantaged_change"),
    }


def _set_label(paths: Sequence[str]) -> str:
    """The seeds' common parent folder's name (a ``--seeds`` set), else the first run and a count."""
    import os

    parents = {os.path.dirname(os.path.abspath(p)) for p in paths}
    if len(parents) == 1 and os.path.isfile(os.path.join(next(iter(parents)), "seeds.json")):
        return os.path.basename(parents.pop())
    return f"{os.path.basename(paths[0])} +{len(paths) - 1}"
