"""``checkpoints/best.pt`` and ``selection.json``: after each validated epoch, the run's choice
among its validated epochs by the ``train.select_*`` rule (:mod:`faapkit.train.selection`), and
the checkpoint of that epoch with the hash ``faap eval`` checks it against."""

from __future__ import annotations

from typing import Any

from faapkit.artifacts.checkpoint import save_training_checkpoint
from faapkit.artifacts.rundir import RunDir
from faapkit.config import FaapConfig
from faapkit.train.selection import (
    NONE_ELIGIBLE,
    RECORDED,
    SelectRule,
    describe_rule,
    eligibility,
    guarded,
    narrows,
    select_epoch,
)


def kept_sha256(previous: dict[str, Any] | None, epoch: int) -> str | None:
    """The ``checkpoint_sha256`` the previous ``selection.json`` recorded for ``best.pt`` of
    ``epoch`` (``None`` when it chose another epoch or recorded none: an older run)."""
    previous = previous or {}
    digest = previous.get("checkpoint_sha256")
    return digest if previous.get("epoch") == epoch and isinstance(digest, str) else None


def update_best(
    run: RunDir, config: FaapConfig, baseline: dict[str, Any], row: dict[str, Any], payload: dict[str, Any]
) -> None:
    """Keep ``best.pt`` and ``selection.json`` at the epoch the val rule prefers, given the epoch
    ``row`` just logged, its checkpoint ``payload`` and the unperturbed val ``baseline``."""
    drop, rule = config.train.select_max_advantaged_drop, config.train.select_rule
    selection = selection_record(run.read_log(), baseline, drop, rule, config.data.val_split)
    chosen = selection if selection["epoch"] is not None else None
    if chosen is not None and chosen["epoch"] == row["epoch"]:
        digest = save_training_checkpoint(run.checkpoints / "best.pt", {**payload, "selection": selection})
        selection["checkpoint_sha256"] = digest  # faap eval checks best.pt against it
    elif chosen is not None:  # best.pt stays the earlier epoch's: its recorded hash stays too
        selection["checkpoint_sha256"] = kept_sha256(run.read_selection(), chosen["epoch"])
    else:
        selection["checkpoint_sha256"] = None
        (run.checkpoints / "best.pt").unlink(missing_ok=True)
    run.write_selection(selection)


def selection_record(
    log: list[dict[str, Any]], baseline: dict[str, Any], drop: float, rule: SelectRule, split: str
) -> dict[str, Any]:
    """``selection.json`` (less the hash) for the train-log rows ``log`` and the unperturbed val
    ``baseline``: the rule, which epochs were eligible by it (``eligible_if``, ``eligible_epochs``),
    the chosen epoch and its val scores (``None`` when none was eligible) and the ``outcome`` in
    words. Readers of older files, without the eligibility keys, use ``.get``."""
    base_ap, base_gap = baseline["AP"][baseline["advantaged"]], float(baseline["gap_AP"])
    chosen = select_epoch(log, base_ap, drop, rule, baseline_gap=base_gap)
    kept = guarded(log, base_ap, drop)
    eligible = sorted({int(r["epoch"]) for r in kept if narrows(float(r["val"]["gap_AP"]), base_gap)})
    if chosen is not None:
        outcome = (
            f"epoch {chosen['epoch']}: val AP gap {chosen['val']['gap_AP']:+.4f} against the unperturbed "
            f"{base_gap:+.4f}, the rule's choice of {len(eligible)} eligible epoch(s)"
        )
    else:
        why = f"{len(kept)} guarded epoch(s), none narrower" if kept else "no epoch kept the guard"
        outcome = f"none: {NONE_ELIGIBLE} (unperturbed val AP gap {base_gap:+.4f}; {why})"
    return {
        "rule": RECORDED[rule],
        "description": describe_rule(drop, rule),
        "max_advantaged_drop": drop,
        "eligible_if": eligibility(drop, base_gap),
        "split": split,
        "val_baseline": baseline,
        "epoch": chosen["epoch"] if chosen else None,
        "val": chosen["val"] if chosen else None,
        "validated_epochs": [r["epoch"] for r in log if r.get("val")],
        "eligible_epochs": eligible,
        "outcome": outcome,
    }


def no_best_line(selection: dict[str, Any] | None) -> str | None:
    """The one line that ends a run whose selection chose no epoch (``None`` when it chose one or
    never validated): no best.pt, why, and the way on."""
    if selection is None or selection.get("epoch") is not None:
        return None
    outcome = selection.get("outcome")
    why = (
        outcome.removeprefix("none: ")
        if isinstance(outcome, str)
        else f"no validated epoch met the selection rule ({selection.get('description', '')})"
    )
    return (
        f"no best.pt: {why}; faap eval RUN refuses it, "
        "faap eval RUN --epoch N evaluates a checkpoint the run did not choose, labelled so"
    )
