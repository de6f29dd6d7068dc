"""What ``faap eval`` refuses before any inference: impossible option values, results that would
be misfiled (an ``--out`` that is a run's own record or anything but a metrics file, a
checkpoint in a run folder that another run wrote: its numbers would be listed as this run's,
under this run's version) and a generator evaluated against other detector weights than it was
trained against, unasked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from faapkit.errors import ConfigError, FaapError
from faapkit.evaluate.request import EvalCommand


def check_options(cmd: EvalCommand) -> None:
    """Refuse impossible option values before any work (typer would accept them)."""
    from faapkit.evaluate.settings import check_bootstrap

    if cmd.epsilon is not None and not 0 < cmd.epsilon <= 1:  # NaN too
        raise ConfigError(f"--epsilon must be in (0, 1], got {cmd.epsilon}")
    if cmd.epoch is not None and cmd.epoch < 0:
        raise ConfigError(f"--epoch must be at least 0, got {cmd.epoch}")
    for name, value, least in (
        ("--batch-size", cmd.batch_size, 1),
        ("--bootstrap", cmd.bootstrap, 0),
        ("--limit-images", cmd.limit_images, 1),
        ("--workers", cmd.workers, 0),
        ("--nproc", cmd.nproc, 1),
    ):
        if value is not None and value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")
    if cmd.bootstrap is not None:
        check_bootstrap(cmd.bootstrap)
    if cmd.on_invalid not in (None, "fail", "skip"):
        raise ConfigError(f"--on-invalid must be fail or skip, got {cmd.on_invalid!r}")


def check_out(out: Path, *, force: bool, not_metrics: Callable[[Path], str | None]) -> None:
    """Refuse an ``--out`` that is, or would pass for, a run's record, a checkpoint or saved
    detections, that cannot be written, that exists without ``--force``, or that exists and is no
    faapkit metrics file (``not_metrics`` says why not): ``--force`` replaces a result, never a
    run artefact (:func:`faapkit.artifacts.outputs.check_output`, shared by every command)."""
    from faapkit.artifacts.outputs import check_output

    check_output(out, "--out", force=force, replaceable=not_metrics)


def check_belongs(checkpoint: Path, run_dir: Path) -> None:
    """Refuse a checkpoint of ``run_dir`` that is no whole training checkpoint (format, keys and
    their types: before any inference), or whose run id or version is not the run's (one dropped
    in from another run)."""
    from faapkit.artifacts.records import checkpoint_payload
    from faapkit.artifacts.rundir import RunDir
    from faapkit.io import load_checkpoint

    manifest = RunDir(run_dir).manifest()
    # memory-mapped: the check reads the keys, the weights are loaded once, by the evaluation
    ckpt = checkpoint_payload(load_checkpoint(checkpoint, mmap=True), checkpoint)
    for key, what in (("run_id", "run id"), ("version", "version")):
        mine, stored = getattr(manifest, key), getattr(ckpt, key)
        if stored != mine:
            raise FaapError(
                f"{checkpoint} was written with {what} {stored}, not by the run of {run_dir} ({what} {mine}): "
                "copied from another run? evaluate it from its own run folder, or copy it out of this one"
            )


def check_trained_against(checkpoint: Path, detector: object) -> None:
    """Refuse a generator trained against other detector weights than the ones about to
    evaluate it, unless they were asked for (``--detector``/``--detector-checkpoint``): its
    numbers would be filed as the run's although they measure a transfer to another detector
    (e.g. a run's detector checkpoint replaced on disk since it trained). A checkpoint that
    records no detector (research scripts) passes."""
    from faapkit.errors import CheckpointError
    from faapkit.io import load_checkpoint

    stored = load_checkpoint(checkpoint, mmap=True).get("detector")
    record: dict[str, object] = stored if isinstance(stored, dict) else {}
    trained, now = record.get("sha256"), getattr(detector, "sha256", None)
    if not trained or not now or trained == now:
        return
    raise CheckpointError(
        f"{checkpoint}: its generator was trained against detector '{record.get('name')}' with weights "
        f"{str(trained)[:12]}, not the {str(now)[:12]} loaded now; pass --detector-checkpoint with the weights it "
        "was trained against, or name other weights explicitly to measure a transfer"
    )
