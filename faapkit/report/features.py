"""``faap inspect features RUN``: the run's chosen generator (as ``faap eval RUN`` chooses it), its
detector and a split; the research's feature fields (:mod:`faapkit.evaluate.features`) written as
its ``tsne_compare_epochNN.json`` is (``{"checkpoint1": {"path", "epoch", fields...}}``, plus what
faapkit records besides) and the t-SNE picture beside it (:mod:`faapkit.evaluate.feature_plot`).

Outputs go through the shared guard before anything is loaded; the default is
``RUN/features/tsne_compare_<split>_epochNN.json`` and ``.png``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.errors import ConfigError

SCHEMA = "faapkit.features/1"


@dataclass(frozen=True)
class FeaturesCommand:
    """The options of one ``faap inspect features``."""

    path: Path
    split: str = "test"
    epoch: int | None = None
    data: Path | None = None
    limit_images: int | None = None
    out: Path | None = None
    device: str = "auto"
    force: bool = False


def default_out(target: Any, split: str) -> Path:
    """``RUN/features/tsne_compare_<split>_epochNN.json`` (beside a loose checkpoint: its folder)."""
    folder = (target.run_dir or target.checkpoint.parent) / "features"
    epoch = _epoch(target.checkpoint)
    return folder / f"tsne_compare_{split}_epoch{epoch if epoch is not None else 'NA'}.json"


def _epoch(checkpoint: Path) -> int | None:
    from faapkit.io import load_checkpoint

    value = load_checkpoint(checkpoint, mmap=True).get("epoch")
    return int(value) if isinstance(value, int) else None


def _not_a_features_file(path: Path) -> str | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        record = None
    return None if isinstance(record, dict) and record.get("schema") == SCHEMA else "is no faap inspect features file"


def check_outputs(cmd: FeaturesCommand, target: Any) -> tuple[Path, Path]:
    """The JSON and the PNG beside it, both refused before any work if they may not be written."""
    from faapkit.artifacts.outputs import check_output, ensure_folder

    if cmd.limit_images is not None and cmd.limit_images < 2:
        raise ConfigError(f"--limit-images must be at least 2, got {cmd.limit_images}")
    out = cmd.out or default_out(target, cmd.split)
    if cmd.out is None:
        ensure_folder(out, "--out")
    check_output(
        out, "--out", force=cmd.force, replaceable=_not_a_features_file, suffixes=(".json",), what="the report"
    )
    plot = out.with_suffix(".png")
    check_output(plot, "--out", force=cmd.force)
    return out, plot


def inspect_features(cmd: FeaturesCommand, registries: Any, say: Any) -> dict[str, Any]:
    """Load, measure, draw, write (under the output's lock); the report."""
    from faapkit.artifacts.output_lock import OutputLock
    from faapkit.deploy.loading import chosen_checkpoint, load_parts
    from faapkit.evaluate.feature_plot import embed_2d, plot_embedding, require_sklearn
    from faapkit.evaluate.features import displacement_metrics
    from faapkit.io import atomic_write_text

    require_sklearn()
    out, plot = check_outputs(cmd, chosen_checkpoint(cmd.path, cmd.epoch))
    with OutputLock(out, note=say.warn) as lock:
        parts = load_parts(cmd.path, cmd.epoch, registries, need_detector=True)
        groups, pair, root = _measure(cmd, parts, say)
        metrics = displacement_metrics(groups, pair)
        report = {
            "schema": SCHEMA,
            "checkpoint1": {"path": str(parts.target.checkpoint), "epoch": _epoch(parts.target.checkpoint), **metrics},
            "split": cmd.split,
            "groups": {"disadvantaged": pair[0], "advantaged": pair[1]},
            "features": "last decoder layer, the query Hungarian-matched to each ground-truth person (per pass)",
            "detector": {"name": parts.detector.name, "sha256": parts.detector.sha256},
            "dataset": str(root),
            "plot": plot.name,
        }
        lock.check_unchanged(cmd.force, "--out")
        plot_embedding(embed_2d(groups, pair), metrics, pair, f"{parts.target.checkpoint.name} on {cmd.split}", plot)
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    say.info(f"written: {out} and {plot}")
    return report


def _measure(cmd: FeaturesCommand, parts: Any, say: Any) -> tuple[dict[str, Any], tuple[str, str], Path]:
    """The people's features of the split, clean and perturbed; the run's group pair; the dataset root."""
    import torch

    from faapkit.data.coco import load_split
    from faapkit.data.synth import embedded_dataset_for
    from faapkit.distributed import setup_process
    from faapkit.evaluate.features import person_features

    _, dev = setup_process(cmd.device, key="--device")
    recorded = Path(parts.target.trained_on) if parts.target.trained_on else None
    own = _config(parts, "root", "")  # the run's own dataset, else the embedded benchmark it used
    root = (
        cmd.data
        or (Path(own) if own else None)
        or embedded_dataset_for(
            parts.detector_spec,
            parts.detector_checkpoint,
            recorded=recorded,
            benchmark=_config(parts, "benchmark", "") or None,
        )
    )
    data = load_split(root, cmd.split, limit=cmd.limit_images, split_by=_config(parts, "split_by", "gender"))
    pair = (_config(parts, "disadvantaged", "female"), _config(parts, "advantaged", "male"))
    for g in pair:
        if g not in data.groups:
            raise ConfigError(f"the run's group '{g}' is not a group of split '{cmd.split}' ({', '.join(data.groups)})")
    say.info(f"decoder features of the matched people of {len(data.records)} {cmd.split} images, clean and perturbed")
    detector, generator = parts.detector.to(dev), parts.generator.to(dev)
    with torch.no_grad():
        groups = person_features(detector, generator, data, dev, sizes=detector.input_size)
    return groups, pair, root


def _config(parts: Any, key: str, default: str) -> str:
    return str((parts.target.config.get("data") or {}).get(key) or default)
