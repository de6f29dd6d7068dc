"""``faap eval``: per-group COCO AP/AR for baseline and perturbed inputs, gaps and CIs.

The options become one :class:`faapkit.evaluate.requests.EvalCommand`;
:func:`faapkit.evaluate.command.flow.run_eval` does the work and this module prints what it returns.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from faapkit.cli._console import info, out_console, print_json, warn
from faapkit.cli._context import AppState, state
from faapkit.cli._options import ConfigOpt, JsonOpt, SetOpt
from faapkit.evaluate.command.checkpoint_choice import CHANGED_BEST
from faapkit.evaluate.command.settings import OTHER_DETECTOR

if TYPE_CHECKING:
    from faapkit.evaluate.requests import Progress
    from faapkit.plugins.registry import Registries


def evaluate(
    ctx: typer.Context,
    target: Annotated[Path | None, typer.Argument(help="run folder or checkpoint; omit for the baseline only")] = None,
    split: Annotated[str | None, typer.Option(help="split to evaluate [eval.split: test]")] = None,
    split_by: Annotated[
        str | None, typer.Option(help="image attribute defining the groups (default: the run's)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="dataset root (default: the run's, else the embedded benchmark)")
    ] = None,
    detector: Annotated[str | None, typer.Option(help="registered detector (default: the run's)")] = None,
    detector_checkpoint: Annotated[Path | None, typer.Option(help="detector weights")] = None,
    epoch: Annotated[
        int | None,
        typer.Option(
            help="checkpoint epoch of a run folder (default: the run's best.pt, chosen on val; else its highest step)"
        ),
    ] = None,
    epsilon: Annotated[float | None, typer.Option(help="override the checkpoint's epsilon")] = None,
    disadvantaged: Annotated[str | None, typer.Option(help="disadvantaged group of a two-group gap")] = None,
    advantaged: Annotated[str | None, typer.Option(help="reference group of a two-group gap")] = None,
    batch_size: Annotated[int | None, typer.Option(help="images of one shape per batch [eval.batch_size: 8]")] = None,
    bootstrap: Annotated[int | None, typer.Option(help="bootstrap resamples, 0 = none [eval.bootstrap: 1000]")] = None,
    seed: Annotated[int | None, typer.Option(help="bootstrap seed [eval.seed: 0]")] = None,
    confidence: Annotated[float | None, typer.Option(help="level of every CI [eval.confidence: 0.95]")] = None,
    iou: Annotated[
        list[float] | None, typer.Option(help="IoU threshold, repeatable [eval.iou_thresholds: 0.50:0.05:0.95]")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    rescore: Annotated[
        Path | None,
        typer.Option(help="re-score the detections saved with this metrics JSON (other bootstrap/seed/CI/IoU)"),
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    limit_images: Annotated[int | None, typer.Option(help="evaluate only the first N images")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute the baseline")] = False,
    workers: Annotated[
        int | None, typer.Option(help="data-loading processes (default: 0 on CPU, up to 8 on CUDA)")
    ] = None,
    amp: Annotated[bool | None, typer.Option(help="bf16 autocast on CUDA [eval.amp: off]")] = None,
    channels_last: Annotated[bool | None, typer.Option(help="NHWC convolutions [eval.channels_last: on]")] = None,
    save_detections: Annotated[
        bool | None, typer.Option(help="keep detections for --rescore [eval.save_detections: on]")
    ] = None,
    nproc: Annotated[int, typer.Option(help="shard inference over N processes with torchrun")] = 1,
    out: Annotated[
        Path | None,
        typer.Option(help="metrics.json path (default: <run>/eval/<what was evaluated>.json, or next to a checkpoint)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing metrics file")] = False,
    accept_changed_best: Annotated[
        bool,
        typer.Option(
            CHANGED_BEST,
            help="evaluate a run's best.pt whose sha256 differs from selection.json's (labelled as not chosen on val)",
        ),
    ] = False,
    accept_other_detector: Annotated[
        bool,
        typer.Option(
            OTHER_DETECTOR,
            help="evaluate a generator that reads the detector with another --detector (labelled in the metrics)",
        ),
    ] = False,
    on_invalid: Annotated[
        str | None,
        typer.Option(help="fail | skip: images with invalid annotations, sizes or modes (default: the run's)"),
    ] = None,
    on_corrupt: Annotated[
        str | None,
        typer.Option(help="fail | skip: images that cannot be decoded, counted in the metrics (default: the run's)"),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no live progress")] = False,
    json_: JsonOpt = False,
    codec: Annotated[
        str | None, typer.Option(help="png | jpeg:Q | webp:Q: baseline and perturbed images pass through it")
    ] = None,
    exported: Annotated[
        Path | None, typer.Option(help="score this faap export file (its run, unless RUN is given)")
    ] = None,
) -> None:
    """Per-group and overall COCO AP/AR of baseline and perturbed inputs, gaps, ratios and CIs."""
    from faapkit.evaluate.command import run_eval
    from faapkit.evaluate.requests import EvalCommand

    cmd = EvalCommand(
        target=target, split=split, split_by=split_by, data=data, detector=detector,
        detector_checkpoint=detector_checkpoint, epoch=epoch, epsilon=epsilon, disadvantaged=disadvantaged,
        advantaged=advantaged, batch_size=batch_size, bootstrap=bootstrap, seed=seed, confidence=confidence,
        iou=tuple(iou) if iou is not None else None, config=config, set_=tuple(set_ or ()), rescore=rescore,
        device=device, limit_images=limit_images, no_cache=no_cache, workers=workers, amp=amp,
        channels_last=channels_last, save_detections=save_detections, nproc=nproc, out=out, force=force,
        accept_changed_best=accept_changed_best, accept_other_detector=accept_other_detector, on_invalid=on_invalid,
        on_corrupt=on_corrupt, progress=not quiet and not json_, codec=codec, exported=exported,
    )  # fmt: skip
    outcome = run_eval(cmd, CliHost(state(ctx)))
    if outcome.seeds is not None:
        if json_:
            print_json(outcome.seeds.to_json())
        else:
            from faapkit.cli.eval_table import show_seeds

            show_seeds(outcome.seeds.rows, outcome.seeds.summary, out_console)
    elif outcome.result is not None:
        show(outcome.result, json_=json_)


def show(result: dict[str, Any], json_: bool) -> None:
    """One evaluation's metrics: JSON, else the table (TSV off a terminal)."""
    if json_:
        print_json(result)
    else:
        from faapkit.cli.eval_table import show as show_table

        show_table(result, out_console)


class CliHost:
    """:class:`faapkit.evaluate.command.host.Host` on the console: notes on stderr, rich progress, the
    plugins of this invocation, torchrun and the run's trackers."""

    def __init__(self, app: AppState) -> None:
        self.app = app

    def info(self, message: str) -> None:
        info(message)

    def warn(self, message: str) -> None:
        warn(message)

    def registries(self) -> Registries:
        return self.app.registries

    def progress(self, enabled: bool) -> AbstractContextManager[Progress]:
        from faapkit.cli.eval_progress import EvalProgress

        return EvalProgress(enabled=enabled)

    def launch(self, nproc: int) -> None:
        from faapkit.cli._launch import launch_torchrun

        launch_torchrun(nproc)

    def evaluation_written(self, run_dir: Path, path: Path) -> None:
        from faapkit.errors import FaapError
        from faapkit.train.trackers import log_evaluation

        try:
            log_evaluation(run_dir, path)
        except FaapError as exc:
            warn(f"evaluation written, not logged to the run's tracker: {exc}")
