"""The records faapkit keeps on disk, typed: the run manifest (``run.json``), a training
checkpoint's payload and the metrics file ``faap eval`` writes.

Each record carries its format tag and has one validator (:func:`run_manifest`,
:func:`checkpoint_payload`, :func:`metrics_file`; :func:`read_run_manifest` and
:func:`read_metrics_file` read the file first) that refuses, in one line naming the file and the
key, a wrong or missing tag, a missing key or a value of the wrong type. The same models write
them: a record dumps its keys in the order it was given them and numbers as they were given
(an int stays an int), so a file written through its model is byte for byte the dict it replaces.

Torch-free: a checkpoint's tensors and state dicts are ``Any``, checked only to be mappings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from faapkit.errors import CheckpointError, FaapError
from faapkit.io import atomic_write_text

__all__ = [
    "CHECKPOINT_FORMAT",
    "METRICS_FORMAT",
    "RUN_FORMAT",
    "CheckpointPayload",
    "MetricsFile",
    "MetricsFileError",
    "RecordError",
    "RunManifest",
    "checkpoint_payload",
    "is_metrics_file",
    "metrics_file",
    "read_metrics_file",
    "read_run_manifest",
    "run_manifest",
    "write_metrics_file",
    "write_run_manifest",
]

RUN_FORMAT = "faapkit.run/1"
CHECKPOINT_FORMAT = "faapkit.checkpoint/1"
METRICS_FORMAT = "faapkit.metrics/1"


class RecordError(FaapError):
    """A file that is not the record it should be: ``key`` is the dotted key at fault (``None``:
    the file as a whole), ``detail`` the reason without the file's name."""

    def __init__(self, path: Path, key: str | None, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path, self.key, self.detail = path, key, detail


class MetricsFileError(RecordError):
    """A file that is no ``faap eval`` metrics file, or one whose key ``key`` is malformed."""

    @property
    def not_metrics(self) -> bool:
        """It is no metrics file at all (not JSON, another tag, no per-setting metrics), as
        opposed to a metrics file with a malformed field."""
        return self.key is None or self.key.split(".")[0] in ("schema", "metrics")


def _number(value: Any) -> Any:
    # float would turn an int into a float (1 -> 1.0): the file would no longer be what was written
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a number")
    return value


def _mapping(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValueError("Input should be a mapping")
    return value  # the object itself: a state dict's type and order are what torch saved


Number = Annotated[Any, AfterValidator(_number)]
StateDict = Annotated[Any, AfterValidator(_mapping)]  # tensors by name, or a state_dict() of torch's


class Record(BaseModel):
    """A record as written: strict types (no ``"1"`` for 1), keys dumped in the order given."""

    model_config = ConfigDict(
        strict=True, extra="forbid", ser_json_inf_nan="constants", validate_by_name=True, serialize_by_alias=True
    )
    _order: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        record = handler(data)
        if isinstance(data, Mapping) and isinstance(record, Record):
            record._order = [str(k) for k in data]
        return record

    @model_serializer(mode="wrap")
    def _in_given_order(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if not isinstance(out, dict) or not self._order:
            return out
        given = [k for k in self._order if k in out]
        return {k: out[k] for k in [*given, *(k for k in out if k not in self._order)]}

    def dump(self) -> dict[str, Any]:
        """The record as JSON values, with only the keys it was given (an absent optional key
        stays absent)."""
        return self.model_dump(mode="json", exclude_unset=True)


# ---------------------------------------------------------------------------------- run.json
class Software(Record):
    faapkit: str
    torch: str
    python: str


class RunDataset(Record):
    """The training split a run read: ``fingerprint`` identifies its images and annotations."""

    root: str
    layout: str
    split: str
    fingerprint: str
    groups: dict[str, int]  # images per group (box level: the images holding one of its boxes)
    skipped: dict[str, int]  # images/annotations left out, per problem
    skipped_corrupt: int
    group_level: Literal["image", "box"] | None = None  # what data.group_level "auto" resolved to


class DetectorRecord(Record):
    name: str
    checkpoint: str | None
    sha256: str | None


class RunManifest(Record):
    """``run.json``: what a run is (version, config, data, detector) and what made it."""

    format: Literal["faapkit.run/1"]
    run_id: str
    created_at: str
    version: str
    config: dict[str, Any]  # the resolved config, ``Config.model_dump(mode="json")``
    software: Software
    providers: dict[str, dict[str, Any]]  # which plugin provided each named part
    seed: int
    world_size: int
    dataset: RunDataset
    detector: DetectorRecord
    steps_per_epoch: int


# ------------------------------------------------------------------------------- checkpoints
class CheckpointDetector(Record):
    name: str
    sha256: str | None


class CheckpointPayload(Record):
    """What a training checkpoint (``checkpoints/*.pt``, ``last.pt``, ``best.pt``) holds: where
    training stands, the trainable parts' state and what the run trained against."""

    format: Literal["faapkit.checkpoint/1"]
    version: str
    epoch: int = Field(ge=0)
    epoch_complete: bool
    position: int = Field(ge=0)  # batches of ``epoch`` done (0 at an epoch's end)
    global_step: int = Field(ge=0)
    epsilon: float = Field(gt=0, le=1, allow_inf_nan=False)  # the L-inf bound the generator was trained at
    generator_spec: dict[str, Any]  # the config's ``generator`` section
    base_channels: int | None = None  # the U-Net's width, under the key the research code reads
    generator: StateDict
    head: StateDict  # empty without a head
    optimizer: StateDict
    strategy: StateDict
    rng: StateDict
    meters: StateDict  # mid-epoch only (empty at an epoch's end), as are skips and nonfinite
    skips: StateDict
    nonfinite: int
    log_window: StateDict
    detector: CheckpointDetector
    dataset_fingerprint: str
    run_id: str
    selection: dict[str, Any] | None = None  # best.pt: which epoch, chosen how

    def saved(self) -> dict[str, Any]:
        """The dict ``torch.save`` writes: the objects given, in the order given (a state dict is
        not copied or converted)."""
        given = [name for name in self._order or type(self).model_fields if name in self.model_fields_set]
        values = {name: getattr(self, name) for name in given}
        return {k: v.model_dump(exclude_unset=True) if isinstance(v, Record) else v for k, v in values.items()}


# ------------------------------------------------------------------------------ metrics file
class GroupCount(Record):
    images: int
    boxes: int


class Reference(Record):
    """How the file states its gap and ratio: between the named pair (``other_groups``: the
    split's groups outside it, scored on their own rows), or over all groups."""

    disadvantaged: str | None = None
    advantaged: str | None = None
    gap: str | None = None
    ratio: str | None = None
    other_groups: list[str] | None = None


class EvalDataset(Record):
    model_config = ConfigDict(extra="allow")

    root: str | None = None
    layout: str | None = None
    fingerprint: str | None = None
    images: int | None = None
    skipped_corrupt: int | None = None
    skipped_invalid: dict[str, int] | None = None


class EvalSettings(Record):
    model_config = ConfigDict(extra="allow")

    batch_size: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    batching: str | None = None
    detections_per_image: int | None = None
    baseline_cached: bool | None = None
    settings_inferred: list[str] | None = None
    amp: bool | None = None
    channels_last: bool | None = None
    world_size: int | None = None
    iou_thresholds: list[Number] | str | None = None  # "0.50:0.05:0.95" or the thresholds
    codec: str | None = None  # png | jpeg:Q | webp:Q the images went through before the detector


class MetricsFile(Record):
    """``faap eval``'s JSON: what was evaluated on what, per-group COCO metrics of each setting
    (``baseline``, ``perturbed``), the gaps, the paired bootstrap and how long it took. Open: the
    command that writes it (eval, ``--rescore``) adds keys of its own, kept in place.

    ``metrics`` is ``{setting: {group: {metric: value}}}``; those numbers (and the gaps and
    intervals) are left to :func:`faapkit.artifacts.integrity.bad_number`, which names the one
    that is not a finite number."""

    model_config = ConfigDict(extra="allow")

    schema_: Literal["faapkit.metrics/1"] = Field(alias="schema")
    generated_at: str | None = None
    faapkit: str | None = None
    split: str | None = None
    split_by: str | None = None
    groups: dict[str, GroupCount] | None = None
    reference: Reference | None = None
    checkpoint: str | None = None
    version: str | None = None  # from here to epsilon_source: the checkpoint's, when one was evaluated
    epoch: int | None = None
    global_step: int | None = None
    generator: str | None = None
    selection: dict[str, Any] | None = None
    epsilon: Number | None = None
    epsilon_source: str | None = None
    detector: DetectorRecord | None = None
    dataset: EvalDataset | None = None
    image_ids: dict[str, Any] | None = None
    eval: EvalSettings | None = None
    metrics: dict[str, dict[str, Any]]
    gaps: dict[str, Any] | None = None
    deltas: dict[str, Any] | None = None
    bootstrap: dict[str, Any] | None = None
    timing_s: dict[str, Number] | None = None
    overall: dict[str, Any] | None = None
    ratios: dict[str, Any] | None = None
    checkpoint_choice: str | None = None  # from here on: what faap eval adds (rescored_from: --rescore)
    checkpoint_check: str | None = None
    selection_in_checkpoint: dict[str, Any] | None = None
    input_size: dict[str, Any] | None = None
    other_detector: dict[str, Any] | None = None  # a detector-reading generator scored with another detector
    run: str | None = None
    # run_id (the evaluated run's, or null) stays an extra key: compare says itself what is wrong with it
    eval_config: dict[str, Any] | None = None
    eval_config_sources: dict[str, Any] | None = None
    rescored_from: dict[str, Any] | None = None
    detections: dict[str, dict[str, Any]] | None = None
    numbers_sha256: str | None = None


# -------------------------------------------------------------------------------- validators
def _why(exc: ValidationError) -> tuple[str, str]:
    """The first problem pydantic found: the dotted key and what is wrong with it."""
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "missing":
        return key, f"no '{key}'"
    if first["type"] == "extra_forbidden":
        return key, f"'{key}' is not a key of this format"
    got = json.dumps(first.get("input"), default=str)[:40]
    return key, f"its '{key}' is {got}: {first['msg'].lower().removeprefix('value error, ')}"


R = TypeVar("R", bound=Record)
Refusal = Callable[[Path, str | None, str], Exception]  # (file, key, detail) -> the error to raise


def _validated(model: type[R], obj: Any, path: Path, tag_key: str, tag: str, what: str, error: Refusal) -> R:
    """``obj`` as ``model``; a wrong or missing tag is refused by name before any other key."""
    if not isinstance(obj, Mapping):
        raise error(path, None, f"not a {what} (a {type(obj).__name__}, not a mapping)")
    if obj.get(tag_key) != tag:
        found = json.dumps(obj.get(tag_key), default=str)[:40]
        raise error(path, tag_key, f"not a {what} ({tag_key} {found}, not {tag})")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise error(path, *_why(exc)) from None


def _checkpoint_error(path: Path, key: str | None, detail: str) -> CheckpointError:
    return CheckpointError(f"{path}: {detail}")


def run_manifest(obj: Any, path: Path) -> RunManifest:
    """``obj`` (the JSON of ``path``) as a :class:`RunManifest`, or a one-line :class:`RecordError`."""
    return _validated(RunManifest, obj, path, "format", RUN_FORMAT, "faapkit run manifest", RecordError)


def checkpoint_payload(obj: Any, path: Path) -> CheckpointPayload:
    """``obj`` (loaded from ``path``) as a :class:`CheckpointPayload`, or a one-line :class:`CheckpointError`."""
    return _validated(
        CheckpointPayload, obj, path, "format", CHECKPOINT_FORMAT, "faapkit training checkpoint", _checkpoint_error
    )


def metrics_file(obj: Any, path: Path) -> MetricsFile:
    """``obj`` (the JSON of ``path``) as a :class:`MetricsFile`, or a one-line :class:`MetricsFileError`."""
    return _validated(MetricsFile, obj, path, "schema", METRICS_FORMAT, "faap eval metrics file", MetricsFileError)


def _json(path: Path, error: Refusal) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(path, None, f"not JSON: {exc}") from None


def read_run_manifest(path: Path) -> RunManifest:
    """The run manifest at ``path`` (a ``run.json``)."""
    return run_manifest(_json(path, RecordError), path)


def read_metrics_file(path: Path) -> MetricsFile:
    """The metrics file at ``path``."""
    return metrics_file(_json(path, MetricsFileError), path)


def is_metrics_file(path: Path) -> bool:
    """``path`` is a ``faap eval`` metrics file (its tag and per-setting metrics), even one with
    a malformed field: a file faapkit wrote, which ``--force`` may replace."""
    try:
        read_metrics_file(path)
    except MetricsFileError as exc:
        return not exc.not_metrics
    return True


def _write_json(path: Path, record: Record) -> None:
    atomic_write_text(path, json.dumps(record.dump(), indent=2, default=str) + "\n")


def write_run_manifest(path: Path, manifest: RunManifest | Mapping[str, Any]) -> None:
    """``manifest``, validated, as ``path``: two-space indented JSON in the order given."""
    _write_json(path, manifest if isinstance(manifest, RunManifest) else run_manifest(manifest, path))


def write_metrics_file(path: Path, metrics: MetricsFile | Mapping[str, Any]) -> None:
    """``metrics``, validated, as ``path``: two-space indented JSON in the order given."""
    _write_json(path, metrics if isinstance(metrics, MetricsFile) else metrics_file(metrics, path))
