"""Reader for the research scripts' outputs (eeshape/faap_gan), as they are on disk, and the
built-in ``faap_read_run`` that offers it to ``faap compare`` (trylast: any other reader goes first).

Handles eval JSON schemas A, B, B0 and C, the train-log layouts (docs/research-defaults.md; aliases
normalised, duplicated epochs keep the last line, absent keys stay absent), folder names with
spaces, and infers the dataset version (v1/v2) from ``dataset_layout.json`` or path prefixes.

A folder holding run folders is an output *root* (``faap_outputs/``), not a run, even with a
``train_log.jsonl`` at its top (the early ``train_faap.py`` wrote one there; the research files
are listed in docs/research-defaults.md): that log is read as a run of its own and the metrics
files beside it stay loose files, each its own row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from faapkit.plugin_api import RunRecord, hookimpl, train_only_records

EPOCH_RE = re.compile(r"epoch_(\d{4})")
ALIASES = {"g_total": "total_g", "eps": "epsilon"}
LEGACY_GROUPS = ("male", "female")
RUN_MARKERS = frozenset({"config.json", "train_log.jsonl", "run.json"})
NOT_METRICS = frozenset({"config.json", "dataset_layout.json"})


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _layout_version(folder: Path) -> str | None:
    layout = _load_json(folder / "dataset_layout.json") if (folder / "dataset_layout.json").is_file() else None
    if isinstance(layout, dict) and "women_test" in layout:
        n = layout["women_test"].get("num_images")
        return {1634: "faap_gan-v1", 818: "faap_gan-v2"}.get(n, f"faap_gan-women_test={n}")
    return None


def _path_version(hyperparams: dict[str, Any] | None) -> str | None:
    for key in ("dataset_root", "detr_checkpoint", "generator_checkpoint"):
        value = str((hyperparams or {}).get(key) or "")
        if value.startswith("/home/dohyeong"):
            return "faap_gan-v1"
        if value.startswith("/workspace"):
            return "faap_gan-v2"
    return None


def dataset_version(folder: Path, hyperparams: dict[str, Any] | None = None, *, run_folder: bool = False) -> str | None:
    """A run folder's own ``dataset_layout.json`` is authoritative; a loose metrics file's own paths
    (``/home/dohyeong`` = v1, ``/workspace`` = v2) beat a layout file lying beside it."""
    if run_folder:
        return _layout_version(folder) or _path_version(hyperparams)
    return _path_version(hyperparams) or _layout_version(folder)


def read_eval_file(path: Path, run: str | None = None) -> RunRecord | None:
    data = _load_json(path)
    if not isinstance(data, dict) or "perturbed" not in data or "hyperparams" not in data:
        return None
    hp = data.get("hyperparams") or {}
    m = EPOCH_RE.search(path.name) or EPOCH_RE.search(str(hp.get("generator_checkpoint") or ""))
    has_generator = bool(hp.get("generator_checkpoint")) and (data.get("notes") or {}).get(
        "perturbation_applied_to_female", True
    )
    schema = (
        "C" if "baseline" not in data else ("A" if "generated_at" in data else ("B" if "details" in data else "B0"))
    )
    pert = {g: dict(data["perturbed"][g]) for g in LEGACY_GROUPS if g in data["perturbed"]}
    base = {g: dict(data["baseline"][g]) for g in LEGACY_GROUPS if g in data.get("baseline", {})} or None
    return RunRecord(
        run=run or path.stem,
        path=str(path),
        run_path=str(path) if run is None else str(path.parent),
        source=f"faap_gan eval schema {schema}",
        version=None,
        epoch=int(m.group(1)) if m else None,
        split=hp.get("split"),
        dataset=dataset_version(path.parent, hp),
        epsilon=hp.get("epsilon"),
        eval_batch_size=hp.get("batch_size"),
        reference={"disadvantaged": "female", "advantaged": "male"},
        is_baseline_only=not has_generator,
        perturbed=pert if has_generator else None,
        baseline=base if base else (None if has_generator else pert),
    )


TSNE_FIELDS = ("disp_ratio", "center_dist_before", "center_dist_after", "cos_sim_before", "cos_sim_after")
TSNE_EPOCH_RE = re.compile(r"epoch_?(\d+)")


def read_tsne_compare(path: Path) -> list[RunRecord] | None:
    """A ``tsne_compare_epochNN.json`` (schema T: ``{"checkpoint1": R, "checkpoint2": R}``, each
    ``R`` the decoder-feature fields of one checkpoint; ``faap inspect features`` writes the same):
    one record per checkpoint, no AP, its fields in ``features``; ``None`` for any other file."""
    data = _load_json(path)
    if not isinstance(data, dict):
        return None
    entries = sorted(k for k, v in data.items() if k.startswith("checkpoint") and isinstance(v, dict))
    if not entries or not all(f in data[k] for k in entries for f in TSNE_FIELDS):
        return None
    records = []
    for key in entries:
        entry = data[key]
        epoch = entry.get("epoch")
        if not isinstance(epoch, int):
            m = TSNE_EPOCH_RE.search(str(entry.get("path") or "")) or TSNE_EPOCH_RE.search(path.name)
            epoch = int(m.group(1)) if m else None
        checkpoint = Path(str(entry.get("path") or key))
        run = checkpoint.parent.parent.name if checkpoint.parent.name == "checkpoints" else checkpoint.parent.name
        records.append(
            RunRecord(
                run=f"{run or path.stem} ({key})" if len(entries) > 1 else (run or path.stem),
                path=str(path),
                source="tsne_compare features",
                epoch=epoch,
                split=data.get("split"),
                features={k: v for k, v in entry.items() if k not in ("path", "epoch")},
            )
        )
    return records


def read_train_log(path: Path) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        row = {ALIASES.get(k, k): v for k, v in row.items()}
        if "epoch" in row:
            rows[int(row["epoch"])] = row  # duplicated epochs (restarts): the last line wins
    return [rows[e] for e in sorted(rows)]


def _holds_runs(folder: Path) -> bool:
    """Whether a subfolder of ``folder`` is a run folder (research or faapkit): then ``folder`` is
    an output root whose top-level JSON files are loose metrics files, not this folder's epochs."""
    try:
        return any(c.is_dir() and any((c / m).is_file() for m in RUN_MARKERS) for c in folder.iterdir())
    except OSError:
        return False


