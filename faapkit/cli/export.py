"""``faap export RUN``: the run's perturbation as one TorchScript or ONNX file (``faapkit.deploy.export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def export(
    run: Annotated[Path, typer.Argument(help="run folder, one seed's folder, or a checkpoint")],
    fmt: Annotated[str, typer.Option("--format", help="torchscript or onnx")] = "onnx",
    out: Annotated[Path | None, typer.Option(help="file to write (default RUN/export/perturbation.onnx|.ts)")] = None,
    with_detector: Annotated[
        bool, typer.Option("--with-detector", help="the fair detector: perturbation + frozen detector + boxes")
    ] = False,
    black_box: Annotated[
        bool, typer.Option("--black-box", help="refuse to put any detector internals in the file")
    ] = False,
    epoch: Annotated[int | None, typer.Option(help="export this epoch's checkpoint, not best.pt")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing export")] = False,
) -> None:
    """One self-contained file with the interface of faapkit.load_perturbation (of
    load_fair_detector with --with-detector), checked against the eager module to 1e-4 at two
    sizes, and its sidecar FILE.json (docs/deploy.md)."""
    from faapkit.cli._console import info
    from faapkit.deploy.export import ExportRequest, export_run

    request = ExportRequest(run, fmt, out, epoch, with_detector, black_box, force)
    written, sidecar = export_run(request)
    info(
        f"wrote {written} ({sidecar['format']}, {sidecar['interface']}; parity "
        f"{sidecar['parity']['max_abs']:.1e} at {len(sidecar['parity']['sizes'])} sizes) and its sidecar"
    )
