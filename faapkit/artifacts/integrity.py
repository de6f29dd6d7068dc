"""Hashes that let a reader check a result against what wrote it: a checkpoint's
sha256 streamed once from disk, the hash of a metrics file's numbers, and the hash of a record's
own fields (an export's sidecar).

``numbers_sha256`` hashes the canonical JSON (sorted keys, fixed separators) of the sections
of a metrics file that hold its numbers; ``faap eval`` and ``--rescore`` record it, ``faap
compare`` recomputes it, so a number edited by hand afterwards is told apart from one faapkit
wrote. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# the sections of a metrics file that are its numeric results (what a rescore recomputes)
NUMBER_KEYS = ("metrics", "overall", "gaps", "ratios", "deltas", "overall_deltas", "bootstrap")


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """The sha256 of ``path``, read once in blocks (a checkpoint is never held in memory whole)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """One spelling of ``value``: sorted keys, no spaces; NaN and infinities spelt as Python's
    json module spells them (so a file holding them still hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def record_sha256(record: Mapping[str, Any], without: str) -> str:
    """The hash of a JSON record's own fields (its canonical JSON), all but ``without``, the key
    that stores this hash: a record that names its own digest (an export's sidecar) is checked by
    recomputing it, so a field edited by hand afterwards is told apart from one faapkit wrote."""
    fields = json.loads(json.dumps({k: v for k, v in record.items() if k != without}, allow_nan=True))
    return hashlib.sha256(canonical_json(fields).encode("ascii")).hexdigest()


def numbers_of(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {key: metrics[key] for key in NUMBER_KEYS if key in metrics}


def numbers_sha256(metrics: Mapping[str, Any]) -> str:
    """The hash of a metrics file's numeric results (:data:`NUMBER_KEYS`), as they read back from
    the file (a tuple or an integer key hashes as the list or string it is written as)."""
    written = json.loads(json.dumps(numbers_of(metrics), allow_nan=True))
    return hashlib.sha256(canonical_json(written).encode("ascii")).hexdigest()


TOLERANCE = 1e-6  # a gap against the difference of its own file's group values
CHECKED_STATS = ("AP", "AR")  # what faap compare shows


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _leaves(value: Any, where: str, lists: bool) -> Iterator[tuple[str, Any]]:
    """Every value under ``value`` with its dotted key; a list is walked into only where lists
    belong (``lists``: the bootstrap's CIs), elsewhere it is a value (and no number)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _leaves(inner, f"{where}.{key}", lists)
    elif isinstance(value, list) and lists:
        for i, inner in enumerate(value):
            yield from _leaves(inner, f"{where}[{i}]", lists)
    else:
        yield where, value


# text or yes/no values the numeric sections hold by design
TEXT_LEAVES = ("bootstrap.method", "bootstrap.stats[")
FLAG_LEAVES = (".overshoot", ".significant")


def bad_number(metrics: Mapping[str, Any]) -> str | None:
    """Where a metrics file's numeric sections hold a value that is not a finite number (a string,
    NaN, an infinity, ``true`` as an AP), said as ``key is value``; ``None`` when there is none.
    ``null`` is a number COCO could not compute (a group without large boxes) and passes."""
    for key in NUMBER_KEYS:
        if key not in metrics:
            continue
        for where, value in _leaves(metrics[key], key, lists=key == "bootstrap"):
            if value is None:
                continue
            if _is_number(value):
                if key == "metrics" and not (0 <= value <= 1 or value == -1):  # COCO stats: [0, 1], -1 for none
                    return f"{where} is {value:.6g}, not an AP or AR (in [0, 1])"
                continue
            if isinstance(value, str) and where.startswith(TEXT_LEAVES):
                continue
            if isinstance(value, bool) and where.endswith(FLAG_LEAVES):
                continue
            return f"{where} is {json.dumps(value, allow_nan=True, default=str)[:40]}, not a finite number"
    return None


# flags that say a file's numbers are not the ones faapkit computed: never counted among others
UNTRUSTED_FLAGS = frozenset({"edited", "gap", "outside-ci"})


def numbers_edited(metrics: Mapping[str, Any]) -> bool:
    """Whether the file records a ``numbers_sha256`` its numbers no longer give (edited by hand);
    ``False`` for a file that records none (from before the hash)."""
    recorded = metrics.get("numbers_sha256")
    return recorded is not None and recorded != numbers_sha256(metrics)


def consistency_flags(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What does not hold together in one (numerically clean, :func:`bad_number`) metrics file,
    as ``(flag, reason)``: numbers that are not the ones ``numbers_sha256`` recorded
    (``edited``), a gap that is not advantaged - disadvantaged of the file's own group values
    (``gap``), a gap outside its own bootstrap CI (``outside-ci``); a file from before the hash
    was recorded is ``unverified``."""
    flags: list[tuple[str, str]] = []
    recorded = metrics.get("numbers_sha256")
    if not isinstance(recorded, str):
        flags.append(("unverified", "written before faapkit recorded numbers_sha256 and run_id: not checked"))
    elif numbers_edited(metrics):
        flags.append(("edited", "its numbers are not the ones numbers_sha256 recorded (edited by hand?)"))
    gap_problem = _gap_mismatch(metrics)
    if gap_problem:
        flags.append(("gap", gap_problem))
    ci_problem = _outside_ci(metrics)
    if ci_problem:
        flags.append(("outside-ci", ci_problem))
    return flags


def _pair(metrics: Mapping[str, Any]) -> tuple[str, str] | None:
    ref = metrics.get("reference")
    ref = ref if isinstance(ref, Mapping) else {}
    dis, adv = ref.get("disadvantaged"), ref.get("advantaged")
    return (str(dis), str(adv)) if dis is not None and adv is not None else None


def _gap_mismatch(metrics: Mapping[str, Any]) -> str | None:
    from faapkit.fairness import gap_if_known

    per_setting, gaps, pair = metrics.get("metrics") or {}, metrics.get("gaps") or {}, _pair(metrics)
    for stat in CHECKED_STATS:
        entry = gaps.get(stat) if isinstance(gaps, Mapping) else None
        if not isinstance(entry, Mapping):
            continue
        for setting, groups in per_setting.items():
            stored = entry.get(setting)
            if not isinstance(stored, int | float) or not _is_number(stored) or not isinstance(groups, Mapping):
                continue
            values = {g: (v.get(stat) if isinstance(v, Mapping) else None) for g, v in groups.items()}
            if pair is not None and not set(pair) <= set(values):
                return f"gaps.{stat}.{setting}: the file's groups have no {pair[0]}/{pair[1]} to take it between"
            expected = gap_if_known(values, pair)
            if expected is not None and abs(stored - expected) > TOLERANCE:
                rule = f"{pair[1]} - {pair[0]}" if pair else "max - min"
                return f"gaps.{stat}.{setting} is {stored:.6f}, not {rule} {stat} of the same file ({expected:.6f})"
    return None


def _outside_ci(metrics: Mapping[str, Any]) -> str | None:
    boot = metrics.get("bootstrap")
    boot_gaps = boot.get("gaps") if isinstance(boot, Mapping) else None
    gaps = metrics.get("gaps") or {}
    if not isinstance(boot_gaps, Mapping) or not isinstance(gaps, Mapping):
        return None
    for stat in CHECKED_STATS:
        point, ci = gaps.get(stat), boot_gaps.get(stat)
        if not isinstance(point, Mapping) or not isinstance(ci, Mapping):
            continue
        for setting in ("baseline", "perturbed", "change"):
            value, bounds = point.get(setting), ci.get(setting)
            if not _is_number(value) or not isinstance(bounds, list) or len(bounds) != 2:
                continue
            lo, hi = bounds
            if _is_number(lo) and _is_number(hi) and not lo - TOLERANCE <= value <= hi + TOLERANCE:
                return f"gaps.{stat}.{setting} = {value:.6f} lies outside its own CI [{lo:.6f}, {hi:.6f}]"
    return None
