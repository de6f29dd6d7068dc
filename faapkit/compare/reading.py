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

from faapkit.artifacts.records import MetricsFile, MetricsFileError, RunManifest, read_metrics_file, read_run_manifest
from faapkit.artifacts.rundir import RunDir
from faapkit.compare.records import RunRecord, train_only_records
from faapkit.errors import FaapError
from faapkit.fairness import former_choice_without_narrowing


class LeftOut(str):
    """A metrics file ``faap compare`` read and refused (its numbers are not numbers, or it is
    another run's): the line said on stderr, never a row."""


class NotOneSet(str):
    """A seed set whose seeds are not one configuration
    (:func:`faapkit.artifacts.seedset.check_one_configuration`): said on stderr, its runs shown
    as runs of their own configurations; ``--across-seeds`` refuses it."""


def check_metrics(f: Path, m: dict[str, Any], run_id: str | None) -> tuple[str | None, list[tuple[str, str]]]:
    """Why the metrics file ``f`` (JSON ``m``) of the run with ``run_id`` (``None``: a loose file,
    checked against the run folder it records, if that is still there) is refused, else ``None``
    (``faap compare`` leaves it out, ``faap report`` refuses to show it);
    and its flags (:func:`faapkit.artifacts.integrity.consistency_flags`, and ``parent-gone`` for
    a rescore whose metrics or detections are gone)."""
    from faapkit.artifacts.integrity import bad_number, consistency_flags

    bad = bad_number(m)
    if bad:
        return bad, []
    recorded = m.get("run_id")
    if recorded is not None and not isinstance(recorded, str):  # faap eval writes the run's id or null
        return f"its run_id is {json.dumps(recorded)[:40]}, not a run id (edited?)", []
    if run_id is None and isinstance(m.get("run"), str) and (Path(m["run"]) / "run.json").is_file():
        try:
            run_id = read_run_manifest(Path(m["run"]) / "run.json").run_id
        except FaapError:  # no longer a run faapkit reads: nothing to check against
            run_id = None
    if isinstance(recorded, str) and isinstance(run_id, str) and recorded != run_id:
        return (
            f"it evaluated run {recorded}, not this folder's run {run_id} (copied from another run?)",
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


def metrics_record(
    f: Path,
    m: MetricsFile,
    label: str,
    manifest: RunManifest | None,
    log: dict[int, dict[str, Any]],
    selected: Any,
) -> RunRecord:
    """The record of one faapkit metrics file ``f`` of run ``label``; ``manifest`` (the run's
    ``run.json``, ``None`` for a loose file) fills what the file does not say."""
    trained = manifest.dataset if manifest is not None else None
    data = m.dataset.dump() if m.dataset is not None else {}
    fingerprint = data.get("fingerprint", trained.fingerprint if trained else None)
    iou = m.eval.iou_thresholds if m.eval is not None else None
    run_id = (m.model_extra or {}).get("run_id")
    return RunRecord.model_validate(
        {
            "run": label,
            "path": str(f),
            "source": "faapkit",
            "version": manifest.version if manifest is not None else m.version,
            "epoch": m.epoch,
            "split": m.split,
            "split_by": m.split_by,
            "dataset": fingerprint,
            # which split of which root the fingerprint is of: run_datasets joins a run's splits
            "dataset_fingerprint": fingerprint,
            "dataset_split": m.split,
            "dataset_root": data.get("root", trained.root if trained else None),
            "dataset_images": data.get("images") if isinstance(data.get("images"), int) else None,
            "epsilon": m.epsilon,
            "reference": m.reference.dump() if m.reference is not None else None,
            "perturbed": m.metrics.get("perturbed"),
            "baseline": m.metrics.get("baseline"),
            "bootstrap": m.bootstrap,
            "train": log.get(m.epoch) if m.epoch is not None else None,
            # a best.pt evaluated with --accept-changed-best is not the checkpoint the run chose
            "selected_epoch": None if m.checkpoint_check == "differs from selection.json" else selected,
            # AP over other IoU thresholds is another metric (None: COCO's 0.50:0.05:0.95)
            "iou_thresholds": iou if isinstance(iou, list) else None,
            "codec": m.eval.codec if m.eval is not None else None,
            "exported": _exported_format(m),
            "rescored_from": (m.rescored_from or {}).get("metrics"),
            "scored_detections": scored_detections(m.dump()),
            "stale": stale_detections(f, m.dump()) if m.rescored_from else None,
            "evaluated_run_id": run_id if isinstance(run_id, str) else None,
        }
    )


def scored_detections(m: dict[str, Any]) -> list[str] | None:
    """``setting:sha256`` of each detections file the metrics ``m`` scored (``None``: none saved):
    two files with the same are the same detections, however they were rescored in between."""
    refs = m.get("detections")
    if not isinstance(refs, dict):
        return None
    found = [f"{s}:{ref.get('sha256')}" for s, ref in sorted(refs.items()) if isinstance(ref, dict)]
    return found or None


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
    manifest = run.manifest()
    label = path.name
    data = manifest.dataset
    log = {int(r["epoch"]): r for r in run.read_log()}
    selection = run.read_selection() or {}
    if former_choice_without_narrowing(selection) is not None:
        selection = {}  # chosen by the former rule without narrowing the val gap: not shown as chosen
    records: list[RunRecord] = []
    seen = set()
    for f in sorted((path / "eval").glob("*.json")) if (path / "eval").is_dir() else []:
        record, why = _checked(f, label, manifest, log, selection.get("epoch"))
        if record is None:
            (unreadable if unreadable is not None else []).append(why or f"{f}")
            continue
        seen.add(record.epoch)
        records.append(record)
    trained = train_only_records(label, path, "faapkit train log", manifest.version, data.fingerprint, log, seen)
    for rec in trained:
        rec.dataset_fingerprint, rec.dataset_split, rec.dataset_root = data.fingerprint, data.split, data.root
    records += trained
    seed, key = seed_and_config_key(manifest.config)
    for rec in records:
        rec.run_path = str(path)
        rec.run_id = manifest.run_id
        rec.seed, rec.config_key = seed, key
    return records


def _checked(
    f: Path, label: str, manifest: RunManifest | None, log: dict[int, dict[str, Any]], selected: Any
) -> tuple[RunRecord | None, str | None]:
    """The record of the metrics file ``f`` with its flags, or ``None`` and the line that says
    why not: ``f (why)`` for a file that is no metrics file, a :class:`LeftOut` for one that is
    refused (its numbers are not numbers, another run's, a malformed field)."""
    try:
        m = read_metrics_file(f)
    except MetricsFileError as exc:
        return None, f"{f} ({exc.detail})" if exc.not_metrics else LeftOut(f"{f}: {exc.detail}; left out")
    refused, flags = check_metrics(f, m.dump(), manifest.run_id if manifest is not None else None)
    if refused:
        return None, LeftOut(f"{f}: {refused}: left out")
    if manifest is None:  # a loose file: of the run it records, else of its checkpoint
        owner = m.run or m.checkpoint or str(f)
        label = Path(owner).name
        selected = (m.selection or {}).get("epoch")
    record, malformed = _record_or_why(f, m, label, manifest, log, selected)
    if record is None:
        return None, LeftOut(f"{f}: {malformed}")
    if manifest is None:
        record.run_path = owner
    return _flagged(record, flags), None


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
    record, why = _checked(path, "", None, {}, None)
    if record is None and not isinstance(why, LeftOut):
        return None
    if record is None:  # said in ``unreadable``, never a row
        (unreadable if unreadable is not None else []).append(why or str(path))
        return []
    return [record]


def _record_or_why(
    f: Path,
    m: MetricsFile,
    label: str,
    manifest: RunManifest | None,
    log: dict[int, dict[str, Any]],
    selected: Any,
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


def _exported_format(m: Any) -> str | None:
    """The format of the exported file an evaluation scored in place of the checkpoint's generator."""
    exported = (m.model_extra or {}).get("exported")
    return str(exported.get("format") or "unknown format") if isinstance(exported, dict) else None
