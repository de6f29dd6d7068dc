"""What one ``faap eval`` reads from the run it evaluates, under the command's options: the data
config and dataset root, the detector and its weights, the gap's pair of groups, and what the
metrics record of it that the evaluator does not know."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from faapkit.errors import ConfigError

if TYPE_CHECKING:
    from faapkit.config import DataConfig
    from faapkit.evaluate.targets import Target


def run_data(
    run_config: dict[str, Any],
    data: Path | None,
    limit_images: int | None,
    on_invalid: str | None,
    trained_on: str | None = None,
    detector: tuple[Any, Path | None] = (None, None),
    input_size: dict[str, Any] | None = None,
) -> tuple[DataConfig, Path]:
    """``(DataConfig, dataset root)``: the run's ``[data]`` (defaults without a run) with the
    command's ``--limit-images``, ``--on-invalid`` and resolved ``input_size``
    (:func:`faapkit.evaluate.settings.resolve_sizes`); ``--data`` replaces the run's root. A run
    on the embedded benchmark gets the one it trained on (``trained_on`` names its seed and bias),
    not today's default; without either, the benchmark ``detector`` (``(DetectorSpec, checkpoint)``) was
    trained on."""
    from faapkit.config import DataConfig, validate_model
    from faapkit.data.synth import embedded_dataset_for

    stored = {**run_config.get("data", {}), "limit_images": limit_images}
    stored.update({k: v for k, v in (input_size or {}).items() if k in ("min_size", "max_size")})
    if on_invalid is not None:
        stored["on_invalid"] = on_invalid
    dcfg = validate_model(DataConfig, stored, prefix="data")
    if data is None and dcfg.root is not None and not Path(dcfg.root).is_absolute():
        raise ConfigError(
            f"the run stores a relative data.root '{dcfg.root}' (faapkit before 0.2 did): it depends on the folder "
            "faap runs in; pass --data with the dataset's path"
        )
    own = Path(dcfg.root) if dcfg.root else None
    recorded = Path(trained_on) if trained_on else None
    root = (data.absolute() if data else None) or own or embedded_dataset_for(*detector, recorded=recorded)
    return dcfg, root


def run_detector(
    run_config: dict[str, Any], detector: str | None, detector_checkpoint: Path | None
) -> tuple[str, Path | None]:
    """The registered detector and weights to evaluate with: the options, else the run's (an
    empty stored checkpoint means the shipped weights), else the shipped tiny DETR."""
    stored = run_config.get("detector", {})
    from faapkit.config import DEFAULT_DETECTOR

    name = detector or stored.get("name", DEFAULT_DETECTOR)  # no run (a loose checkpoint): today's default
    # absolute: the metrics JSON must name the same file wherever it is read from (a run's is stored so)
    ckpt = detector_checkpoint.absolute() if detector_checkpoint else None
    ckpt = ckpt or (Path(stored["checkpoint"]) if stored.get("checkpoint") else None)
    return name, ckpt


def reference_pair(
    split: Any, disadvantaged: str | None, advantaged: str | None, dcfg: Any, from_run: bool
) -> tuple[str | None, str | None]:
    """The groups of the gap. Named ones (options, or the run's data config for the same attribute)
    must exist in the split: falling back to other groups would report another gap silently.
    Without a run, the defaults (female/male) apply only to a two-group split that has them."""
    chosen: list[str | None] = []
    for role, given in (("disadvantaged", disadvantaged), ("advantaged", advantaged)):
        source, group = f"--{role}", given
        if group is None and dcfg is not None:
            source, group = f"the run's data.{role}", getattr(dcfg, role)
            if not from_run:  # built-in defaults: only where they fit
                group = group if group in split.groups and len(split.groups) == 2 else None
        if group is not None and group not in split.groups:
            raise ConfigError(
                f"{source} '{group}' is not a group of '{split.split_by}' in split '{split.split}' "
                f"(groups: {', '.join(split.groups)})"
            )
        chosen.append(group)
    return chosen[0], chosen[1]


def annotate(
    result: dict[str, Any], tgt: Target, dcfg: Any, settings: Any, sources: dict[str, str], input_size: dict[str, Any]
) -> None:
    """What the evaluator does not know: how the checkpoint was chosen, the run, the data and
    evaluation settings and where each setting came from (``input_size``: the images' resize,
    ``{"min_size", "max_size", "source"}``)."""
    result["checkpoint_choice"] = tgt.chosen_by
    if tgt.check is not None:  # best.pt against the sha256 its run's selection.json recorded
        result["checkpoint_check"] = tgt.check
        if tgt.chosen_on is None and "selection" in result:  # not the chosen file: its record is not the run's
            result["selection_in_checkpoint"] = result.pop("selection")
    result["input_size"] = dict(input_size)
    if tgt.run_dir is not None:
        result["run"] = str(tgt.run_dir)
        result["run_id"] = tgt.run_id
    result["dataset"].update(
        limit_images=dcfg.limit_images, on_corrupt=dcfg.on_corrupt, on_invalid=dcfg.on_invalid, split=settings.split
    )
    result["eval_config"] = settings.model_dump(mode="json")
    result["eval_config_sources"] = sources


def checked_detector(detector: tuple[Any, Path | None], named: bool, tgt: Target, dev: Any) -> Any:
    """The detector to evaluate with (``(DetectorSpec, checkpoint)`` from :func:`run_detector`);
    unless ``--detector``/``--detector-checkpoint`` name one (``named``), it must be the weights
    the checkpoint's generator was trained against."""
    from faapkit.detr.frozen import load_detector

    det = load_detector(*detector, device=dev)
    if tgt.checkpoint is not None and not named:
        from faapkit.evaluate.guards import check_trained_against

        check_trained_against(tgt.checkpoint, det)
    return det
