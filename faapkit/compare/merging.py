"""One row per evaluation: a rescore that repeats an evaluation (or scored detections that
changed since) is left out, copies of a run or of a metrics file are merged, and a perturbed-only
record borrows the baseline measured on its dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from faapkit.artifacts.integrity import UNTRUSTED_FLAGS
from faapkit.compare.records import RunRecord


def drop_rescores(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """Leave out each ``faap eval --rescore`` result whose detections changed since it was scored
    (``stale``), and each whose rescored metrics file, or the evaluation whose detections it
    scored (a rescore of a rescore whose parent is gone), is among the records: the same detections
    of the same epoch and split, so a second row would count that evaluation twice (and
    ``--best-per-run`` could pick either). A rescore at other IoU thresholds is another metric and
    stays. Returns the kept records and a note per left-out file."""
    by_path = {Path(str(r.path)).resolve(): r for r in records if r.path}
    # an evaluation by the detections it scored: a rescore of a rescore whose parent is gone still
    # scored its grandparent's detections
    by_detections = {(r.run_path, str(r.scored_detections)): r for r in records if not r.rescored_from}
    kept, notes = [], []
    for r in records:
        if r.stale:  # its numbers describe detections that no longer exist
            notes.append(f"{r.path}: a rescore, but {r.stale}; left out (re-run faap eval --rescore)")
            continue
        source = r.rescored_from
        original = None
        if source:  # where it was rescored from, or a file of that name beside it (a moved or copied run)
            here = Path(str(r.path)).resolve().parent / Path(str(source)).name
            original = by_path.get(Path(str(source)).resolve()) or by_path.get(here)
            if original is None and r.scored_detections:
                original = by_detections.get((r.run_path, str(r.scored_detections)))
        if original is not None and original.iou_thresholds == r.iou_thresholds:
            notes.append(
                f"{r.path}: a rescore of {Path(str(original.path)).name} (the same detections), left out so that "
                "evaluation is one row"
            )
            continue
        kept.append(r)
    return kept, notes


def merge_copies(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """One run and one row per evaluation, however many copies of them the paths hold.

    Run folders with one run id (``cp -r`` of a run) are one run, labelled as the first path;
    an evaluation found twice (the same metrics in a copied folder, or a metrics file copied out
    of ``eval/``) is one row whose ``also_at`` names the other files; a run all of whose
    evaluations are copies of another run's is that run. Else a mean over rows would count one
    measurement twice and ``--best-per-run`` would choose between copies as if independent.
    Returns the kept records and a note per merge."""
    notes: list[str] = []
    order = sorted(records, key=_copy_order)
    first_of_id: dict[str, RunRecord] = {}
    for r in order:
        if r.run_id:
            first = first_of_id.setdefault(str(r.run_id), r)
            if first.run_path != r.run_path:
                note = f"{r.run_path} is a copy of run {first.run_path} (run id {r.run_id}): shown as one run"
                notes += [note] if note not in notes else []
                r.run = first.run
    kept: list[RunRecord] = []
    seen: dict[str, list[RunRecord]] = {}  # content key -> the distinct runs' records holding it
    copied_from: dict[str, set[str]] = {}  # run path -> labels its duplicated evaluations were kept under
    own: dict[str, int] = {}  # run path -> its evaluations kept as rows
    for r in order:
        where = str(r.run_path or r.path)
        if not (r.perturbed or r.baseline):
            kept.append(r)
            continue
        same = next((s for s in seen.get(_content_key(r), []) if _one_run(s, r)), None)
        if same is not None:
            same.also_at = [*(same.also_at or []), str(r.path)]
            notes.append(f"{r.path}: the same evaluation as {same.path}; shown once")
            copied_from.setdefault(where, set()).add(str(same.run))
            continue
        seen.setdefault(_content_key(r), []).append(r)
        own[where] = own.get(where, 0) + 1
        kept.append(r)
    for where, labels in copied_from.items():
        if not own.get(where) and len(labels) == 1:  # only copies: the run they are copies of
            label = next(iter(labels))
            for r in kept:
                if str(r.run_path or r.path) == where:
                    r.run = label
    evaluated = {(str(r.run), r.epoch) for r in kept if r.perturbed or r.baseline}
    logged: set[tuple[str, Any]] = set()
    out = []
    for r in kept:  # a copy's train log rows are its run's: each epoch once, none that is evaluated
        if not (r.perturbed or r.baseline) and r.epoch is not None:
            key2 = (str(r.run), r.epoch)
            if key2 in evaluated or key2 in logged:
                continue
            logged.add(key2)
        out.append(r)
    return out, notes


def _one_run(a: RunRecord, b: RunRecord) -> bool:
    """Whether two records of equal numbers can be one evaluation: not when they name two runs
    (two seeds, or the same command run twice, can give equal numbers; each is a sample and
    counts)."""
    ids = {r.run_id or r.evaluated_run_id for r in (a, b)}
    return None in ids or len(ids) == 1


BAD_FLAGS = UNTRUSTED_FLAGS  # a copy with these is not the one kept


def _copy_order(r: RunRecord) -> tuple[bool, bool, str]:
    """Which copy is kept: one whose numbers passed the checks before an edited one, one inside
    its run folder before a loose file, then by path."""
    path, run = os.path.abspath(str(r.path)), os.path.abspath(str(r.run_path or r.path))
    return (bool(BAD_FLAGS & set(r.flags or [])), not (path == run or path.startswith(run + os.sep)), path)


def _content_key(r: RunRecord) -> str:
    """What makes two records one evaluation: the same split, epoch, IoU thresholds, epsilon,
    groups, codec and exported file format, and numbers (a larger epsilon the generator never
    reaches gives the same numbers)."""
    keys: tuple[str, ...] = ("split", "epoch", "iou_thresholds", "epsilon", "split_by", "reference", "codec")
    keys += ("exported",)
    fields = [getattr(r, k) for k in (*keys, "perturbed", "baseline", "bootstrap")]
    return json.dumps(fields, sort_keys=True, default=str)


def fill_baselines(records: list[RunRecord]) -> None:
    """Perturbed-only records (schema C) borrow the baseline of a baseline-only record of the same
    dataset and split, never across datasets (research P1)."""
    baselines = {(r.dataset, r.split): r.baseline for r in records if r.is_baseline_only and r.baseline}
    for r in records:
        if r.perturbed and not r.baseline:
            base = baselines.get((r.dataset, r.split))
            if base:
                r.baseline = base
                r.baseline_from = "matching-dataset baseline file"