def read_legacy(path: Path) -> list[RunRecord] | None:
    """Records of one research run folder, one loose metrics file, or the top-level train log of
    an output root; ``None`` for anything else. Never reads subfolders: ``faap compare`` visits
    them itself, and offers every JSON file no record claims as a loose file."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".json" or path.name in NOT_METRICS:
            return None
        rec = read_eval_file(path)
        return [rec] if rec else read_tsne_compare(path)
    if not path.is_dir():
        return None
    names = {p.name for p in path.iterdir()}
    if not {"config.json", "train_log.jsonl"} & names:
        return None  # not a run folder: compare descends and offers each file
    if "run.json" in names:
        return None  # a faapkit run
    config = _load_json(path / "config.json") if "config.json" in names else None
    root = _holds_runs(path)
    own = "train_log.jsonl" if "train_log.jsonl" in names else "config.json"
    label = f"{path.name}/{own}" if root else path.name
    records: list[RunRecord] = []
    hp = config if isinstance(config, dict) else {}
    dataset = dataset_version(path, hp, run_folder=True)
    log = read_train_log(path / "train_log.jsonl") if "train_log.jsonl" in names else []
    by_epoch = {int(r["epoch"]): r for r in log}
    evals = (
        []
        if root  # an output root's JSON files are loose files, offered one by one
        else [read_eval_file(p, label) for p in sorted(path.glob("*.json")) if p.name not in NOT_METRICS]
    )
    seen_epochs = set()
    for rec in (e for e in evals if e):
        rec.train = by_epoch.get(rec.epoch) if rec.epoch is not None else None
        rec.dataset = dataset or rec.dataset
        records.append(rec)
        seen_epochs.add(rec.epoch)
    records += train_only_records(
        label, path, "faap_gan train log", None, dataset, by_epoch, seen_epochs, hp.get("epsilon")
    )
    if not records and config is not None:
        records.append(RunRecord(run=label, path=str(path), source="faap_gan config only", epoch=None, dataset=dataset))
    for rec in records:
        rec.run_path = str(path)
    return records


@hookimpl(trylast=True)
def faap_read_run(path: Path) -> list[RunRecord] | None:
    return read_legacy(path)
