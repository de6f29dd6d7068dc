"""Finding runs for ``faap compare`` and ``faap inspect run``.

Native faapkit runs are read directly (``faapkit.compare.reading``); every other folder or loose
metrics file is offered to the ``faap_read_run`` hook (built-in: the research scripts' formats,
``faap_plugins.legacy_runs``). Discovery is recursive: every folder under the given paths is
visited (a faapkit run's own subfolders excepted), and every JSON file no record claims is offered
on its own, so run folders, loose metrics files and stray logs side by side are all found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from faapkit.artifacts.records import MetricsFileError, read_metrics_file
from faapkit.artifacts.rundir import RunDir
from faapkit.artifacts.seedset import check_one_configuration, is_seed_set
from faapkit.compare.reading import NotOneSet, read_loose, read_native, stale_detections
from faapkit.compare.records import RunRecord, as_record
from faapkit.errors import FaapError

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
        if is_seed_set(p):
            try:
                check_one_configuration(p)
            except FaapError as exc:
                unreadable.append(NotOneSet(str(exc)))
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


def _stale_rescores(folder: Path) -> dict[str, str]:
    """Each rescore in ``folder`` whose detections changed since it was scored, and why: every
    metrics file there that records what it was rescored from, whatever ``--out`` named it."""
    out = {}
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            m = read_metrics_file(f)
        except MetricsFileError:
            continue
        why = stale_detections(f, m.dump()) if m.rescored_from else None
        if why:
            out[f.name] = why
    return out


def describe_run(path: Path, pm: Any) -> dict[str, Any]:
    if (path / "run.json").is_file():
        run = RunDir(path)
        manifest = run.manifest()
        log = run.read_log()
        return {
            "path": str(path),
            "format": manifest.format,
            "version": manifest.version,
            "created_at": manifest.created_at,
            "dataset": manifest.dataset.fingerprint,
            "detector": manifest.detector.name,
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
