"""``faap eval``: per-group COCO AP/AR for baseline and perturbed inputs, gaps and CIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from faapkit.cli._console import info, out_console, print_json
from faapkit.cli._context import state
from faapkit.cli._options import JsonOpt
from faapkit.errors import FaapError


def _resolve_target(target: Path | None, epoch: int | None) -> tuple[Path | None, dict[str, Any]]:
    """(checkpoint, run config) from a run folder, a checkpoint file or nothing (baseline only)."""
    from faapkit.core.rundir import RunDir

    if target is None:
        return None, {}
    if not target.exists():
        raise FaapError(f"not found: {target}")
    if target.is_dir():
        run = RunDir(target)
        config = run.read_manifest().get("config", {})
        files = sorted(run.checkpoint_files(), key=lambda p: p.stat().st_mtime)  # the latest state last
        if epoch is not None:
            files = [p for p in files if p.name == f"epoch_{epoch:04d}.pt"]
        if not files:
            raise FaapError(f"{target} has no {'epoch ' + str(epoch) + ' ' if epoch is not None else ''}checkpoint")
        return files[-1], config
    run = RunDir(target.parent.parent)
    return target, (run.read_manifest().get("config", {}) if run.exists() else {})


def evaluate(
    ctx: typer.Context,
    target: Annotated[Path | None, typer.Argument(help="run folder or checkpoint; omit for the baseline only")] = None,
    split: Annotated[str, typer.Option(help="split to evaluate")] = "test",
    split_by: Annotated[
        str | None, typer.Option(help="image attribute defining the groups (default: the run's)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="dataset root (default: the run's, else the embedded benchmark)")
    ] = None,
    detector: Annotated[str | None, typer.Option(help="registered detector (default: the run's)")] = None,
    detector_checkpoint: Annotated[Path | None, typer.Option(help="detector weights")] = None,
    epoch: Annotated[int | None, typer.Option(help="checkpoint epoch of a run folder (default: last)")] = None,
    epsilon: Annotated[float | None, typer.Option(help="override the checkpoint's epsilon")] = None,
    disadvantaged: Annotated[str | None, typer.Option(help="disadvantaged group of a two-group gap")] = None,
    advantaged: Annotated[str | None, typer.Option(help="reference group of a two-group gap")] = None,
    batch_size: Annotated[int, typer.Option(help="eval batch size (images of one shape per batch)")] = 8,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples (0 = none)")] = 1000,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    limit_images: Annotated[int | None, typer.Option(help="evaluate only the first N images")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute the baseline")] = False,
    workers: Annotated[
        int | None, typer.Option(help="data-loading processes (default: 0 on CPU, up to 8 on CUDA)")
    ] = None,
    amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA (faster, AP differs slightly from fp32)")] = False,
    channels_last: Annotated[bool, typer.Option(help="NHWC convolutions (faster; same AP up to rounding)")] = True,
    nproc: Annotated[int, typer.Option(help="shard inference over N processes with torchrun")] = 1,
    out: Annotated[Path | None, typer.Option(help="metrics.json path (default: <run>/eval/...)")] = None,
    json_: JsonOpt = False,
) -> None:
    """Per-group COCO AP/AR of baseline and perturbed inputs, their gaps and bootstrap CIs."""
    if nproc > 1:
        from faapkit.cli._launch import launch_torchrun

        launch_torchrun(nproc)
        return
    from faapkit.config import DataConfig
    from faapkit.core.checkpoint import atomic_write_text
    from faapkit.core.distributed import setup_process, shutdown
    from faapkit.core.evaluator import EvalRequest, load_eval_split
    from faapkit.core.evaluator import evaluate as run_eval
    from faapkit.data.synth import embedded_dataset
    from faapkit.detr.frozen import load_detector

    if epsilon is not None and not 0 < epsilon <= 1:
        raise FaapError(f"--epsilon must be in (0, 1], got {epsilon}")
    checkpoint, run_config = _resolve_target(target, epoch)
    dcfg = DataConfig.model_validate({**run_config.get("data", {}), "limit_images": limit_images})
    root = data or (Path(dcfg.root) if dcfg.root else embedded_dataset())
    attr = split_by or dcfg.split_by
    dist_info, dev = setup_process(device)
    reg = state(ctx).registries
    det_name = detector or run_config.get("detector", {}).get("name", "detr-synth-tiny")
    det_ckpt = detector_checkpoint or (
        Path(run_config["detector"]["checkpoint"]) if run_config.get("detector", {}).get("checkpoint") else None
    )
    det = load_detector(reg.detectors.get(det_name), det_ckpt, device=dev)
    split_data = load_eval_split(root, split, attr, dcfg.layout, dcfg.limit_images, dcfg.on_corrupt)
    same_attr = attr == dcfg.split_by
    req = EvalRequest(
        data=split_data,
        detector=det,
        device=dev,
        checkpoint=checkpoint,
        epsilon=epsilon,
        batch_size=batch_size,
        min_size=dcfg.min_size,
        max_size=dcfg.max_size,
        bootstrap=bootstrap,
        seed=seed,
        disadvantaged=disadvantaged or (dcfg.disadvantaged if same_attr else None),
        advantaged=advantaged or (dcfg.advantaged if same_attr else None),
        cache=not no_cache,
        amp=amp,
        num_workers=workers,
        channels_last=channels_last,
        generators=reg.generators,
    )
    try:
        result = run_eval(req)
    finally:
        shutdown(dist_info)
    if not result:
        return  # non-zero ranks
    path = out
    if path is None and target is not None and checkpoint is not None:
        run_dir = target if target.is_dir() else target.parent.parent
        stem = checkpoint.stem
        path = run_dir / "eval" / f"{split}_{attr}_{stem}.json"
    if path is not None:
        atomic_write_text(path, json.dumps(result, indent=2) + "\n")
        info(f"metrics written to {path}")
    if json_:
        print_json(result)
    else:
        out_console.print(metrics_table(result))


def _ci(ci: list[float] | None) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def metrics_table(result: dict[str, Any]) -> Table:
    boot = result.get("bootstrap", {})
    table = Table(
        title=f"{result['split']} split by {result['split_by']}"
        + (f" - epsilon {result['epsilon']:.4f}" if result.get("epsilon") is not None else "")
    )
    for col in ("setting", "group", "images", "AP", "AP50", "AR"):
        table.add_column(col, justify="right" if col not in ("setting", "group") else "left")
    for name, per in result["metrics"].items():
        for g, m in per.items():
            cis = boot.get("groups", {}).get(name, {}).get(g, {})
            table.add_row(
                name,
                g,
                str(result["groups"][g]["images"]),
                f"{m['AP']:.3f}{_ci(cis.get('AP'))}",
                f"{m['AP50']:.3f}",
                f"{m['AR']:.3f}{_ci(cis.get('AR'))}",
            )
    for metric in ("AP", "AR"):
        gaps = result["gaps"][metric]
        bci = boot.get("gaps", {}).get(metric, {})
        for name in result["metrics"]:
            table.add_row(f"{metric} gap", name, "", f"{gaps[name]:+.4f}{_ci(bci.get(name))}", "", "")
        if "change" in gaps:
            sig = bci.get("significant")
            mark = "" if sig is None else ("  significant" if sig else "  not significant")
            table.add_row(f"{metric} gap", "change", "", f"{gaps['change']:+.4f}{_ci(bci.get('change'))}{mark}", "", "")
    return table
