"""``faap data synth`` and ``faap detector pretrain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faapkit.cli._console import info, print_json
from faapkit.cli._context import lock_output, state
from faapkit.cli._options import JsonOpt

data_app = typer.Typer(no_args_is_help=True)
detector_app = typer.Typer(no_args_is_help=True)


@data_app.command("synth")
def synth(
    ctx: typer.Context,
    out: Path,
    seed: Annotated[int, typer.Option(help="generator seed; the same seed gives the same bytes")] = 0,
    bias: Annotated[
        str | None,
        typer.Option(help="v3 (the default: detr-synth-tiny-v3's), v2 (v3 with a smaller val split), v1 (history)"),
    ] = None,
    mixed: Annotated[
        bool, typer.Option("--mixed", help="images of both groups, groups on each person's box (FACET-style)")
    ] = False,
    images: Annotated[int | None, typer.Option(help="--mixed: images per split (default: the bias's)")] = None,
) -> None:
    """Write the synthetic biased benchmark (both layouts; --mixed: the attributes layout) to OUT."""
    from faapkit.data.synth import DEFAULT_BIAS, SynthSpec, write_synthetic
    from faapkit.data.synth_mixed import MixedSpec, write_mixed
    from faapkit.errors import ConfigError, DataError

    bias = bias or DEFAULT_BIAS
    if seed < 0:
        raise ConfigError(f"--seed must be at least 0, got {seed}")
    if images is not None and (not mixed or images < 1):
        raise ConfigError(f"--images takes at least 1 and goes with --mixed, got {images}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; give a folder (new, or holding this benchmark)")
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise DataError(f"{out} exists and is not empty; choose a new folder")
    try:
        out.absolute().parent.mkdir(parents=True, exist_ok=True)  # the lock lies beside the folder
    except OSError as exc:
        raise DataError(f"cannot create the folder of {out}: {exc.strerror or exc}") from None
    lock_output(ctx, out)  # two writers of one benchmark folder: one is refused
    existed = (out / "manifest.json").is_file()
    if mixed:  # each refuses a folder holding another benchmark
        write_mixed(out, MixedSpec(seed=seed, bias=bias, images=images))
    else:
        write_synthetic(out, SynthSpec(seed=seed, bias=bias))
    held = f"{out} already holds the {'mixed ' * mixed}synthetic benchmark of seed {seed}, bias {bias}"
    done = held if existed else f"wrote {'mixed-group ' * mixed}synthetic benchmark"
    layouts = [out / "coco"] if mixed else [out / "coco", out / "research"]
    info(f"{done} (layouts: {', '.join(map(str, layouts))})")


@detector_app.command("pretrain")
def pretrain_cmd(
    ctx: typer.Context,
    preset: Annotated[str, typer.Option(help="training preset")] = "synth-tiny",
    out: Annotated[Path, typer.Option(help="where to write the weights (.pth) and report (.json)")] = Path(
        "detr-synth-tiny.pth"
    ),
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="override the preset's epochs")] = None,
    stop_after: Annotated[
        int | None, typer.Option(help="end after this many epochs, keeping the --epochs schedule")
    ] = None,
    workers: Annotated[int, typer.Option(help="data loader workers")] = 4,
    force: Annotated[
        bool, typer.Option("--force", help="replace --out (and its report) if it holds earlier detector weights")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Train the tiny detector on the embedded benchmark (reproduces the shipped weights)."""
    from faapkit.errors import ConfigError
    from faapkit.train.pretrain import PRESETS, pretrain

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; known: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    _check_schedule(p.epochs, p.start_epoch, epochs, stop_after)
    if workers < 0:
        raise ConfigError(f"--workers must be at least 0, got {workers}")
    from faapkit.distributed import check_device_available

    check_device_available(device, "--device")
    _check_pretrain_out(out, force)
    lock_output(ctx, out)  # one pretraining per weights file (its report beside it included)
    spec = state(ctx).registries.detectors.get(p.detector)
    report = pretrain(
        spec,
        out,
        preset=p,
        device=device,
        epochs=epochs,
        stop_after=stop_after,
        num_workers=workers,
        log=info,
        preset_name=preset,
        init_spec=state(ctx).registries.detectors.get(p.init) if p.init else None,
    )
    if json_:
        print_json(report)
    else:
        info(
            f"saved {out}; test AP per group: "
            + ", ".join(f"{g}={m['AP']:.3f}" for g, m in report["test_baseline_trained_device"].items())
        )


def _check_schedule(preset_epochs: int, start_epoch: int, epochs: int | None, stop_after: int | None) -> None:
    """``--epochs`` and ``--stop-after`` give a schedule with at least one epoch to train: both
    at least 1 (0 is not "unset": it would start the preset's full schedule), the stop within
    the schedule, and both past the epoch a preset that continues a schedule starts from."""
    from faapkit.errors import ConfigError

    for option, value in (("--epochs", epochs), ("--stop-after", stop_after)):
        if value is not None and value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    total = preset_epochs if epochs is None else epochs
    given = f"--epochs {epochs}" if epochs is not None else f"the preset's {total} epochs"
    if stop_after is not None and stop_after > total:
        raise ConfigError(f"--stop-after {stop_after} is past the end of the schedule ({given}): give at most {total}")
    for option, value in (("--epochs", total), ("--stop-after", stop_after)):
        if value is not None and value <= start_epoch:
            raise ConfigError(
                f"{option} {value}: this preset continues its schedule from epoch {start_epoch}; "
                f"give more than {start_epoch}"
            )


def _check_pretrain_out(out: Path, force: bool) -> None:
    """The weights, their report (``.json``) and their snapshot (``.partial.pth``) may be
    written: a ``.pth``/``.pt`` name outside any run folder, in a writable folder; existing ones
    are replaced only with ``--force`` and only when they are earlier detector weights and
    pretrain reports (never a run's checkpoint, a generator or another JSON)."""
    from faapkit.artifacts.outputs import check_output, run_folder_of
    from faapkit.errors import FaapError

    folder = run_folder_of(out)
    if folder is not None:
        raise FaapError(f"--out {out} lies in the run folder {folder}: write detector weights outside run folders")
    # a .pth/.pt name, so that the report (the .json beside it) is never the weights themselves
    for path, option in ((out, "--out"), (out.with_suffix(".partial.pth"), f"--out {out}: its snapshot")):
        check_output(
            path,
            option,
            force=force,
            replaceable=_not_weights,
            weights=True,
            suffixes=(".pth", ".pt"),
            what="detector weights",
        )
    check_output(out.with_suffix(".json"), f"--out {out}: its report", force=force, replaceable=_not_report)


def _not_weights(path: Path) -> str | None:
    """Why an existing ``path`` may not be replaced by pretrained weights: it holds none (a
    generator checkpoint, another torch file, no torch file at all)."""
    import torch

    from faapkit.errors import CheckpointError
    from faapkit.io import load_checkpoint

    try:
        held = load_checkpoint(path, mmap=True)
    except CheckpointError:
        return "is no torch weights file"
    if "generator" in held:
        return "is a generator checkpoint"
    state = held.get("model", held)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "holds no detector weights"
    return None


def _not_report(path: Path) -> str | None:
    """Why an existing ``path`` may not be replaced by a pretrain report: it is none."""
    import json

    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        held = None
    if isinstance(held, dict) and {"detector", "preset", "command"} <= set(held):
        return None
    return "is no faap detector pretrain report"
