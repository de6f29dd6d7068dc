"""``faap inspect dataset``: images, boxes and sizes per split and group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from faapkit.data.coco import detect_layout, load_split
from faapkit.errors import DataError

SPLITS = ("train", "val", "test")
LEVEL_NAMES = {"image": "per image", "box": "per person"}


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    return f"{values[0]:.0f}/{values[len(values) // 2]:.0f}/{values[-1]:.0f}"


def dataset_summary(root: Path, split_by: str = "gender") -> dict[str, Any]:
    """Per split and group: images, boxes, boxes per image, image sizes (min/median/max). With
    box-level groups a group's images are those holding one of its boxes, its boxes its own."""
    layout = detect_layout(root)
    if layout == "attributes" and (root / "coco").is_dir() and not (root / "annotations").is_dir():
        root = root / "coco"
    summary: dict[str, Any] = {"root": str(root), "layout": layout, "split_by": split_by, "splits": {}}
    found = False
    for split in SPLITS:
        try:
            data = load_split(root, split, split_by=split_by, verify_images=False)
        except DataError as exc:
            if "not found" in str(exc):
                continue
            raise
        found = True
        groups: dict[str, Any] = {}
        for g in data.groups:
            recs = [r for r in data.records if g in r.held]  # box level: the images holding a g box
            anns = [a for r in recs for a in r.annotations if data.group_level != "box" or a.get("group") == g]
            boxes = len(anns)
            groups[g] = {
                "images": len(recs),
                "boxes": boxes,
                "boxes_per_image": round(boxes / len(recs), 3) if recs else 0.0,
                "width_min_med_max": _stats([r.width for r in recs]),
                "height_min_med_max": _stats([r.height for r in recs]),
                "box_area_min_med_max": _stats([a.get("area", 0.0) for a in anns]),
            }
        summary["splits"][split] = {"fingerprint": data.fingerprint, "group_level": data.group_level, "groups": groups}
    if not found:
        raise DataError(f"no split ({', '.join(SPLITS)}) found under {root}")
    return summary


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary['root']} ({summary['layout']} layout, groups by {summary['split_by']})")
    for col in ("split", "level", "group", "images", "boxes", "boxes/img", "width", "height", "box area"):
        table.add_column(col, justify="left" if col in ("split", "level", "group") else "right")
    for split, info in summary["splits"].items():
        for g, s in info["groups"].items():
            table.add_row(
                split,
                LEVEL_NAMES[info["group_level"]],
                g,
                str(s["images"]),
                str(s["boxes"]),
                f"{s['boxes_per_image']:.2f}",
                s["width_min_med_max"],
                s["height_min_med_max"],
                s["box_area_min_med_max"],
            )
    caption = "sizes: min/median/max"
    if any(info["group_level"] == "box" for info in summary["splits"].values()):
        caption += "; per person: a group's images hold one of its boxes (mixed images count in each group)"
    table.caption = caption
    return table
