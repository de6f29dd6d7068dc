"""Where ``faap eval`` writes and what it never overwrites unasked: an ``--out`` that is no
metrics file, the metrics file's name (it encodes what was evaluated, so different evaluations
never share a file), its lock, the refusal of a result that is there already, and the write of
the metrics with their saved detections; torch-free."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faapkit.errors import FaapError
from faapkit.evaluate.command.host import Notes

if TYPE_CHECKING:
    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.evaluate.command.checkpoint_choice import Target
    from faapkit.evaluate.command.settings import Layers
    from faapkit.evaluate.requests import EvalCommand


class ResultTaken(FaapError):
    """An evaluation would replace ``path`` without ``--force``."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} already holds an evaluation of the same checkpoint and settings; "
            "pass --force to replace it or --out to write elsewhere"
        )
        self.path = path


def check_out(out: Path, *, force: bool) -> None:
    """Refuse an ``--out`` that is, or would pass for, a run's record, a checkpoint or saved
    detections, that cannot be written, that exists without ``--force``, or that exists and is no
    faapkit metrics file: ``--force`` replaces a result, never a run artefact
    (:func:`faapkit.artifacts.outputs.check_output`, shared by every command)."""
    from faapkit.artifacts.outputs import check_output

    check_output(out, "--out", force=force, replaceable=not_metrics)


def not_metrics(path: Path) -> str | None:
    """Why an existing ``path`` may not be replaced by metrics (``None``: it is a metrics file)."""
    from faapkit.artifacts.records import is_metrics_file

    return None if is_metrics_file(path) else "is no faap eval metrics file"


def output_path(
    tgt: Target, out: Path | None, split: str, attr: str, limit: int | None, tags: list[str]
) -> Path | None:
    """Where the metrics go. The name encodes what was evaluated (split, attribute, checkpoint,
    subset and any override in ``tags``), so different evaluations never share a file; a loose
    checkpoint's metrics go next to it, not into a folder two levels up."""
    if out is not None:
        return out.absolute()
    if tgt.checkpoint is None:
        return None
    parts = [split, attr, tgt.checkpoint.stem, *([f"first{limit}"] if limit else []), *tags]
    name = "_".join(parts) + ".json"
    if tgt.run_dir is not None:
        return tgt.run_dir / "eval" / name
    return tgt.checkpoint.parent / f"{tgt.checkpoint.stem}.eval" / name


def tags(cmd: EvalCommand, sizes: Layers, det: Any, split_data: Any, settings: Any, dcfg: Any = None) -> list[str]:
    """What the metrics file name adds for each override of the run's evaluation (``sizes``: the
    command's input-size layers; ``dcfg``: the run's data config, whose pair of groups a
    ``--disadvantaged``/``--advantaged`` may change)."""
    from faapkit.data.codecs import parse_codec
    from faapkit.evaluate.command.settings import SIZE_KEYS, iou_tag

    found = [f"eps{cmd.epsilon:g}"] if cmd.epsilon is not None else []
    found += _pair_tag(cmd, dcfg)
    found += [f"det-{cmd.detector}"] if cmd.detector else []
    found += [f"detckpt-{(det.sha256 or 'unknown')[:8]}"] if cmd.detector_checkpoint else []
    found += [f"data-{split_data.fingerprint[:8]}"] if cmd.data else []
    found += iou_tag(settings)
    given: dict[str, Any] = {}
    for _, layer in sizes:  # the input size the command set (min800, max1333): other detections
        given.update(layer)
    found += [f"{key.removesuffix('_size')}{given[key]}" for key in SIZE_KEYS if key in given]
    found += [f"groups-{given['group_level']}"] if "group_level" in given else []
    found += [f"codec-{str(parse_codec(cmd.codec)).replace(':', '')}"] if cmd.codec else []  # one name per codec
    found += [f"exported-{cmd.exported.suffix.lstrip('.')}"] if cmd.exported else []
    return found


