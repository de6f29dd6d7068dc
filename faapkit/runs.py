"""Finding and reading runs for ``faap compare`` and ``faap inspect run``.

Native faapkit runs are read directly; every other folder or loose metrics file is offered to the
``faap_read_run`` hook (built-in: the research scripts' formats). Discovery is recursive: every
folder under the given paths is visited (a faapkit run's own subfolders excepted), and every JSON
file no record claims is offered on its own, so run folders, loose metrics files and stray logs
side by side are all found. Each record describes one (run, epoch, split) with per-group metrics
of the perturbed and baseline settings.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from faapkit.artifacts.rundir import RunDir
from faapkit.fairness import gap_if_known, overshoot, share_closed
from faapkit.run_records import RunRecord, as_record, train_only_records
from faapkit.train.selection import DEFAULT_RULE, SelectRule


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


NOT_METRICS = frozenset({"config.json", "dataset_layout.json", "run.json", "selection.json", "seeds.json"})


def discover(paths: list[Path], pm: Any) -> tuple[list[RunRecord], list[str]]:
    """Walk ``paths`` recursively; returns records and the paths nobody could read.

    A folder a plugin reads is still descended into (an output root can be read for its own
    top-level log and still hold run folders); a JSON file beside it that no returned record
    names in ``path`` is offered to the plugins on its own (a loose metrics file). A plugin's
    plain-dict records are validated into :class:`RunRecord` (a malformed one is one error)."""
    records: list[RunRecord] = []
    unreadable: list[str] = []
    visited: set[Path] = set()

    def ask(p: Path) -> list[RunRecord]:
        return [as_record(item, p) for item in pm.hook.faap_read_run(path=p) or []]

    def offer(p: Path) -> None:
        loose = read_loose(p, unreadable) if p.suffix == ".json" else None
        if loose is not None:  # a faapkit metrics file (a refused one is noted in unreadable)
            records.extend(loose)
            return
        found = ask(p)
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
        found = ask(p)
        records.extend(found)
        claimed = {str(r.path) for r in found}
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


def drop_rescores(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """Leave out each ``faap eval --rescore`` result whose detections changed since it was scored
    (``stale``), and each whose rescored metrics file is among the records: the same detections
    of the same epoch and split, so a second row would count that evaluation twice (and
    ``--best-per-run`` could pick either). A rescore at other IoU thresholds is another metric and
    stays. Returns the kept records and a note per left-out file."""
    by_path = {Path(str(r.path)).resolve(): r for r in records if r.path}
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
        if original is not None and original.iou_thresholds == r.iou_thresholds:
            notes.append(
                f"{r.path}: a rescore of {Path(str(source)).name} (the same detections), left out so that "
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


BAD_FLAGS = frozenset({"edited", "gap", "outside-ci"})  # a copy with these is not the one kept


def _copy_order(r: RunRecord) -> tuple[bool, bool, str]:
    """Which copy is kept: one whose numbers passed the checks before an edited one, one inside
    its run folder before a loose file, then by path."""
    path, run = os.path.abspath(str(r.path)), os.path.abspath(str(r.run_path or r.path))
    return (bool(BAD_FLAGS & set(r.flags or [])), not (path == run or path.startswith(run + os.sep)), path)


def _content_key(r: RunRecord) -> str:
    """What makes two records one evaluation: the same split, epoch, IoU thresholds, epsilon and
    groups, and numbers (a larger epsilon the generator never reaches gives the same numbers)."""
    keys = ("split", "epoch", "iou_thresholds", "epsilon", "split_by", "reference")
    fields = [getattr(r, k) for k in (*keys, "perturbed", "baseline", "bootstrap")]
    return json.dumps(fields, sort_keys=True, default=str)


def _unique_labels(records: list[RunRecord]) -> None:
    """Two runs found under the same name (``a/level-up`` and ``b/level-up``) are labelled by
    their paths below the folder they share, so that no two runs merge into one row group."""
    paths: dict[str, set[str]] = {}
    for r in records:  # absolute: a loose file records its run's absolute path, the user may give it relative
        paths.setdefault(str(r.run), set()).add(os.path.abspath(str(r.run_path or r.run)))
    for label, where in paths.items():
        if len(where) < 2:
            continue
        common = os.path.commonpath(sorted(where))
        for r in records:
            if str(r.run) != label or not r.run_path:
                continue
            rel = Path(os.path.relpath(os.path.abspath(str(r.run_path)), common))
            if str(rel) != ".":
                r.run = str(rel.with_suffix("") if rel.suffix == ".json" else rel)


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
    if record.also_at:
        row["also_at"] = record.also_at
    if record.flags is not None:  # a faapkit metrics file, checked (an empty list: nothing found)
        row["flags"] = record.flags
    row["setting"] = "perturbed" if record.perturbed else ("baseline" if record.baseline else "train only")
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


def select_on_val(
    rows: list[dict[str, Any]],
    metric: str = "AP_gap",
    max_advantaged_drop: float = 0.005,
    rule: SelectRule = DEFAULT_RULE,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each run's rows at the epoch chosen on its **val** rows, reported on every other split.

    The rule is the trainer's (``faapkit.train.selection.choose``): among epochs whose advantaged
    group lost at most ``max_advantaged_drop`` val AP, the smallest |val gap| (``parity``) or signed
    val gap (``largest_lift``); without val evaluations, the epoch the run itself chose on val during
    training (``selection.json``). A run with neither, or whose chosen epoch has no evaluation on
    another split, is left out with a note: choosing on the split that is reported would overstate
    the effect."""
    from faapkit.train.selection import choose

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
            epoch = choose(((r["epoch"], r[metric]) for r in val), rule)
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


def _stale_rescores(folder: Path) -> dict[str, str]:
    """Each rescore in ``folder`` whose detections changed since it was scored, and why."""
    out = {}
    for f in sorted(folder.glob("*_rescored*.json")) if folder.is_dir() else []:
        m, _ = read_metrics_file(f)
        why = stale_detections(f, m) if m is not None and m.get("rescored_from") else None
        if why:
            out[f.name] = why
    return out


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
            "stale_rescores": _stale_rescores(path / "eval"),
            "last_epoch": {k: v for k, v in (log[-1] if log else {}).items() if not isinstance(v, dict)},
        }
    records, _ = discover([path], pm)
    if not records:
        from faapkit.errors import FaapError

        raise FaapError(f"{path} is neither a faapkit run nor a format any plugin reads")
    return {
        "path": str(path),
        "format": records[0].source,
        "records": len(records),
        "epochs": sorted({r.epoch for r in records if r.epoch is not None}),
        "dataset": sorted({str(r.dataset) for r in records}),
    }
