"""What ``faap inspect perturbation`` draws: its options checked before any loading, and the
checkpoint's generator with a few test images at the size that generator saw them (the grid
itself is ``faapkit.generators.visualize``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def check_perturbation_options(images: int, epsilon: float | None, amplify: float, out: Path, force: bool) -> None:
    """Refuse what cannot make a figure, before the checkpoint and the images are loaded: no
    rows, an epsilon outside (0, 1] (the generators' bound in normalised units), an image format
    Pillow cannot write, and an ``--out`` that :func:`~faapkit.artifacts.outputs.check_output`
    refuses (a run's file, a missing or read-only folder, an existing file without --force)."""
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


def trained_detector(ckpt: Path, registries: Any) -> Any:
    """The registered ``DetectorSpec`` the checkpoint's generator was trained against (its record
    names it), else the registered default detector's."""
    from faapkit.config import DetectorConfig
    from faapkit.io import load_checkpoint

    name = (load_checkpoint(ckpt, mmap=True).get("detector") or {}).get("name")
    if name not in registries.detectors:
        name = DetectorConfig.model_fields["name"].default
    return registries.detectors.get(str(name))


def images_root(ckpt: Path, detector: Any, detector_checkpoint: Path | None) -> Path:
    """The dataset drawn from without ``--data``, as ``faap eval`` chooses it: the embedded
    benchmark the checkpoint's run recorded (a checkpoint in a run's ``checkpoints/``), else
    ``detector``'s (:func:`trained_detector`; a v3 run's train split is v3's, not the default v4's)."""
    from faapkit.artifacts.rundir import run_holding
    from faapkit.data.synth import embedded_dataset_for

    run = run_holding(ckpt.absolute())
    recorded = (run.read_manifest().get("dataset") or {}).get("root") if run is not None else None
    return embedded_dataset_for(detector, detector_checkpoint, recorded=Path(recorded) if recorded else None)


def generator_and_images(
    ckpt: Path,
    registries: Any,
    *,
    images: int,
    epsilon: float | None,
    data: Path | None,
    split: str,
    detector_checkpoint: Path | None,
) -> tuple[Any, dict[str, Any], list[Any]]:
    """The checkpoint's generator on the CPU (with the detector it reads, if any), its metadata,
    and up to ``images`` normalised ``(3, H, W)`` images of ``split`` (``data`` or the embedded
    benchmark)."""
    import torch

    from faapkit.data.coco import GroupedDetectionDataset, load_split
    from faapkit.data.transforms import EvalTransform
    from faapkit.evaluate.evaluator import detector_for_generator, load_generator

    detector = detector_for_generator(ckpt, registries, detector_checkpoint)
    generator, meta = load_generator(ckpt, epsilon, torch.device("cpu"), registries.generators, detector=detector)
    trained_against = trained_detector(ckpt, registries)
    root = data or images_root(ckpt, trained_against, detector_checkpoint)
    split_data = load_split(root, split, limit=max(2, images))
    # the images are shown at the size the generator saw them
    ds = GroupedDetectionDataset(split_data, EvalTransform(trained_against.min_size, trained_against.max_size))
    return generator, meta, [ds[i][0] for i in range(min(images, len(ds)))]
