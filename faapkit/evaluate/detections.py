"""Saved detections: each evaluated setting's COCO result records, kept next to its metrics JSON
so that ``faap eval --rescore`` can score them again (other IoUs, bootstrap, seed, confidence)
without running the detector.

A file is gzip-compressed JSON, ``{"format", "setting", "values", "detections": [records]}``,
where each record is pycocotools' ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
(``json.load(gzip.open(f))["detections"]`` feeds ``COCO.loadRes``). Detector outputs are float32,
so their values are written with 9 significant digits (``"values": "float32"``), which restores
every float32 exactly: a rescore sees bit-identical inputs. Values that are not float32 are written
in full (``"float64"``). The gzip header carries no time, so equal detections give equal bytes and
the same sha256, which the metrics JSON records and a rescore checks (with the setting and count).

Image ids are the dataset's own (its annotation file's, e.g. COCO's 397001), so pycocotools or
another tool can score a file against the original annotations; faapkit numbers images 1.. inside
(unique across a split's annotation files) and translates at this boundary. The metrics JSON says
which ids the files carry (``image_ids``, :func:`image_id_record`): ``"dataset"``, or, where the
dataset's ids repeat across its annotation files, ``"faapkit"`` with the explicit map. Files
written before ``image_ids`` existed carry faapkit's ids.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faapkit.errors import FaapError
from faapkit.io import atomic_write_bytes

if TYPE_CHECKING:  # the module stays torch-free: faap compare checks saved detections
    from faapkit.data.coco import DatasetSplit

FORMAT = "faapkit.detections/1"
SUFFIX = ".dets.json.gz"


def detections_path(metrics_path: Path, setting: str) -> Path:
    """``<metrics stem>.<setting>.dets.json.gz`` next to the metrics file (never ``*.json``, so
    readers of ``eval/*.json`` do not take it for metrics)."""
    return metrics_path.with_name(f"{metrics_path.stem}.{setting}{SUFFIX}")


def _is_float32(values: np.ndarray) -> bool:
    return bool(np.array_equal(values.astype(np.float32).astype(np.float64), values))


def encode(setting: str, detections: Sequence[Mapping[str, Any]]) -> bytes:
    """The file's bytes (deterministic for equal detections)."""
    numbers = np.array([[*d["bbox"], d["score"]] for d in detections], dtype=np.float64).reshape(-1, 5)
    compact = _is_float32(numbers)
    fmt = "%.9g" if compact else "%r"
    rows = [
        f'{{"image_id":{_id_text(d["image_id"])},"category_id":{int(d["category_id"])},'
        f'"bbox":[{fmt % v[0]},{fmt % v[1]},{fmt % v[2]},{fmt % v[3]}],"score":{fmt % v[4]}}}'
        for d, v in zip(detections, numbers.tolist(), strict=True)
    ]
    head = json.dumps({"format": FORMAT, "setting": setting, "values": "float32" if compact else "float64"})
    text = head[:-1] + ', "detections": [' + ",\n".join(rows) + "]}\n"
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def _id_text(image_id: Any) -> str:
    """An image id as JSON: a number as an integer, a string id (COCO allows them) quoted."""
    return json.dumps(image_id) if isinstance(image_id, str) else str(int(image_id))


def image_id_record(data: DatasetSplit) -> dict[str, Any]:
    """The metrics JSON's ``image_ids``: which ids the saved detections carry, and the map from
    faapkit's ids when they are not the dataset's (``[[faapkit id, annotation file, its id], ...]``)."""
    if data.dataset_ids() is not None:
        return {"detections": "dataset", "what": "each annotation file's own image ids"}
    return {
        "detections": "faapkit",
        "what": "faapkit's image ids: the dataset's repeat across its annotation files",
        "map": [[r.image_id, r.source, r.source_id] for r in data.records],
    }


def to_dataset_ids(detections: Sequence[Mapping[str, Any]], data: DatasetSplit) -> list[dict[str, Any]]:
    """Records under the dataset's own image ids (unchanged where :func:`image_id_record` says
    ``"faapkit"``); order and every value kept."""
    ids = data.dataset_ids()
    return [dict(d) if ids is None else {**d, "image_id": ids[int(d["image_id"])]} for d in detections]


def from_dataset_ids(
    detections: Sequence[Mapping[str, Any]], data: DatasetSplit, record: Mapping[str, Any], origin: str
) -> list[dict[str, Any]]:
    """The inverse of :func:`to_dataset_ids` for a file whose metrics recorded ``record``
    (``image_ids``; empty for files written before it, which carry faapkit's ids)."""
    if record.get("detections") != "dataset":
        return [dict(d) for d in detections]
    back = {v: k for k, v in (data.dataset_ids() or {}).items()}
    out = []
    for d in detections:
        if d["image_id"] not in back:
            raise FaapError(f"{origin}: image id {d['image_id']!r} is not an image of split '{data.split}'")
        out.append({**d, "image_id": back[d["image_id"]]})
    return out


def decode(data: bytes, origin: str) -> list[dict[str, Any]]:
    """Records from a file's bytes; values restored exactly (see the module docstring)."""
    return decode_with_setting(data, origin)[1]


def decode_with_setting(data: bytes, origin: str) -> tuple[str, list[dict[str, Any]]]:
    """The setting a file says it holds and its records (see :func:`decode`)."""
    try:
        doc = json.loads(gzip.decompress(data))
        dets = doc["detections"]
        if doc.get("format") != FORMAT or doc.get("values") not in ("float32", "float64"):
            raise ValueError(f"not a {FORMAT} file")
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise FaapError(f"{origin}: unreadable detections file ({str(exc).splitlines()[0]})") from None
    if doc["values"] == "float32" and dets:
        numbers = np.array([[*d["bbox"], d["score"]] for d in dets], dtype=np.float64)
        restored = numbers.astype(np.float32).astype(np.float64).tolist()
        for d, v in zip(dets, restored, strict=True):
            d["bbox"], d["score"] = v[:4], v[4]
    return str(doc.get("setting")), list(dets)


def save(path: Path, setting: str, detections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Write ``path`` atomically; returns the metrics JSON's reference to it."""
    data = encode(setting, detections)
    atomic_write_bytes(path, data)
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "count": len(detections)}


def load_verified(metrics_path: Path, setting: str, ref: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The detections a metrics file references (``ref["file"]`` relative to its folder), refused
    when missing or when their sha256 differs from the recorded one."""
    path = metrics_path.parent / str(ref.get("file", ""))
    if not ref.get("file") or not path.is_file():
        raise FaapError(
            f"{metrics_path}: the {setting} detections file {path.name or '(none recorded)'} is missing; "
            "re-run faap eval without --rescore"
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != ref.get("sha256"):
        raise FaapError(
            f"{path}: sha256 differs from the one recorded in {metrics_path.name} (the file changed since "
            "that evaluation); re-run faap eval without --rescore"
        )
    doc_setting, dets = decode_with_setting(data, str(path))
    if doc_setting != setting:  # the references were swapped or edited: never score one setting as another
        raise FaapError(
            f"{path} holds the {doc_setting} detections, not the {setting} ones that {metrics_path.name} names it for"
        )
    if "count" in ref and ref["count"] != len(dets):
        raise FaapError(f"{path} holds {len(dets)} detections, not the {ref['count']} {metrics_path.name} recorded")
    return dets
