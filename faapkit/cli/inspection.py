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


@app.command("plugins")
def plugins(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Every registered version, loss, head, schedule, detector and logger, and the plugin providing it."""
    from faapkit.plugins.providers import component_rows

    st = state(ctx)
    rows = component_rows(st.pm, st.registries)
    errors = [{"plugin": n, "error": e} for n, e in st.pm.load_errors]
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

    _print_fields(describe_checkpoint(path), str(path), ("key", "content"), json_)


@app.command("run")
def run(ctx: typer.Context, path: Path, json_: JsonOpt = False) -> None:
    """A run folder: manifest, epochs logged, checkpoints, metrics (a seed set: each seed's state)."""
    from faapkit.compare import describe_run
    from faapkit.train.seeds import describe_seed_set, is_seed_set

    info = describe_seed_set(path) if is_seed_set(path) else describe_run(path, state(ctx).pm)
    _print_fields(info, str(path), ("field", "value"), json_)


def _print_fields(info: dict[str, Any], title: str, headers: tuple[str, str], json_: bool) -> None:
    """A description as JSON, or as a two-column table of its fields."""
    if json_:
        print_json(info)
        return
    table = Table(title=title)
    table.add_column(headers[0])
    table.add_column(headers[1], overflow="fold")
    for key, value in info.items():
        table.add_row(key, str(value))
    out_console.print(table)


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
    from faapkit.cli._console import info
    from faapkit.evaluate.perturbation import check_perturbation_options, generator_and_images
    from faapkit.generators.visualize import perturbation_grid

    check_perturbation_options(images, epsilon, amplify, out, force)
    lock = lock_output(ctx, out)
    generator, meta, tensors = generator_and_images(
        ckpt,
        state(ctx).registries,
        images=images,
        epsilon=epsilon,
        data=data,
        split=split,
        detector_checkpoint=detector_checkpoint,
    )
    lock.check_unchanged(force, "--out")
    perturbation_grid(generator, tensors, out, amplify)
    info(f"wrote {out} ({len(tensors)} rows, epsilon {meta['epsilon']:.4f}, delta x{amplify:g})")


@app.command("features")
def features(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="a run folder (its chosen checkpoint) or a checkpoint")],
    split: Annotated[str, typer.Option(help="split whose people are measured")] = "test",
    epoch: Annotated[int | None, typer.Option(help="this epoch's checkpoint instead of the chosen one")] = None,
    data: Annotated[Path | None, typer.Option(help="dataset root (default: the run's)")] = None,
    limit_images: Annotated[int | None, typer.Option(help="the first N images of the split")] = None,
    out: Annotated[
        Path | None, typer.Option(help="JSON to write, the plot beside it (default: RUN/features/tsne_compare_...)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="replace an earlier features file and plot")] = False,
    json_: JsonOpt = False,
) -> None:
    """Decoder features of the matched people before and after the perturbation: each group's
    displacement, the distance and cosine of the group centres (the research's tsne_compare
    fields), and a t-SNE plot."""
    from faapkit.cli.evaluate import CliHost
    from faapkit.report.features import FeaturesCommand, inspect_features

    cmd = FeaturesCommand(run, split, epoch, data, limit_images, out, device, force)
    result = inspect_features(cmd, state(ctx).registries, CliHost(state(ctx)))
    if json_:
        print_json(result)
        return
    _print_fields(
        {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in result["checkpoint1"].items()},
        f"decoder features on {result['split']}",
        ("field", "value"),
        False,
    )
