"""The typed record ``faap compare`` reads, shared by the native and the research-run readers
(torch-free: the research reader is imported by a plugin).

A :class:`RunRecord` is one (run, epoch, split): per-group metrics of the perturbed and baseline
settings (``{group: {"AP": ..., "AR": ..., ...}}`` or ``None``) and what is known about where they
come from. ``faap_read_run`` plugins return records or plain dicts with these keys;
:func:`as_record` validates either, so a malformed one is one error naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from faapkit.errors import FaapError

GroupMetrics = dict[str, dict[str, Any]]


class RunRecord(BaseModel):
    """One (run, epoch, split) of a run folder or metrics file. Keys a plugin adds beyond these
    are kept (``model_extra``); the compare pipeline fills ``dataset`` and ``baseline`` in place."""

    model_config = ConfigDict(extra="allow")

    run: str
    path: str | None = None
    source: str | None = None
    version: str | None = None
    epoch: int | None = None
    split: str | None = None
    dataset: str | None = None
    epsilon: float | None = None
    perturbed: GroupMetrics | None = None
    baseline: GroupMetrics | None = None
    reference: dict[str, Any] | None = None  # {"disadvantaged": ..., "advantaged": ...}
    is_baseline_only: bool = False
    train: dict[str, Any] | None = None  # the epoch's training-log row
    run_path: str | None = None  # the folder or file that is the run (labels two runs of one name)
    # faapkit metrics files
    split_by: str | None = None
    dataset_fingerprint: str | None = None
    dataset_split: str | None = None
    dataset_root: str | None = None
    dataset_images: int | None = None  # the evaluated split's image count (tells a subset from the whole)
    bootstrap: dict[str, Any] | None = None
    selected_epoch: int | None = None
    iou_thresholds: list[float] | None = None  # None: COCO's 0.50:0.05:0.95
    codec: str | None = None  # the image codec faap eval --codec put before the detector (None: none)
    exported: str | None = None  # the format of the faap export file faap eval --exported scored (None: none)
    rescored_from: str | None = None
    scored_detections: list[str] | None = None  # the sha256 of each detections file it scored (setting:sha)
    stale: str | None = None  # a rescore whose detections changed since: why (compare leaves it out)
    run_id: str | None = None  # the run's id from run.json: copied run folders are one run
    evaluated_run_id: str | None = None  # the run id a faapkit metrics file records (loose files too)
    also_at: list[str] | None = None  # other files holding this same evaluation (copies)
    seed: int | None = None  # the run's train.seed
    config_key: str | None = None  # its config without train.seed: runs that differ only in seed share it
    # what faap compare's checks of a faapkit metrics file found (None: not a metrics file it checks)
    flags: list[str] | None = None  # short names: edited, gap, outside-ci, parent-gone, unverified
    flag_note: str | None = None  # each flag with why (the stderr line)
    # research eval files
    eval_batch_size: int | None = None
    # a tsne_compare file (the research's, or faap inspect features'): its decoder-feature fields
    # (disp_<group>, disp_ratio, center_dist_*, cos_sim_*, n_<group>) for one checkpoint
    features: dict[str, Any] | None = None
    baseline_from: str | None = None


def as_record(item: RunRecord | Mapping[str, Any], origin: Path) -> RunRecord:
    """A reader's record, validated; ``origin`` is the path it was read for (named in the error)."""
    if isinstance(item, RunRecord):
        return item
    if not isinstance(item, Mapping):
        raise FaapError(f"{origin}: a faap_read_run plugin returned a {type(item).__name__}, not a record")
    try:
        return RunRecord.model_validate(dict(item))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise FaapError(
            f"{origin}: a faap_read_run plugin's record has a bad '{key}': {first['msg']} (got {first.get('input')!r})"
        ) from None


def train_only_records(
    label: str,
    path: Path,
    source: str,
    version: str | None,
    dataset: str | None,
    log: dict[int, dict[str, Any]],
    evaluated: set[Any],
    default_epsilon: float | None = None,
) -> list[RunRecord]:
    """One record per logged epoch that no metrics file covers (native and research runs alike)."""
    return [
        RunRecord(
            run=label,
            path=str(path),
            source=source,
            version=version,
            epoch=epoch,
            split=None,
            dataset=dataset,
            epsilon=row.get("epsilon", default_epsilon),
            perturbed=None,
            baseline=None,
            train=row,
        )
        for epoch, row in log.items()
        if epoch not in evaluated
    ]
