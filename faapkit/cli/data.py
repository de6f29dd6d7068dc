"""``faap data synth``: write the embedded synthetic benchmark; ``faap data import``: a fairness
dataset as released, in faapkit's layout (:mod:`faapkit.data.importers`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from faapkit.cli._console import info, warn
from faapkit.cli._context import lock_output

if TYPE_CHECKING:
    from faapkit.data.importers.common import Imported

data_app = typer.Typer(no_args_is_help=True)


@data_app.command("synth")
def synth(
    ctx: typer.Context,
    out: Path,
    seed: Annotated[int, typer.Option(help="generator seed; the same seed gives the same bytes")] = 0,
    bias: Annotated[
        str | None,
        typer.Option(
            help="v4 (the default: v3 with a train split detr-synth-tiny-v3 never saw; --mixed: v3), "
            "v3 (detr-synth-tiny-v3's), v2 (v3 with a smaller val split), v1 (weaker)"
        ),
    ] = None,
    mixed: Annotated[
        bool, typer.Option("--mixed", help="images of both groups, groups on each person's box (FACET-style)")
    ] = False,
    images: Annotated[int | None, typer.Option(help="--mixed: images per split (default: the bias's)")] = None,
    train_seed: Annotated[
        int | None,
        typer.Option(help="train split from this seed: images the shipped detector never saw (val, test: --seed's)"),
    ] = None,
) -> None:
    """Write the synthetic biased benchmark (both layouts; --mixed: the attributes layout) to OUT."""
    from faapkit.data.synth import DEFAULT_BIAS, SynthSpec, benchmark_words, check_synth_out, write_synthetic
    from faapkit.data.synth_mixed import MIXED_BIAS, MixedSpec, write_mixed
    from faapkit.errors import ConfigError, DataError

    if images is not None and (not mixed or images < 1):
        raise ConfigError(f"--images takes at least 1 and goes with --mixed, got {images}")
    if train_seed is not None and mixed:
        raise ConfigError("--train-seed goes without --mixed (the mixed benchmark was never a detector's train split)")
    try:  # before check_synth_out makes the folder above OUT: a refused --bias leaves nothing behind
        spec = (
            MixedSpec(seed=seed, bias=bias or MIXED_BIAS, images=images)
            if mixed
            else SynthSpec(seed=seed, bias=bias or DEFAULT_BIAS, train_seed=train_seed)
        )
    except DataError as exc:
        raise ConfigError(f"--bias {bias}: {exc}") from None
    check_synth_out(out, seed, train_seed)  # also makes the folder above OUT: the lock lies beside it
    lock_output(ctx, out)  # two writers of one benchmark folder: one is refused
    existed = (out / "manifest.json").is_file()
    if isinstance(spec, MixedSpec):  # each refuses a folder holding another benchmark
        write_mixed(out, spec)
    else:
        write_synthetic(out, spec)
    words = benchmark_words(seed, spec.bias, None if isinstance(spec, MixedSpec) else spec.train_seed)
    held = f"{out} already holds the {'mixed ' * mixed}synthetic benchmark of {words}"
    done = held if existed else f"wrote {'mixed-group ' * mixed}synthetic benchmark"
    layouts = [out / "coco"] if mixed else [out / "coco", out / "research"]
    info(f"{done} (layouts: {', '.join(map(str, layouts))})")


import_app = typer.Typer(no_args_is_help=True)
data_app.add_typer(
    import_app, name="import", help="Import a fairness dataset as released (FACET, COCO 2014 person attributes)."
)
SPLIT_HELP = "the split it becomes (faap eval --split; eval's default is test)"
FORCE_HELP = "replace an earlier import of this split in OUT"


def _check_out(out: Path, split: str, images: Path, force: bool) -> None:
    """The split an import writes may be written: refused before any reading when its annotation
    file exists (without ``--force``), its folder cannot take it, or its image link points elsewhere."""
    from faapkit.artifacts.outputs import check_output, ensure_folder
    from faapkit.data.importers.common import check_image_link, split_paths

    ann, link = split_paths(out, split)
    if ann.parent.is_dir():
        check_output(ann, "--out", force=force, suffixes=(".json",))
    else:
        ensure_folder(ann, "--out", create=False)
    check_image_link(link, images, force=force)


def _report(imported: Imported, written: Path) -> None:
    info(
        f"imported {len(imported.annotations)} person box(es) on {len(imported.images)} image(s)"
        f" ({imported.ignored} ignore region(s)) into {written}"
    )
    for attr in imported.attributes:
        counts = ", ".join(f"{g}={n}" for g, n in imported.group_counts(attr).items())
        info(f"  {attr}: {counts}")
    for note in imported.notes:
        warn(note)
    info(f"score it: faap eval --data {written.parents[1]} --split {written.stem.removeprefix('instances_')} ...")


@import_app.command("facet")
def import_facet(
    annotations: Annotated[Path, typer.Option(help="FACET's annotations.csv")],
    images: Annotated[Path, typer.Option(help="the folder holding the images its filename column names")],
    out: Annotated[Path, typer.Option(help="the dataset folder to write (attributes layout)")],
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "test",
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """FACET's per-person CSV as box-level groups: gender_presentation, age_presentation, skin_tone."""
    from faapkit.data.importers.common import write_split
    from faapkit.data.importers.facet import import_facet as read_facet

    _check_out(out, split, images, force)
    imported = read_facet(annotations, images)
    _report(imported, write_split(out, split, imported, images, force=force))


@import_app.command("coco-person-attributes")
def import_coco_person_attributes(
    instances: Annotated[Path, typer.Option(help="COCO's own instances_val2014.json")],
    annotations: Annotated[Path, typer.Option(help="the person-level CSV of Zhao et al. 2021 (instances_val2014.csv)")],
    images: Annotated[Path, typer.Option(help="COCO's val2014 image folder")],
    out: Annotated[Path, typer.Option(help="the dataset folder to write (attributes layout)")],
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "test",
    id_column: Annotated[str, typer.Option(help="the CSV column holding the COCO annotation id")] = "id",
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Zhao et al.'s per-person skin colour and gender labels on COCO's val2014 boxes, by annotation id."""
    from faapkit.data.importers.coco_person import import_coco_person
    from faapkit.data.importers.common import write_split

    _check_out(out, split, images, force)
    imported = import_coco_person(instances, annotations, images, id_column=id_column)
    _report(imported, write_split(out, split, imported, images, force=force))
