"""What ``faap eval`` evaluates with: its options checked, its settings, the run's data and
detector, and the gap's pair of groups.

The settings have one source, :class:`faapkit.config.EvalConfig`, layered
``defaults < the run's [eval] (or, for --rescore, the rescored file's) < --config < --set < flags``.
Each layer is validated as it is added, so an error names the key and the layer it came from.

The input size (``data.min_size``, ``data.max_size``) is layered the same way from the
detector's (``DetectorSpec.min_size``/``max_size``): ``detector < the run's [data] < --config
(its [data]) < --set data.key=value`` (:func:`resolve_sizes`). The data config, dataset root,
detector and pair are the run's under the command's options (:func:`run_data`,
:func:`run_detector`, :func:`reference_pair`); :func:`annotate` records in the metrics what the
evaluator does not know of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faapkit.errors import ConfigError
from faapkit.evaluate.command.host import Notes

if TYPE_CHECKING:
    from faapkit.config import DataConfig
    from faapkit.evaluate.command.checkpoint_choice import Target
    from faapkit.evaluate.requests import EvalCommand

Layers = list[tuple[str, dict[str, Any]]]  # (where the layer came from, its settings), lowest first

# the fewest bootstrap resamples a percentile interval means something with (0: no CIs)
MIN_RESAMPLES = 10

# settings a rescore cannot change: they decide the detections themselves
INFERENCE_KEYS = ("split", "batch_size", "amp", "channels_last")
# the [data] settings faap eval reads: the input size (they decide the detections too)
SIZE_KEYS = ("min_size", "max_size")
# ... and which level a dataset's groups are read at, for data holding them on images and boxes
DATA_KEYS = (*SIZE_KEYS, "group_level")


def check_bootstrap(resamples: int) -> None:
    """0 (no CIs) or enough resamples for a percentile interval to mean something."""
    if resamples != 0 and resamples < MIN_RESAMPLES:
        raise ConfigError(f"--bootstrap must be 0 (no CIs) or at least {MIN_RESAMPLES}, got {resamples}")


def check_options(cmd: EvalCommand) -> None:
    """Refuse impossible option values before any work (typer would accept them)."""
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
    for option, choice in (("--on-invalid", cmd.on_invalid), ("--on-corrupt", cmd.on_corrupt)):
        if choice not in (None, "fail", "skip"):
            raise ConfigError(f"{option} must be fail or skip, got {choice!r}")


def file_layers(path: Path, say: Notes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``[eval]`` section of a config file and its ``data.min_size`` / ``data.max_size``;
    its other (valid) sections and keys do not apply to eval and are named in a warning."""
    from faapkit.config import DataConfig, FaapConfig, read_config_file

    raw = read_config_file(path)
    unknown = sorted(set(raw) - set(FaapConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown key '{unknown[0]}' in {path}; valid keys here: {', '.join(sorted(FaapConfig.model_fields))}"
        )
    section, data = raw.get("eval", {}), raw.get("data", {})
    for name, table in (("eval", section), ("data", data)):
        if not isinstance(table, Mapping):
            raise ConfigError(f"'{name}' must be a table of settings ({path})")
    wrong = sorted(set(data) - set(DataConfig.model_fields))
    if wrong:
        raise ConfigError(
            f"unknown key 'data.{wrong[0]}' in {path}; valid keys here: {', '.join(sorted(DataConfig.model_fields))}"
        )
    others = sorted(k for k in raw if k not in ("eval", "version", "data"))
    others += sorted(f"data.{k}" for k in data if k not in DATA_KEYS)
    if others:
        say.warn(
            f"{path}: faap eval reads only its [eval] section and data.min_size / data.max_size / "
            f"data.group_level (not {', '.join(others)})"
        )
    return dict(section), {k: data[k] for k in DATA_KEYS if k in data}


def set_layers(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set eval.key=value`` items and ``--set data.min_size=...`` / ``data.max_size=...``."""
    from faapkit.config import parse_override

    layer: dict[str, Any] = {}
    sizes: dict[str, Any] = {}
    for item in items:
        path, value = parse_override(item)
        if len(path) == 2 and path[0] == "eval":
            layer[path[1]] = value
        elif len(path) == 2 and path[0] == "data" and path[1] in DATA_KEYS:
            sizes[path[1]] = value
        else:
            raise ConfigError(
                f"faap eval --set takes eval.<key>=value, data.min_size or data.max_size or data.group_level, "
                f"got {item!r}"
            )
    return layer, sizes


def resolve_sizes(
    detector: Any, run_data: Mapping[str, Any], layers: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """``{"min_size", "max_size", "source"}``: ``detector``'s (a ``DetectorSpec``) under the run's
    stored ``[data]`` (a run evaluates at what it trained with) and the command's ``layers``; each
    layer is validated as it is added. ``source`` names the layer that set them (each key's,
    when they differ)."""

    from faapkit.config import DataConfig

    values: dict[str, Any] = {"min_size": detector.min_size, "max_size": detector.max_size}
    sources = dict.fromkeys(SIZE_KEYS, f"detector '{detector.name}'")
    stored = {k: run_data[k] for k in SIZE_KEYS if k in run_data}
    size_layers = [(origin, {k: v for k, v in layer.items() if k in SIZE_KEYS}) for origin, layer in layers]
    _apply_layers(DataConfig, "data", [("the run's config", stored), *size_layers], values, sources)
    same = sources["min_size"] == sources["max_size"]
    source = sources["min_size"] if same else "; ".join(f"{k}: {sources[k]}" for k in SIZE_KEYS)
    return {**values, "source": source}


def group_level_of(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> str | None:
    """The ``data.group_level`` the command's ``layers`` set (the last one wins), checked; ``None``
    when none did (the run's, else ``auto``)."""
    from faapkit.config import DataConfig

    levels = [(origin, {k: v for k, v in layer.items() if k == "group_level"}) for origin, layer in layers]
    chosen: dict[str, Any] = {}
    _apply_layers(DataConfig, "data", levels, chosen, {})
    return chosen.get("group_level")


def _apply_layers(
    model: Any,
    section: str,
    layers: Sequence[tuple[str, Mapping[str, Any]]],
    values: dict[str, Any],
    sources: dict[str, str],
) -> None:
    """Merge ``layers`` into ``values`` in order, each checked by ``model`` as it lands (an invalid
    value is refused naming the layer that gave it), and note each key's source."""
    from pydantic import ValidationError

    from faapkit.config import format_validation_error

    for origin, layer in layers:
        values.update(layer)
        try:
            model.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"{format_validation_error(exc, model, section)} ({origin})") from None
        sources.update(dict.fromkeys(layer, origin))


def resolve(layers: list[tuple[str, Mapping[str, Any]]]) -> tuple[Any, dict[str, str]]:
    """The validated :class:`EvalConfig` and, per key, the layer that set it ("default" if none)."""

    from faapkit.config import EvalConfig

    merged: dict[str, Any] = {}
    sources = dict.fromkeys(EvalConfig.model_fields, "default")
    _apply_layers(EvalConfig, "eval", layers, merged, sources)
    cfg = EvalConfig.model_validate(merged)
    if cfg.bootstrap != 0 and cfg.bootstrap < MIN_RESAMPLES:
        raise ConfigError(
            f"eval.bootstrap must be 0 (no CIs) or at least {MIN_RESAMPLES}, got {cfg.bootstrap} "
            f"({sources['bootstrap']})"
        )
    from faapkit.evaluate.coco_backend import check_backend

    check_backend(cfg.coco_backend, sources["coco_backend"])
    return cfg, sources


def flag_layer(**flags: Any) -> dict[str, Any]:
    """The flags that were given (``None`` = not given); ``iou`` is ``eval.iou_thresholds``."""
    layer = {k: v for k, v in flags.items() if v is not None and k != "iou"}
    if flags.get("iou"):
        layer["iou_thresholds"] = [float(v) for v in flags["iou"]]
    return layer


def flag_layers(layer: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One layer per given flag, named as the user typed it (``--batch-size``, ``--no-amp``), so
    that each key's recorded source is the flag that set it."""
    out = []
    for key, value in layer.items():
        name = "--iou" if key == "iou_thresholds" else "--" + key.replace("_", "-")
        if isinstance(value, bool) and not value:
            name = "--no-" + name[2:]
        out.append((name, {key: value}))
    return out


def run_layer(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The run's stored ``[eval]`` less the keys it holds at their default: a run stores its whole
    resolved section, so only the keys it changed are its own (the others' source is "default")."""
    from faapkit.config import EvalConfig

    return {
        k: v for k, v in stored.items() if k not in EvalConfig.model_fields or v != EvalConfig.model_fields[k].default
    }


def iou_tag(cfg: Any) -> list[str]:
    """File-name tag of non-default IoU thresholds (they change what AP means)."""
    if cfg.iou_thresholds is None:
        return []
    return ["iou" + "-".join(f"{t:g}" for t in cfg.iou_thresholds)]


@dataclass(frozen=True)
class CommandLayers:
    """The command's layers over the run's settings, lowest first: those of ``[eval]``
    (``--config``, ``--set``, one per flag) and those of the input size (``data.min_size`` /
    ``data.max_size`` from ``--config`` and ``--set``)."""

    eval: Layers
    sizes: Layers


def command_layers(cmd: EvalCommand, say: Notes) -> CommandLayers:
    """The :class:`CommandLayers` of ``cmd``'s ``--config``, ``--set`` and flags."""
    layers: Layers = []
    sizes: Layers = []
    if cmd.config is not None:
        own, size = file_layers(cmd.config, say)
        layers.append((f"--config {cmd.config}", own))
        sizes += [(f"--config {cmd.config}", size)] if size else []
    if cmd.set_:
        own, size = set_layers(list(cmd.set_))
        layers.append(("--set", own))
        sizes += [("--set", size)] if size else []
    flags = flag_layer(
        split=cmd.split,
        batch_size=cmd.batch_size,
        bootstrap=cmd.bootstrap,
        seed=cmd.seed,
        confidence=cmd.confidence,
        iou=list(cmd.iou) if cmd.iou is not None else None,
        amp=cmd.amp,
        channels_last=cmd.channels_last,
        save_detections=cmd.save_detections,
    )
    return CommandLayers(layers + flag_layers(flags), sizes)


def run_data(
    run_config: dict[str, Any],
    data: Path | None,
    limit_images: int | None,
    on_invalid: str | None,
    trained_on: str | None = None,
    detector: tuple[Any, Path | None] = (None, None),
    input_size: dict[str, Any] | None = None,
    on_corrupt: str | None = None,
) -> tuple[DataConfig, Path]:
    """``(DataConfig, dataset root)``: the run's ``[data]`` (defaults without a run) with the
    command's ``--limit-images``, ``--on-invalid``, ``--on-corrupt`` and resolved ``input_size``
    (:func:`resolve_sizes`); ``--data`` replaces the run's root. A run
    on the embedded benchmark gets the one it trained on (``trained_on`` names its seed and bias),
    not today's default; without either, the one the run's ``data.benchmark`` names, else the
    benchmark ``detector`` (``(DetectorSpec, checkpoint)``) was trained on."""
    from faapkit.config import DataConfig, validate_model
    from faapkit.data.synth import embedded_dataset_for

    stored = {**run_config.get("data", {}), "limit_images": limit_images}
    stored.update({k: v for k, v in (input_size or {}).items() if k in ("min_size", "max_size")})
    if on_invalid is not None:
        stored["on_invalid"] = on_invalid
    if on_corrupt is not None:
        stored["on_corrupt"] = on_corrupt
    dcfg = validate_model(DataConfig, stored, prefix="data")
    if data is None and dcfg.root is not None and not Path(dcfg.root).is_absolute():
        raise ConfigError(
            f"the run stores a relative data.root '{dcfg.root}' (faapkit before 0.2 did): it depends on the folder "
            "faap runs in; pass --data with the dataset's path"
        )
    own = Path(dcfg.root) if dcfg.root else None
    recorded = Path(trained_on) if trained_on else None
    root = (
        (data.absolute() if data else None)
        or own
        or embedded_dataset_for(*detector, recorded=recorded, benchmark=dcfg.benchmark)
    )
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
    Without a run, the defaults (female/male) apply where they fit (:func:`faapkit.fairness.default_applies`)."""
    from faapkit.fairness import default_applies

    chosen: list[str | None] = []
    defaults = (getattr(dcfg, "disadvantaged", None), getattr(dcfg, "advantaged", None))
    for role, given in (("disadvantaged", disadvantaged), ("advantaged", advantaged)):
        source, group = f"--{role}", given
        if group is None and dcfg is not None:
            source, group = f"the run's data.{role}", getattr(dcfg, role)
            if not from_run:  # built-in defaults: only where they fit
                group = group if default_applies(group, list(split.groups), defaults) else None
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


OTHER_DETECTOR = "--accept-other-detector"


def checked_detector(
    detector: tuple[Any, Path | None], named: bool, tgt: Target, dev: Any, reads: tuple[Any, bool] = (None, False)
) -> tuple[Any, dict[str, Any] | None]:
    """The detector to evaluate with (``(DetectorSpec, checkpoint)`` from :func:`run_detector`) and,
    for a generator that reads the detector evaluated with another one, the label the metrics
    record. Unless ``--detector``/``--detector-checkpoint`` name one (``named``), it must be the
    weights the checkpoint's generator was trained against; named, it may differ (a transfer),
    except for a generator that reads the detector's features, which takes ``OTHER_DETECTOR``
    (``reads``: the registered generators and whether that option was given)."""
    from faapkit.detr.frozen import load_detector

    det = load_detector(*detector, device=dev)
    if tgt.checkpoint is None:
        return det, None
    if not named:
        check_trained_against(tgt.checkpoint, det)
        return det, None
    generators, accepted = reads
    label = read_detector_differs(tgt.checkpoint, det, generators) if generators is not None else None
    if label is not None and not accepted:
        trained = label["trained_to_read"]
        raise ConfigError(
            f"{tgt.checkpoint}: its generator '{label['generator']}' reads the detector's features and was trained "
            f"to read detector '{trained['name']}' (weights {str(trained['sha256'])[:12]}), not the "
            f"'{det.name}' ({str(det.sha256)[:12]}) named by --detector/--detector-checkpoint; evaluate with the "
            f"detector it reads, or pass {OTHER_DETECTOR} to measure it there (labelled in the metrics)"
        )
    return det, label


def read_detector_differs(checkpoint: Path, detector: Any, generators: Any) -> dict[str, Any] | None:
    """For a checkpoint whose generator reads the detector (``GeneratorSpec.uses_detector``), the
    detector it was trained to read (its stored fingerprint) and the one ``detector`` is, when they
    differ; ``None`` when they are the same or the generator does not read the detector."""
    from faapkit.io import load_checkpoint

    ckpt = load_checkpoint(checkpoint, mmap=True)
    name = str((ckpt.get("generator_spec") or {}).get("name", "unet"))
    if name not in generators or not generators.get(name).uses_detector:
        return None
    stored = ckpt.get("detector")
    record: dict[str, Any] = stored if isinstance(stored, dict) else {}
    same_weights = bool(record.get("sha256")) and record.get("sha256") == detector.sha256
    if same_weights or (not record.get("sha256") and record.get("name") == detector.name):
        return None
    return {
        "generator": name,
        "trained_to_read": {"name": record.get("name"), "sha256": record.get("sha256")},
        "evaluated_with": {"name": detector.name, "sha256": detector.sha256},
    }


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
