"""Reading faapkit's own results for ``faap compare``: a run folder (``run.json``, its train log,
``selection.json`` and ``eval/*.json``) and a loose metrics file (``faap eval --out FILE``), each
metrics file checked before it becomes a record (its numbers are numbers, it is this run's, its
hashes and gaps agree, what a rescore was scored from is still there). Each record describes one
(run, epoch, split) with per-group metrics of the perturbed and baseline settings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from faapkit.artifacts.rundir import RunDir
from faapkit.compare.records import RunRecord, train_only_records


class LeftOut(str):
    """A metrics file ``faap compare`` read and refused (its numbers are not numbers, or it is
    another run's): the line said on stderr, never a row."""


def check_metrics(f: Path, m: dict[str, Any], run_id: str | None) -> tuple[str | None, list[tuple[str, str]]]:
    """Why the metrics file ``f`` (JSON ``m``) of the run with ``run_id`` (``None``: a loose file,
    checked against the run folder it records, if that is still there) is refused, else ``None``;
    and its flags (:func:`faapkit.artifacts.integrity.consistency_flags`, and ``parent-gone`` for
    a rescore whose metrics or detections are gone)."""
    from faapkit.artifacts.integrity import bad_number, consistency_flags

    bad = bad_number(m)
    if bad:
        return f"{bad}: left out", []
    recorded = m.get("run_id")
    if recorded is not None and not isinstance(recorded, str):  # faap eval writes the run's id or null
        return f"its run_id is {json.dumps(recorded)[:40]}, not a run id (edited?): left out", []
    if run_id is None and isinstance(m.get("run"), str) and (Path(m["run"]) / "run.json").is_file():
        try:
            run_id = json.loads((Path(m["run"]) / "run.json").read_text()).get("run_id")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            run_id = None
    if isinstance(recorded, str) and isinstance(run_id, str) and recorded != run_id:
        return (
            f"it evaluated run {recorded}, not this folder's run {run_id} (copied from another run?): left out",
            [],
        )
    flags = consistency_flags(m)
    gone = _parent_gone(f, m)
    return None, flags + ([("parent-gone", gone)] if gone else [])


def _parent_gone(f: Path, m: dict[str, Any]) -> str | None:
    """For a rescore: what it was scored from that is gone (its metrics file, found where it
    was or beside it, or a detections file it references)."""
    source = (m.get("rescored_from") or {}).get("metrics") if isinstance(m.get("rescored_from"), dict) else None
    if not isinstance(source, str):
        return None
    if not Path(source).is_file() and not (f.parent / Path(source).name).is_file():
        return f"the metrics it was rescored from ({source}) are gone: its numbers can no longer be checked"
    refs = m.get("detections")
    for setting, ref in sorted(refs.items()) if isinstance(refs, dict) else []:
        name = ref.get("file") if isinstance(ref, dict) else None
        if isinstance(name, str) and not (f.parent / name).is_file():
            return f"the {setting} detections it scored ({f.parent / name}) are gone: it can no longer be checked"
    return None


def read_metrics_file(f: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A faapkit metrics file's JSON, or ``None`` and why it is not one faapkit reads."""
    try:
        m = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(m, dict) or m.get("schema") != "faapkit.metrics/1":
        return None, "not a faap eval metrics file"
    if not isinstance(m.get("metrics"), dict) or not all(isinstance(v, dict) for v in m["metrics"].values()):
        return None, "no per-setting 'metrics'"
    return m, None


def metrics_record(
    f: Path, m: dict[str, Any], label: str, manifest: dict[str, Any], log: dict[int, dict[str, Any]], selected: Any
) -> RunRecord:
    """The record of one faapkit metrics file ``f`` (JSON ``m``) of run ``label``; ``manifest``
    (the run's ``run.json``, empty for a loose file) fills what the file does not say."""
    data = manifest.get("dataset", {})
    epoch = m.get("epoch")
    metrics = m["metrics"]
    iou = (m.get("eval") or {}).get("iou_thresholds")
    return RunRecord.model_validate(
        {
            "run": label,
            "path": str(f),
            "source": "faapkit",
            "version": manifest.get("version", m.get("version")),
            "epoch": epoch,
            "split": m.get("split"),
            "split_by": m.get("split_by"),
            "dataset": m.get("dataset", {}).get("fingerprint", data.get("fingerprint")),
            # which split of which root the fingerprint is of: run_datasets joins a run's splits
            "dataset_fingerprint": m.get("dataset", {}).get("fingerprint", data.get("fingerprint")),
            "dataset_split": m.get("split"),
            "dataset_root": m.get("dataset", {}).get("root", data.get("root")),
            "epsilon": m.get("epsilon"),
            "reference": m.get("reference"),
            "perturbed": metrics.get("perturbed"),
            "baseline": metrics.get("baseline"),
            "bootstrap": m.get("bootstrap"),
            "train": log.get(epoch) if isinstance(epoch, int) else None,
            # a best.pt evaluated with --accept-changed-best is not the checkpoint the run chose
            "selected_epoch": None if m.get("checkpoint_check") == "differs from selection.json" else selected,
            # AP over other IoU thresholds is another metric (None: COCO's 0.50:0.05:0.95)
            "iou_thresholds": iou if isinstance(iou, list) else None,
            "rescored_from": (m.get("rescored_from") or {}).get("metrics"),
            "stale": stale_detections(f, m) if m.get("rescored_from") else None,
            "evaluated_run_id": m.get("run_id") if isinstance(m.get("run_id"), str) else None,
        }
    )


def stale_detections(f: Path, m: dict[str, Any]) -> str | None:
    """Why the detections a rescore ``f`` scored are no longer those it references (a file there
    with another sha256: the evaluation was replaced since), or ``None``. A reference to no file,
    or to one that is gone, cannot be checked and is not called stale (``--rescore`` refuses it)."""
    refs = m.get("detections")
    for setting, ref in sorted(refs.items()) if isinstance(refs, dict) else []:
        target = f.parent / str(ref.get("file")) if isinstance(ref, dict) and ref.get("file") else None
        if (
            target is not None
            and target.is_file()
            and hashlib.sha256(target.read_bytes()).hexdigest() != ref.get("sha256")
        ):
            return f"its {setting} detections ({target}) changed since it was scored"
    return None


def read_native(path: Path, unreadable: list[str] | None = None) -> list[RunRecord]:
    """The records of a faapkit run folder; an ``eval/*.json`` that is not a metrics file faapkit
    reads is named in ``unreadable`` and left out (one bad file never hides the rest)."""
    run = RunDir(path)
    manifest = run.read_manifest()
    label = path.name
    data = manifest.get("dataset", {})
    dataset = data.get("fingerprint")
    log = {int(r["epoch"]): r for r in run.read_log()}
    selection = run.read_selection() or {}
    records: list[RunRecord] = []
    seen = set()
    run_id = manifest.get("run_id") if isinstance(manifest.get("run_id"), str) else None
    for f in sorted((path / "eval").glob("*.json")) if (path / "eval").is_dir() else []:
        m, why = read_metrics_file(f)
        refused, flags = check_metrics(f, m, run_id) if m is not None else (None, [])
        record, malformed = (
            _record_or_why(f, m, label, manifest, log, selection.get("epoch")) if m and not refused else (None, None)
        )
        if record is None:
            (unreadable if unreadable is not None else []).append(
                LeftOut(f"{f}: {refused or malformed}") if refused or malformed else f"{f} ({why})"
            )
            continue
        seen.add(record.epoch)
        records.append(_flagged(record, flags))
    trained = train_only_records(label, path, "faapkit train log", manifest.get("version"), dataset, log, seen)
    for rec in trained:
        rec.dataset_fingerprint, rec.dataset_split, rec.dataset_root = dataset, data.get("split"), data.get("root")
    records += trained
    seed, key = seed_and_config_key(manifest.get("config"))
    for rec in records:
        rec.run_path = str(path)
        rec.run_id = manifest.get("run_id")
        rec.seed, rec.config_key = seed, key
    return records


def seed_and_config_key(config: Any) -> tuple[int | None, str | None]:
    """A run config's ``train.seed`` and a hash of the rest: runs that differ only in seed share it."""
    if not isinstance(config, dict) or not isinstance(config.get("train"), dict):
        return None, None
    seed = config["train"].get("seed")
    rest = {**config, "train": {k: v for k, v in config["train"].items() if k != "seed"}}
    key = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return (seed if isinstance(seed, int) and not isinstance(seed, bool) else None), key


def read_loose(path: Path, unreadable: list[str] | None = None) -> list[RunRecord] | None:
    """A faapkit metrics file outside a run's ``eval/`` (``faap eval --out FILE``, a loose
    checkpoint's ``<ckpt>.eval/``) as one record; ``None`` if it is not one. It belongs to the run
    it records, else to its checkpoint, so that a checkpoint's val and test evaluations are one
    run (``--best-per-run`` chooses on one and reports the other)."""
    m, _ = read_metrics_file(path)
    if m is None:
        return None
    refused, flags = check_metrics(path, m, None)
    if refused:  # said in ``unreadable``, never a row
        (unreadable if unreadable is not None else []).append(LeftOut(f"{path}: {refused}"))
        return []
    owner = m.get("run") or m.get("checkpoint") or str(path)
    owner = str(owner) if isinstance(owner, str) else str(path)
    selected = (m.get("selection") or {}).get("epoch") if isinstance(m.get("selection"), dict) else None
    record, malformed = _record_or_why(path, m, Path(owner).name, {}, {}, selected)
    if record is None:
        (unreadable if unreadable is not None else []).append(LeftOut(f"{path}: {malformed}"))
        return []
    record.run_path = owner
    return [_flagged(record, flags)]


def _record_or_why(
    f: Path, m: dict[str, Any], label: str, manifest: dict[str, Any], log: dict[int, dict[str, Any]], selected: Any
) -> tuple[RunRecord | None, str | None]:
    """:func:`metrics_record`, or ``None`` and why the file's fields cannot make one (an
    ``epoch`` that is text, a ``reference`` or group that is not a mapping: edited by hand), so
    that one malformed file is one line naming it and key, never an error that hides the rest."""
    try:
        return metrics_record(f, m, label, manifest, log, selected), None
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(record)"
        got = json.dumps(first.get("input"), default=str)[:40]
        return None, f"its '{key}' is {got}: {first['msg'].lower()}; left out"
    except (AttributeError, TypeError) as exc:
        return None, f"a field is not what faap eval writes ({exc}); left out"


def _flagged(record: RunRecord, flags: list[tuple[str, str]]) -> RunRecord:
    """``record`` with its metrics file's flags (an empty list: checked, nothing to say)."""
    record.flags = [flag for flag, _ in flags]
    record.flag_note = "; ".join(f"{flag}: {why}" for flag, why in flags) or None
    return record
