"""Finding and reading runs for ``faap compare`` and ``faap inspect run``.

Native faapkit runs are read directly; every other folder or loose metrics file is offered to the
``faap_read_run`` hook (built-in: the research scripts' formats). Discovery is recursive: every
folder under the given paths is visited (a faapkit run's own subfolders excepted), and every JSON
file no record claims is offered on its own, so run folders, loose metrics files and stray logs
side by side are all found. Each record describes one (run, epoch, split) with per-group metrics
of the perturbed and baseline settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from faapkit.artifacts.rundir import RunDir
from faapkit.fairness import gap_if_known
from faapkit.run_records import train_only_records


def read_native(path: Path, unreadable: list[str] | None = None) -> list[dict[str, Any]]:
    """The records of a faapkit run folder; an ``eval/*.json`` that is not a metrics file faapkit
    reads is named in ``unreadable`` and left out (one bad file never hides the rest)."""
    run = RunDir(path)
    manifest = run.read_manifest()
    label = path.name
    data = manifest.get("dataset", {})
    dataset = data.get("fingerprint")
    log = {int(r["epoch"]): r for r in run.read_log()}
    selection = run.read_selection() or {}
    records = []
    seen = set()
    for f in sorted((path / "eval").glob("*.json")) if (path / "eval").is_dir() else []:
        try:
            m = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            (unreadable if unreadable is not None else []).append(f"{f} (not JSON: {exc})")
            continue
        if not isinstance(m, dict) or m.get("schema") != "faapkit.metrics/1":
            (unreadable if unreadable is not None else []).append(f"{f} (not a faap eval metrics file)")
            continue
        if not isinstance(m.get("metrics"), dict) or not all(isinstance(v, dict) for v in m["metrics"].values()):
            (unreadable if unreadable is not None else []).append(f"{f} (no per-setting 'metrics')")
            continue
        epoch = m.get("epoch")
        seen.add(epoch)
        metrics = m["metrics"]
        iou = (m.get("eval") or {}).get("iou_thresholds")
        records.append(
            {
                "run": label,
                "path": str(f),
                "source": "faapkit",
                "version": manifest.get("version"),
                "epoch": epoch,
                "split": m.get("split"),
                "split_by": m.get("split_by"),
                "dataset": m.get("dataset", {}).get("fingerprint", dataset),
                # which split of which root the fingerprint is of: run_datasets joins a run's splits
                "dataset_fingerprint": m.get("dataset", {}).get("fingerprint", dataset),
                "dataset_split": m.get("split"),
                "dataset_root": m.get("dataset", {}).get("root", data.get("root")),
                "epsilon": m.get("epsilon"),
                "reference": m.get("reference"),
                "perturbed": metrics.get("perturbed"),
                "baseline": metrics.get("baseline"),
                "bootstrap": m.get("bootstrap"),
                "train": log.get(epoch) if epoch is not None else None,
                "selected_epoch": selection.get("epoch"),
                # AP over other IoU thresholds is another metric (None: COCO's 0.50:0.05:0.95)
                "iou_thresholds": iou if isinstance(iou, list) else None,
                "rescored_from": (m.get("rescored_from") or {}).get("metrics"),
            }
        )
    trained = train_only_records(label, path, "faapkit train log", manifest.get("version"), dataset, log, seen)
    for rec in trained:
        rec.update(dataset_fingerprint=dataset, dataset_split=data.get("split"), dataset_root=data.get("root"))
    records += trained
    for rec in records:
        rec["run_path"] = str(path)
    return records


NOT_METRICS = frozenset({"config.json", "dataset_layout.json", "run.json", "selection.json"})


def discover(paths: list[Path], pm: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Walk ``paths`` recursively; returns records and the paths nobody could read.

    A folder a plugin reads is still descended into (an output root can be read for its own
    top-level log and still hold run folders); a JSON file beside it that no returned record
    names in ``path`` is offered to the plugins on its own (a loose metrics file)."""
    records: list[dict[str, Any]] = []
    unreadable: list[str] = []
    visited: set[Path] = set()

    def offer(p: Path) -> None:
        found = pm.hook.faap_read_run(path=p)
        if found:
            records.extend(found)
        elif p.suffix == ".json" and p.name not in NOT_METRICS:
            unreadable.append(str(p))

    def visit(p: Path) -> None:
        if not p.is_dir():
            offer(p) if p.is_file() else unreadable.append(f"{p} (not found)")
            return
        real = p.resolve()
        if real in visited:  # a symlinked folder seen twice, or a link loop
            return
        visited.add(real)
        if (p / "run.json").is_file():
            records.extend(read_native(p, unreadable))  # its eval/ and checkpoints/ are its own
            return
        found = pm.hook.faap_read_run(path=p) or []
        records.extend(found)
        claimed = {str(r.get("path")) for r in found}
        try:
            children = sorted(p.iterdir())
        except OSError as exc:
            unreadable.append(f"{p} ({exc.strerror or exc})")
            return
        for child in children:
            if child.name.startswith("."):
                continue
            if child.is_dir():
                visit(child)
            elif child.suffix == ".json" and child.name not in NOT_METRICS and str(child) not in claimed:
                offer(child)

    for path in paths:
        visit(Path(path))
    _unique_labels(records)
    return records, unreadable


def drop_rescores(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Leave out each ``faap eval --rescore`` result whose rescored metrics file is among the
    records: the same detections of the same epoch and split, so a second row would count that
    evaluation twice (and ``--best-per-run`` could pick either). A rescore at other IoU
    thresholds is another metric and stays. Returns the kept records and a note per left-out file."""
    by_path = {Path(str(r["path"])).resolve(): r for r in records if r.get("path")}
    kept, notes = [], []
    for r in records:
        source = r.get("rescored_from")
        original = None
        if source:  # where it was rescored from, or a file of that name beside it (a moved or copied run)
            here = Path(str(r["path"])).resolve().parent / Path(str(source)).name
            original = by_path.get(Path(str(source)).resolve()) or by_path.get(here)
        if original is not None and original.get("iou_thresholds") == r.get("iou_thresholds"):
            notes.append(
                f"{r['path']}: a rescore of {Path(str(source)).name} (the same detections), left out so that "
                "evaluation is one row"
            )
            continue
        kept.append(r)
    return kept, notes


def _unique_labels(records: list[dict[str, Any]]) -> None:
    """Two runs found under the same name (``a/level-up`` and ``b/level-up``) are labelled by
    their paths below the folder they share, so that no two runs merge into one row group."""
    paths: dict[str, set[str]] = {}
    for r in records:
        paths.setdefault(str(r.get("run")), set()).add(str(r.get("run_path") or r.get("run")))
    for label, where in paths.items():
        if len(where) < 2:
            continue
        common = os.path.commonpath(sorted(where))
        for r in records:
            if str(r.get("run")) != label or not r.get("run_path"):
                continue
            rel = Path(os.path.relpath(str(r["run_path"]), common))
            if str(rel) != ".":
                r["run"] = str(rel.with_suffix("") if rel.suffix == ".json" else rel)


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """Flat row: per-group AP/AR (perturbed, else baseline), gaps, change vs baseline, CIs."""
    ref = record.get("reference") or {}
    setting = record.get("perturbed") or record.get("baseline")
    row: dict[str, Any] = {
        k: record.get(k) for k in ("run", "version", "epoch", "split", "dataset", "epsilon", "source", "selected_epoch")
    }
    if record.get("iou_thresholds"):
        row["iou_thresholds"] = record["iou_thresholds"]
    row["setting"] = (
        "perturbed" if record.get("perturbed") else ("baseline" if record.get("baseline") else "train only")
    )
    if setting:
        groups = list(setting)
        for g in groups:
            row[f"AP_{g}"] = setting[g].get("AP")
            row[f"AR_{g}"] = setting[g].get("AR")
        adv, dis = ref.get("advantaged"), ref.get("disadvantaged")
        if record.get("perturbed") and record.get("baseline") and adv in record["perturbed"]:
            after, before = record["perturbed"][adv].get("AP"), record["baseline"].get(adv, {}).get("AP")
            if after is not None and before is not None:
                row["AP_advantaged_change"] = after - before
        for m in ("AP", "AR"):
            row[f"{m}_gap"] = _gap(setting, m, adv, dis)
            if record.get("perturbed") and record.get("baseline"):
                base_gap = _gap(record["baseline"], m, adv, dis)
                row[f"{m}_gap_baseline"] = base_gap
                row[f"{m}_gap_change"] = (
                    None if row[f"{m}_gap"] is None or base_gap is None else row[f"{m}_gap"] - base_gap
                )
        boot = (record.get("bootstrap") or {}).get("gaps", {})
        for m in ("AP", "AR"):
            if m in boot:
                row[f"{m}_gap_ci"] = boot[m].get("perturbed") or boot[m].get("baseline")
                row[f"{m}_change_ci"] = boot[m].get("change")
                row[f"{m}_significant"] = boot[m].get("significant")
    train = record.get("train") or {}
    if "total_g" in train or "total" in train:
        row["train_total"] = train.get("total", train.get("total_g"))
    return row


def select_on_val(
    rows: list[dict[str, Any]], metric: str = "AP_gap", max_advantaged_drop: float = 0.005
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each run's rows at the epoch chosen on its **val** rows, reported on every other split.

    The rule is the trainer's (``faapkit.train.selection``): the smallest val gap among epochs whose
    advantaged group lost at most ``max_advantaged_drop`` val AP; without val evaluations, the
    epoch the run itself chose on val during training (``selection.json``). A run with neither, or
    whose chosen epoch has no evaluation on another split, is left out with a note: choosing on
    the split that is reported would overstate the effect."""
    kept: list[dict[str, Any]] = []
    notes: list[str] = []
    # AP at other IoU thresholds is another metric: chosen and reported apart from COCO's
    for run, iou in sorted({(str(r["run"]), _iou_label(r)) for r in rows}):
        mine = [r for r in rows if str(r["run"]) == run and _iou_label(r) == iou]
        run = f"{run} ({iou})" if iou else run
        val = [
            r
            for r in mine
            if r.get("split") == "val"
            and r.get(metric) is not None
            and r.get("epoch") is not None
            and (r.get("AP_advantaged_change") is None or r["AP_advantaged_change"] >= -max_advantaged_drop)
        ]
        if val:
            epoch = min(val, key=lambda r: (r[metric], r["epoch"]))["epoch"]
        else:
            epoch = next((r["selected_epoch"] for r in mine if r.get("selected_epoch") is not None), None)
        if epoch is None:
            validated = any(r.get("split") == "val" and r.get(metric) is not None for r in mine)
            why = (
                "no val epoch kept the advantaged group within the guard"
                if validated
                else "no val evaluation to select on"
            )
            notes.append(f"{run}: {why}; left out")
            continue
        reported = [r for r in mine if r.get("epoch") == epoch and r.get("split") not in (None, "val")]
        if not reported:
            notes.append(f"{run}: epoch {epoch} was chosen on val but has no evaluation on another split; left out")
        kept += [{**r, "selected_on": "val"} for r in reported]
    return kept, notes


def _iou_label(row: dict[str, Any]) -> str:
    """``IoU 0.5-0.75`` for other IoU thresholds than COCO's, else empty."""
    thresholds = row.get("iou_thresholds")
    return "IoU " + "-".join(f"{t:g}" for t in thresholds) if thresholds else ""


def _gap(setting: dict[str, Any], metric: str, adv: str | None, dis: str | None) -> float | None:
    """The record's gap by the one rule (``faapkit.fairness``): the named pair, else max - min."""
    pair = (dis, adv) if dis is not None and adv is not None else None
    return gap_if_known({g: v.get(metric) for g, v in setting.items()}, pair)


def fill_baselines(records: list[dict[str, Any]]) -> None:
    """Perturbed-only records (schema C) borrow the baseline of a baseline-only record of the same
    dataset and split, never across datasets (research P1)."""
    baselines = {
        (r.get("dataset"), r.get("split")): r["baseline"]
        for r in records
        if r.get("is_baseline_only") and r.get("baseline")
    }
    for r in records:
        if r.get("perturbed") and not r.get("baseline"):
            base = baselines.get((r.get("dataset"), r.get("split")))
            if base:
                r["baseline"] = base
                r["baseline_from"] = "matching-dataset baseline file"


def describe_run(path: Path, pm: Any) -> dict[str, Any]:
    if (path / "run.json").is_file():
        run = RunDir(path)
        manifest = run.read_manifest()
        log = run.read_log()
        return {
            "path": str(path),
            "format": manifest.get("format"),
            "version": manifest.get("version"),
            "created_at": manifest.get("created_at"),
            "dataset": manifest.get("dataset", {}).get("fingerprint"),
            "detector": manifest.get("detector", {}).get("name"),
            "epochs_logged": [r["epoch"] for r in log],
            "checkpoints": [p.name for p in run.checkpoint_files()],
            "evaluations": sorted(p.name for p in (path / "eval").glob("*.json")) if (path / "eval").is_dir() else [],
            "last_epoch": {k: v for k, v in (log[-1] if log else {}).items() if not isinstance(v, dict)},
        }
    records, _ = discover([path], pm)
    if not records:
        from faapkit.errors import FaapError

        raise FaapError(f"{path} is neither a faapkit run nor a format any plugin reads")
    return {
        "path": str(path),
        "format": records[0].get("source"),
        "records": len(records),
        "epochs": sorted({r["epoch"] for r in records if r.get("epoch") is not None}),
        "dataset": sorted({str(r.get("dataset")) for r in records}),
    }