def _pair_tag(cmd: EvalCommand, dcfg: Any) -> list[str]:
    """``ref-<disadvantaged>-<advantaged>`` (as ``--rescore`` names it) when the options change the
    gap's groups from the run's: the same name held the other pair's evaluation, so that one was
    refused as 'the same checkpoint and settings', and replaced by another gap with --force."""
    if cmd.disadvantaged is None and cmd.advantaged is None:
        return []
    same_attr = dcfg is not None and (cmd.split_by is None or cmd.split_by == dcfg.split_by)
    default = (dcfg.disadvantaged, dcfg.advantaged) if same_attr else (None, None)
    pair = (cmd.disadvantaged or default[0], cmd.advantaged or default[1])
    if pair == default:
        return []
    return ["ref-" + "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(g)) for g in pair)]


def detection_paths(path: Path | None, settings_out: list[str], save: bool) -> list[Path]:
    """Where each setting's detections go beside the metrics (none when they are not kept)."""
    from faapkit.evaluate import detections as saved

    return [saved.detections_path(path, s) for s in settings_out] if path and save else []


def refuse_taken(paths: list[Path]) -> None:
    """Results are never replaced without ``--force``: refuse before any inference."""
    taken = [p for p in paths if p.exists()]
    if taken:
        raise ResultTaken(taken[0])


def check_folder(tgt: Target, out: Path | None) -> None:
    """The folder the default output goes into (``RUN/eval``, ``<checkpoint>.eval``), made if
    missing and able to take a file; ``--out`` was checked by
    :func:`check_out`."""
    if out is not None or tgt.checkpoint is None:
        return
    from faapkit.artifacts.outputs import ensure_folder

    path = output_path(tgt, None, "<split>", "<attribute>", None, [])
    assert path is not None
    ensure_folder(path, "faap eval's output", create=False)


def claim(path: Path | None, det_paths: list[Path], force: bool, say: Notes) -> OutputLock | None:
    """The output's lock (``<output>.lock``), taken before any inference: of two evaluations
    started together one writes, the other is refused naming the holder. Under it, a result that
    is there already is refused without ``force``."""
    if path is None:
        return None
    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.artifacts.outputs import ensure_folder

    ensure_folder(path, "faap eval's output")  # RUN/eval made now, when the work is about to start
    lock = OutputLock(path, note=say.warn).acquire()
    try:
        if not force:
            refuse_taken([path, *det_paths])
    except BaseException:
        lock.release()
        raise
    return lock


def write(
    path: Path,
    result: dict[str, Any],
    settings_out: list[str],
    det_paths: list[Path],
    dets: dict[str, list[dict[str, Any]]],
    force: bool,
    say: Notes,
) -> None:
    """First each setting's detections (none when they are not kept), then the metrics that
    reference them, with the hash of their numbers (``numbers_sha256``); with ``force``, the
    rescores of the result it replaced are removed. A write that fails removes the detections
    it wrote: no detections are left without the metrics that reference them."""
    from faapkit.artifacts.integrity import numbers_sha256
    from faapkit.artifacts.records import write_metrics_file
    from faapkit.evaluate import detections as saved

    written: list[Path] = []
    try:
        if det_paths:
            result["detections"] = {}
            for setting, p in zip(settings_out, det_paths, strict=True):
                result["detections"][setting] = saved.save(p, setting, dets[setting])
                written.append(p)
        result["numbers_sha256"] = numbers_sha256(result)
        write_metrics_file(path, result)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    say.info(f"metrics written to {path}")
    for stale in _rescores_of(path) if force else []:
        stale.unlink(missing_ok=True)  # they scored the detections this evaluation replaced
        say.info(f"removed {stale}: a rescore of the result --force replaced")


def _rescores_of(path: Path) -> list[Path]:
    """The ``--rescore`` results beside ``path`` that were rescored from it (read, not guessed
    from the name: a file merely named like one stays)."""
    found = []
    for f in sorted(path.parent.glob(f"{path.stem}_rescored*.json")):
        try:
            source = (json.loads(f.read_text()).get("rescored_from") or {}).get("metrics")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(source, str) and Path(source).absolute() == path.absolute():
            found.append(f)
    return found
