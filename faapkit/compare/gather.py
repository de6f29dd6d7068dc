"""Every record ``faap compare`` shows, from the paths it is given: discovered, a rescore that
repeats an evaluation left out, copies merged, each assigned its dataset and baseline; and which
existing files its ``--csv``/``--plot`` must never replace.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from faapkit.artifacts.records import is_metrics_file
from faapkit.compare.datasets import assign_datasets
from faapkit.compare.discovery import discover
from faapkit.compare.merging import drop_rescores, fill_baselines, merge_copies
from faapkit.compare.reading import LeftOut, NotOneSet
from faapkit.compare.records import RunRecord
from faapkit.errors import FaapError


def gather(
    paths: list[Path],
    pm: Any,
    outputs: dict[str, Path | None],
    say: Callable[[str], None],
    across_seeds: bool = False,
) -> list[RunRecord]:
    """Every record under the paths (a rescore beside its evaluation, or of changed detections,
    left out; copies merged), each assigned its dataset and baseline; what is unreadable or left
    out goes to ``say``, in the order it is found. ``outputs`` (``--csv``/``--plot``) may not name
    a file being read. A seed set that is not one configuration is refused with ``across_seeds``,
    else said (its runs are rows of their own configurations)."""
    records, unreadable = discover(paths, pm)
    for u in unreadable:
        if isinstance(u, NotOneSet):
            if across_seeds:
                raise FaapError(str(u))
            say(str(u))  # its seeds are rows of their own configurations
            continue
        say(u if isinstance(u, LeftOut) else f"not a run or metrics file any plugin reads: {u}")
    for r in records:
        if r.flag_note:  # one line per flagged file; the row's flags column names the flags
            say(f"{r.path}: flagged {r.flag_note}")
    if not records:
        raise FaapError("no runs found under " + ", ".join(str(p) for p in paths))
    read = {Path(str(r.path)).absolute() for r in records if r.path}
    for option, target in outputs.items():
        if target is not None and target.absolute() in read:
            raise FaapError(f"{option} {target} is a metrics file being compared: never replaced; name another file")
    records, rescores = drop_rescores(records)
    for note in rescores:
        say(note)
    records, copies = merge_copies(records)
    for note in copies:
        say(note)
    for note in assign_datasets(records):
        say(note)
    fill_baselines(records)
    return records


def run_artefact(target: Path, pm: Any) -> str | None:
    """Why an existing ``target`` is part of a run or an evaluation, which a --csv or --plot must
    never replace, else ``None``."""
    from faapkit.artifacts.outputs import protected_kind, run_folder_of

    if not target.is_file():
        return None
    kind = protected_kind(target)
    if kind is not None:
        return f"is {kind}"
    folder = run_folder_of(target)
    if folder is not None:
        return f"is a file of the run {folder}"
    # a faapkit metrics file, or one a faap_read_run reader reads (built-in: the research scripts')
    if target.suffix == ".json" and (is_metrics_file(target) or pm.hook.faap_read_run(path=target)):
        return "is a metrics file"
    return None
