"""``faap apply RUN SRC --out DST``: a run's perturbation written over images (``faapkit.deploy.apply``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def apply(
    run: Annotated[Path, typer.Argument(help="run folder, one seed's folder, or a checkpoint")],
    src: Annotated[Path, typer.Argument(help="folder of images (recursive), or a COCO dataset root with --split")],
    out: Annotated[Path, typer.Option("--out", help="folder to write into (never SRC or inside it)")],
    split: Annotated[str | None, typer.Option(help="SRC is a COCO root: perturb this split, annotations too")] = None,
    fmt: Annotated[str, typer.Option("--format", help="png (lossless), or jpeg / webp with --quality")] = "png",
    quality: Annotated[int | None, typer.Option(help="jpeg/webp quality 1..100 (lossy: weakens the effect)")] = None,
    epoch: Annotated[int | None, typer.Option(help="apply this epoch's checkpoint, not best.pt")] = None,
    on_corrupt: Annotated[
        str, typer.Option(help="an unreadable image: fail, or skip (listed in the manifest)")
    ] = "fail",
    force: Annotated[
        bool, typer.Option("--force", help="rewrite every file; write into a folder holding others")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Perturb every image at the detector's input scale and write it losslessly under the same
    relative name, with a manifest DST/faap-apply.json; a rerun skips what is written already."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from faapkit.cli._console import err_console, info, warn
    from faapkit.deploy.apply import ApplyRequest, apply_run, codec_of, lossy_warning

    codec = codec_of(fmt, quality)
    if not codec.lossless:
        warn(lossy_warning(codec))
    request = ApplyRequest(run, src, out, epoch, split, fmt, quality, force, on_corrupt)
    bar = Progress(BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err_console, transient=True)
    with bar:
        task = bar.add_task("apply", total=None, visible=progress)
        manifest = apply_run(request, progress=lambda done, total: bar.update(task, completed=done, total=total))
    kept = len(manifest["files"]) - manifest["written"]
    already = f", {kept} already written" if kept else ""
    skipped = (
        f"; {len(manifest['corrupt'])} left out as unreadable or unresizable (listed there)"
        if manifest["corrupt"]
        else ""
    )
    removed = manifest["removed"]
    listed = ", ".join(removed[:3]) + (", ..." if len(removed) > 3 else "")
    gone = f"; removed {len(removed)} earlier output(s) no current source writes ({listed})" if removed else ""
    info(f"wrote {manifest['written']} images{already} and {out / 'faap-apply.json'}{skipped}{gone}")
