"""``faap report``'s perturbation panel: a few images of each group of the evaluated split,
at the run's own input size, with the ground truth, the detections before and after the
perturbation, and the perturbation itself amplified.

Columns: ground truth (green) on the clean image; the clean image's detections (blue); the
perturbed image's detections (red); ``0.5 + A * (perturbed - clean)`` per channel (mid grey: no
change). Each row names its group and the image's own id. The data, split, attribute, input
size, epsilon and detector are the evaluation's (its metrics JSON), the generator the evaluated
checkpoint's. Torch is imported here only, when a panel is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.errors import FaapError
from faapkit.report.inputs import RunInputs

COLUMNS = ("ground truth", "detections, clean", "detections, perturbed", "delta x{amplify:g}")
GT, CLEAN, PERTURBED = "#1a9850", "#2166ac", "#d7301f"


@dataclass
class PanelRow:
    """One image: its group, its dataset id, the four ``(3, h, w)`` uint8 pictures in
    :data:`COLUMNS` order and how many boxes each of the first three shows."""

    group: str
    image_id: Any
    pictures: list[Any]
    boxes: list[int]


class PanelUnavailable(FaapError):
    """The panel cannot be drawn faithfully for this run (its evaluated checkpoint is gone or is
    not this run's): the report is written without it and says why."""


def checkpoint_of(r: RunInputs) -> Path:
    """The evaluated checkpoint inside this run folder (the run may have been copied or moved
    since: the file of that name under ``RUN/checkpoints``), else the path the result records;
    either is checked to be the one evaluated (:func:`check_checkpoint`)."""
    recorded = Path(str(r.result.get("checkpoint") or ""))
    local = r.run / "checkpoints" / recorded.name
    if recorded.name and local.is_file():
        return check_checkpoint(r, local)
    if recorded.name and recorded.is_file():
        return check_checkpoint(r, recorded)
    raise PanelUnavailable(
        f"the checkpoint {r.result_path.name} evaluated ({recorded}) is not in {r.run / 'checkpoints'}"
    )


def check_checkpoint(r: RunInputs, path: Path) -> Path:
    """``path`` if it is the checkpoint ``r``'s result evaluated: written by this run (its
    ``run_id``, the run's and the result's) at the evaluated ``global_step``; another run's
    generator, or another epoch's, is never drawn under this run's name."""
    from faapkit.io import load_checkpoint
    from faapkit.report.inputs import run_id_of

    ckpt = load_checkpoint(path, mmap=True)
    owner, step = ckpt.get("run_id"), ckpt.get("global_step")
    for who, expected in (("this run", run_id_of(r.run)), (r.result_path.name, r.result.get("run_id"))):
        if isinstance(expected, str) and owner != expected:
            raise PanelUnavailable(f"{path} was written by run {owner}, not by {who} (run {expected})")
    recorded = r.result.get("global_step")
    if isinstance(recorded, int) and step != recorded:
        raise PanelUnavailable(
            f"{path} holds global step {step}, not the step {recorded} that {r.result_path.name} evaluated"
        )
    return path


def pick_images(split: Any, groups: list[str], per_group: int) -> list[tuple[str, Any]]:
    """``per_group`` images of each group, in image-id order (deterministic), images of that
    group alone first (a box-level split also has mixed images): ``(group, ImageRecord)``."""
    chosen: list[tuple[str, Any]] = []
    for g in groups:
        mine = sorted((r for r in split.records if g in r.held), key=lambda r: (len(r.held) > 1, r.image_id))
        chosen += [(g, r) for r in mine[:per_group]]
    return chosen


def panel_rows(r: RunInputs, registries: Any, *, per_group: int, score: float, amplify: float) -> list[PanelRow]:
    """The panel's rows for run ``r``: the evaluated data and checkpoint, on the CPU."""
    import torch

    from faapkit.data.coco import GroupedDetectionDataset
    from faapkit.data.transforms import EvalTransform
    from faapkit.evaluate.evaluator import load_eval_split
    from faapkit.report.figures import groups_of

    res = r.result
    detector, generator = _models(r, registries)
    ds_info, size = res.get("dataset") or {}, res.get("input_size") or {}
    sizes = int(size.get("min_size") or detector.input_size[0]), int(size.get("max_size") or detector.input_size[1])
    level = str(((_run_config(r).get("data") or {}).get("group_level")) or "auto")
    split = load_eval_split(
        Path(str(ds_info.get("root"))),
        str(res["split"]),
        str(res["split_by"]),
        str(ds_info.get("layout") or "auto"),
        None,
        str(ds_info.get("on_corrupt") or "fail"),
        str(ds_info.get("on_invalid") or "fail"),
        level,
    )
    ds = GroupedDetectionDataset(split, EvalTransform(*sizes))
    index = {rec.image_id: i for i, rec in enumerate(split.records)}
    rows = []
    with torch.no_grad():
        for group, rec in pick_images(split, [g for g in groups_of(res) if g in split.groups], per_group):
            image, target, _ = ds[index[rec.image_id]]
            rows.append(_row(detector, generator, image, target, score, amplify, group, rec.source_id))
    return rows


def _run_config(r: RunInputs) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads((r.run / "run.json").read_text()).get("config") or {})
    except (OSError, ValueError):
        return {}


