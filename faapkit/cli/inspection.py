"""``faap inspect``: plugins, detectors, datasets, checkpoints, runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from faapkit.cli._console import out_console, print_json
from faapkit.cli._context import lock_output, state
from faapkit.cli._options import JsonOpt

app = typer.Typer(no_args_is_help=True)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def plugin_rows(ctx: typer.Context) -> list[dict[str, Any]]:
    st = state(ctx)
    reg = st.registries
    rows: list[dict[str, Any]] = []
    for kind, registry in (
        ("version", reg.versions),
        ("loss", reg.losses),
        ("head", reg.heads),
        ("generator", reg.generators),
        ("schedule", reg.schedules),
        ("detector", reg.detectors),
        ("logger", reg.loggers),
    ):
        for name in registry:
            found = st.provider(registry, name)
            rows.append(
                {
                    "kind": kind,
                    "name": name,
                    **{k: found[k] for k in ("plugin", "distribution", "builtin")},
                    "description": getattr(registry.entries[name], "description", ""),
                    "aliases": list(getattr(registry.entries[name], "aliases", ())),
                }
            )
    return rows


@app.command("plugins")
def plugins(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Every registered version, loss, head, schedule, detector and logger, and the plugin providing it."""
    rows = plugin_rows(ctx)
    errors = [{"plugin": n, "error": e} for n, e in state(ctx).pm.load_errors]
    if json_:
        print_json({"components": rows, "load_errors": errors})
        return
    table = Table(title="faap plugins", show_lines=False)
    for col in ("kind", "name", "plugin", "distribution", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r["name"] + (f" (alias {', '.join(r['aliases'])})" if r["aliases"] else "")
        table.add_row(r["kind"], name, r["plugin"], r["distribution"], r["description"])
    out_console.print(table)


@app.command("detector")
def detector(ctx: typer.Context, name: str, json_: JsonOpt = False) -> None:
    """Parameter counts and the state-dict key layout of a registered detector."""
    from faapkit.detr.build import describe_detector

    info = describe_detector(state(ctx).registries.detectors.get(name))
    if json_:
        print_json(info)
        return
    table = Table(title=f"detector {name}")
    table.add_column("module")
    table.add_column("parameters", justify="right")
    table.add_column("keys", justify="right")
    for group in info["groups"]:
        table.add_row(group["prefix"], f"{group['params']:,}", str(group["keys"]))
    table.add_row("[b]total[/]", f"[b]{info['num_params']:,}[/]", f"[b]{info['num_keys']}[/]")
    out_console.print(table)
    out_console.print(f"architecture: {info['arch']}")
    out_console.print(f"weights: {info['weights'] or 'none shipped (pass --checkpoint)'}")
    batches = "unpadded (shape-bucketed)" if info["trained_unpadded"] else "padded or unknown"
    out_console.print(f"weights trained on: {batches} batches; generators follow it (data.shape_buckets)")
    size = info["input_size"]
    out_console.print(
        f"input size: short side {size['min_size']}, long side at most {size['max_size']} (training: "
        f"{size['train_scales']}); the default of data.min_size / max_size / train_scales"
    )


@app.command("dataset")
def dataset(
    ctx: typer.Context,
    path: Path,
    split_by: Annotated[str, typer.Option(help="image attribute defining the groups")] = "gender",
    json_: JsonOpt = False,
) -> None:
    """Images, boxes and sizes per split and group."""
    from faapkit.data.inspect import dataset_summary, summary_table

    summary = dataset_summary(path, split_by=split_by)
    if json_:
        print_json(summary)
    else:
        out_console.print(summary_table(summary))


@app.command("checkpoint")
def checkpoint(path: Path, json_: JsonOpt = False) -> None:
    """What a faapkit or research checkpoint contains."""
    from faapkit.artifacts.checkpoint import describe_checkpoint

    info = describe_checkpoint(path)
    if json_:
        print_json(info)
        return
    table = Table(title=str(path))
    table.add_column("key")
    table.add_column("content", overflow="fold")
    for key, value in info.items():
        table.add_row(key, str(value))
    out_console.print(table)


@app.command("run")
def run(ctx: typer.Context, path: Path, json_: JsonOpt = False) -> None:
    """A run folder: manifest, epochs logged, checkpoints, metrics (a seed set: each seed's state)."""
    from faapkit.compare import describe_run
    from faapkit.train.seeds import is_seed_set

    info = _describe_seed_set(path) if is_seed_set(path) else describe_run(path, state(ctx).pm)
    if json_:
        print_json(info)
        return
    table = Table(title=str(path))
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in info.items():
        table.add_row(key, str(value))
    out_console.print(table)


def _describe_seed_set(path: Path) -> dict[str, Any]:
    """A ``--seeds`` folder: what the set is and where each seed stands (``done``, ``partial``,
    ``new``, or why its folder is not that seed's run), with its evaluations; it was shown as one
    run of N records, saying neither."""
    from faapkit.errors import FaapError
    from faapkit.train.seeds import read_seed_set, seed_folder, seed_state

    s = read_seed_set(path)
    info: dict[str, Any] = {"path": str(path), "format": "faapkit seed set", "version": s.version}
    info |= {"seeds": list(s.seeds), "config": s.config, "overrides": list(s.overrides)}
    for seed in s.seeds:
        run = seed_folder(path, seed)
        try:
            where = seed_state(run, seed, s.version)
        except FaapError as exc:
            where = f"refused: {exc}"
        evaluated = sorted(p.name for p in (run / "eval").glob("*.json")) if (run / "eval").is_dir() else []
        info[f"seed {seed}"] = f"{where}; {len(evaluated)} evaluation(s)" + (
            f": {', '.join(evaluated)}" if evaluated else ""
        )
    return info


@app.command("perturbation")
def perturbation(
    ctx: typer.Context,
    ckpt: Path,
    images: Annotated[int, typer.Option(help="how many test images (half from each of the first two groups)")] = 4,
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("perturbation.png"),
    force: Annotated[bool, typer.Option("--force", help="replace --out if it exists")] = False,
    data: Annotated[Path | None, typer.Option(help="dataset root (default: embedded benchmark)")] = None,
    split: Annotated[str, typer.Option(help="split to draw images from")] = "test",
    epsilon: Annotated[float | None, typer.Option(help="override the checkpoint's epsilon")] = None,
    amplify: Annotated[float, typer.Option(help="delta amplification in the third column")] = 10.0,
    detector_checkpoint: Annotated[
        Path | None, typer.Option(help="weights of the detector a detector-aware generator reads")
    ] = None,
) -> None:
    """Save original / perturbed / amplified-delta rows for a few images."""
    import torch

    from faapkit.cli._console import info
    from faapkit.data.coco import GroupedDetectionDataset, load_split
    from faapkit.data.synth import embedded_dataset
    from faapkit.data.transforms import EvalTransform
    from faapkit.evaluate.evaluator import detector_for_generator, load_generator
    from faapkit.generators.visualize import perturbation_grid

    _check_perturbation_options(images, epsilon, amplify, out, force)
    lock = lock_output(ctx, out)
    registries = state(ctx).registries
    detector = detector_for_generator(ckpt, registries, detector_checkpoint)
    generator, meta = load_generator(ckpt, epsilon, torch.device("cpu"), registries.generators, detector=detector)
    split_data = load_split(data or embedded_dataset(), split, limit=max(2, images))
    ds = GroupedDetectionDataset(split_data, EvalTransform(*_trained_input_size(ckpt, registries)))
    tensors = [ds[i][0] for i in range(min(images, len(ds)))]
    lock.check_unchanged(force, "--out")
    perturbation_grid(generator, tensors, out, amplify)
    info(f"wrote {out} ({len(tensors)} rows, epsilon {meta['epsilon']:.4f}, delta x{amplify:g})")


def _check_perturbation_options(images: int, epsilon: float | None, amplify: float, out: Path, force: bool) -> None:
    """Refuse what cannot make a figure, before the checkpoint and the images are loaded: no
    rows, an epsilon outside (0, 1] (the generators' bound in normalised units), an image format
    Pillow cannot write, and an ``--out`` that :func:`~faapkit.artifacts.outputs.check_output`
    refuses (a run's file, a missing or read-only folder, an existing file without --force)."""
    import math

    from PIL import Image

    from faapkit.artifacts.outputs import check_output
    from faapkit.errors import ConfigError

    if images < 1:
        raise ConfigError(f"--images must be at least 1, got {images}")
    if epsilon is not None and not 0 < epsilon <= 1:
        raise ConfigError(f"--epsilon must be in (0, 1], got {epsilon}")
    if not (math.isfinite(amplify) and amplify > 0):
        raise ConfigError(f"--amplify must be a positive number, got {amplify}")
    Image.init()  # every format plugin registered, so the list below is complete
    # the lossless or common formats of an RGB figure that this Pillow can write (it also lists
    # stub formats such as .grib that need a handler installed to write anything)
    writable = [e for e in IMAGE_SUFFIXES if Image.registered_extensions().get(e) in Image.SAVE]
    check_output(out, "--out", force=force, suffixes=writable, what="an image")


def _trained_input_size(ckpt: Path, registries: Any) -> tuple[int, int]:
    """``(min_size, max_size)`` of the detector the checkpoint's generator was trained against
    (its record names it), else the registered default detector's: the images are shown at
    the size the generator saw them."""
    from faapkit.config import DetectorConfig
    from faapkit.io import load_checkpoint

    name = (load_checkpoint(ckpt, mmap=True).get("detector") or {}).get("name")
    if name not in registries.detectors:
        name = DetectorConfig.model_fields["name"].default
    spec = registries.detectors.get(str(name))
    return spec.min_size, spec.max_size
