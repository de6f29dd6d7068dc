"""``faap probe headroom``: the oracle upper bound of what a perturbation of a given size can do."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from faapkit.cli._console import info, out_console, print_json, warn
from faapkit.cli._context import state
from faapkit.cli._options import JsonOpt

probe_app = typer.Typer(no_args_is_help=True)


@probe_app.command("headroom")
def headroom(
    ctx: typer.Context,
    split: Annotated[str, typer.Option(help="split to probe")] = "test",
    split_by: Annotated[str, typer.Option(help="image attribute defining the groups")] = "gender",
    data: Annotated[Path | None, typer.Option(help="dataset root (default: the embedded benchmark)")] = None,
    detector: Annotated[str | None, typer.Option(help="registered detector (default: detector.name's default)")] = None,
    detector_checkpoint: Annotated[Path | None, typer.Option(help="detector weights")] = None,
    epsilon: Annotated[float, typer.Option(help="L-inf bound in normalised units, as a generator's")] = 0.09,
    steps: Annotated[int, typer.Option(help="signed-gradient steps per image")] = 10,
    step_size: Annotated[float, typer.Option(help="size of each step")] = 0.005,
    disadvantaged: Annotated[str, typer.Option(help="disadvantaged group")] = "female",
    advantaged: Annotated[str, typer.Option(help="advantaged group")] = "male",
    limit_images: Annotated[int | None, typer.Option(help="probe only the first N images (round-robin)")] = None,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples (0 = none)")] = 1000,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace --out if it is an earlier headroom report")] = False,
    json_: JsonOpt = False,
) -> None:
    """Oracle bound (per-image PGD with ground truth, never a method): per-group AP lift and gap."""
    from faapkit.data.synth import embedded_dataset_for
    from faapkit.detr.frozen import load_detector
    from faapkit.distributed import setup_process
    from faapkit.evaluate.evaluator import load_eval_split
    from faapkit.evaluate.headroom import HeadroomRequest, probe_headroom
    from faapkit.evaluate.headroom_checks import check_groups, check_options, not_a_report
    from faapkit.evaluate.settings import check_bootstrap
    from faapkit.io import atomic_write_text

    check_options(epsilon, steps, step_size, limit_images, (disadvantaged, advantaged), device)
    check_bootstrap(bootstrap)
    if out is not None:
        from faapkit.artifacts.outputs import check_output

        check_output(out, "--out", force=force, replaceable=not_a_report)
    from faapkit.artifacts.output_lock import OutputLock

    # one probe per report: a second one into the same --out is refused before any work
    with OutputLock(out, note=warn) if out is not None else contextlib.nullcontext() as lock:
        from faapkit.config import DEFAULT_DETECTOR

        spec = state(ctx).registries.detectors.get(detector or DEFAULT_DETECTOR)
        _, dev = setup_process(device, key="--device")
        root = data or embedded_dataset_for(spec, detector_checkpoint)
        det = load_detector(spec, detector_checkpoint, device=dev)
        split_data = load_eval_split(root, split, split_by, "auto", limit_images, "fail")
        check_groups(split_data, disadvantaged, advantaged)
        req = HeadroomRequest(
            data=split_data,
            detector=det,
            device=dev,
            epsilon=epsilon,
            steps=steps,
            step_size=step_size,
            bootstrap=bootstrap,
            disadvantaged=disadvantaged,
            advantaged=advantaged,
        )
        info(f"oracle: {steps} signed-gradient steps of {step_size} per image, |delta| <= {epsilon} (an upper bound)")
        result = probe_headroom(req)
        if isinstance(lock, OutputLock):
            lock.check_unchanged(force)  # written meanwhile by a process that ignored the lock
            atomic_write_text(lock.output, json.dumps(result, indent=2) + "\n")
            info(f"report written to {out}")
    if json_:
        print_json(result)
    else:
        out_console.print(headroom_table(result))


def _ci(ci: list[float] | None) -> str:
    return f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""


def headroom_table(result: dict[str, Any]) -> Table:
    o = result["oracle"]
    table = Table(title=f"headroom on {result['split']}: oracle, eps {o['epsilon']}, {o['steps']} steps")
    for col in ("group", "images", "AP clean", "AP oracle", "lift [CI]"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)
    for g, m in result["metrics"]["baseline"].items():
        lift = result["lift"][g]["AP"]
        table.add_row(
            g,
            str(result["groups"][g]["images"]),
            f"{m['AP']:.3f}",
            f"{result['metrics']['oracle'][g]['AP']:.3f}",
            f"{lift:+.3f}{_ci(result.get('lift_ci', {}).get(g, {}).get('AP'))}",
        )
    if "gap_AP" in result:
        gap = result["gap_AP"]
        table.add_row(
            "AP gap",
            "",
            f"{gap['baseline']:+.3f}",
            f"{gap['oracle_on_disadvantaged']:+.3f}",
            f"{gap['change']:+.3f}{_ci(gap.get('change_ci'))}",
        )
    return table