def _models(r: RunInputs, registries: Any) -> tuple[Any, Any]:
    """The run's detector (its config's weights, else the shipped ones) and the evaluated
    checkpoint's generator at the evaluated epsilon, both on the CPU."""
    import torch

    from faapkit.detr.frozen import load_detector
    from faapkit.evaluate.command.settings import run_detector
    from faapkit.evaluate.evaluator import detector_for_generator, load_generator

    ckpt = checkpoint_of(r)
    name, weights = run_detector(_run_config(r), str((r.result.get("detector") or {}).get("name") or "") or None, None)
    if name not in registries.detectors:
        raise FaapError(f"detector '{name}' of {r.result_path} is not installed; pass --no-panel")
    detector = load_detector(registries.detectors.get(name), weights)
    aware = detector_for_generator(ckpt, registries, weights)
    eps = r.result.get("epsilon")
    generator, _ = load_generator(ckpt, float(eps) if eps else None, torch.device("cpu"), registries.generators, aware)
    return detector.eval(), generator.eval()


def _row(
    detector: Any,
    generator: Any,
    image: Any,
    target: dict[str, Any],
    score: float,
    amplify: float,
    group: str,
    image_id: Any,
) -> PanelRow:
    """Detect on the clean and the perturbed ``image (3, H, W)``; draw the four pictures."""
    import torch
    from torchvision.ops import box_convert

    from faapkit.data.transforms import denormalize
    from faapkit.generators.perturb import apply_perturbation

    h, w = image.shape[-2:]
    x, mask = image[None], torch.zeros(1, h, w, dtype=torch.bool)
    perturbed = apply_perturbation(generator, x, mask)[0]
    size = torch.tensor([[h, w]])
    found = []
    for inp in (x, perturbed):
        out = detector.postprocess(detector(inp, mask), size)[0]
        found.append(out["boxes"][out["scores"] >= score])
    gt = box_convert(target["boxes"], "cxcywh", "xyxy") * torch.tensor([w, h, w, h])
    clean01, pert01 = denormalize(x)[0].clamp(0, 1), denormalize(perturbed)[0].clamp(0, 1)
    delta01 = (0.5 + amplify * (pert01 - clean01)).clamp(0, 1)
    pictures = [
        _boxes(clean01, gt, GT),
        _boxes(clean01, found[0], CLEAN),
        _boxes(pert01, found[1], PERTURBED),
        _boxes(delta01, None, ""),
    ]
    return PanelRow(group, image_id, pictures, [len(gt), len(found[0]), len(found[1])])


def _boxes(image01: Any, boxes: Any, colour: str) -> Any:
    """``image01 (3, H, W)`` in [0, 1] enlarged to at least 256 px high (nearest, so the pixels
    the detector saw stay visible) with ``boxes (N, 4)`` xyxy drawn in ``colour``: uint8."""
    import torch
    from torch.nn.functional import interpolate
    from torchvision.utils import draw_bounding_boxes

    k = max(1, -(-256 // image01.shape[-2]))
    big = interpolate(image01[None], scale_factor=k, mode="nearest")[0] if k > 1 else image01
    pic = (big * 255).round().to(torch.uint8)
    if boxes is None or not len(boxes):
        return pic
    return draw_bounding_boxes(pic, boxes.float() * k, colors=colour, width=2)


def plot_panel(stem: Path, rows: list[PanelRow], title: str, caption_score: float, amplify: float) -> list[Path]:
    """The rows as a grid with column titles and row labels; ``stem``.png and .pdf."""
    from faapkit.compare.plot import pyplot
    from faapkit.report.figures import save

    plt = pyplot()
    heads = [c.format(amplify=amplify) for c in COLUMNS]
    fig, axes = plt.subplots(len(rows), len(heads), figsize=(2.3 * len(heads), 2.0 * len(rows) + 0.9), squeeze=False)
    for i, row in enumerate(rows):
        for j, pic in enumerate(row.pictures):
            ax = axes[i][j]
            ax.imshow(pic.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(heads[j], fontsize=9)
            if j < 3:
                what = "box" if row.boxes[j] == 1 else "boxes"
                what += "" if j == 0 else f", score >= {caption_score:g}"
                ax.set_xlabel(f"{row.boxes[j]} {what}", fontsize=7)
        axes[i][0].set_ylabel(f"{row.group}\nimage {row.image_id}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, stem)
