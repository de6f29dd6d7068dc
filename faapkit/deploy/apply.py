"""``faap apply RUN SRC --out DST``: a run's perturbation applied to a folder of images or to a
COCO split, one file per input under the same relative name, and a manifest.

Size policy: each image is resized as ``faap eval`` resizes it (short side ``min_size``, long
side capped at ``max_size``, PIL bilinear on the 8-bit image), perturbed at that size and written
at that size. The perturbation lives at the detector's input scale: its effect is in patterns a
few pixels wide that a resize would blur (docs/deploy.md). A COCO split's annotations are written
beside the images, rescaled to the written sizes, so ``faap eval --data DST`` scores them.

The manifest (``DST/faap-apply.json``) records the run, the checkpoint's sha256, epsilon, the size
policy, the format and, per written file, its source, the source's sha256 and the written
file's; a rerun skips files whose entry matches (resumable) and rewrites the manifest after
every file. Every image to be written is decoded before the first is written, so an unreadable
one (or a multi-page TIFF) is refused before any work. The manifest lists only files written
from current sources: an output the earlier manifest listed that this apply does not write (a
source removed, another ``--format`` under ``--force``) is removed, if it is still the file that
apply wrote. Nothing is ever written inside SRC.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.data.codecs import Codec, parse_codec
from faapkit.errors import ConfigError, DataError, FaapError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
MANIFEST = "faap-apply.json"
MANIFEST_FORMAT = "faapkit-apply/1"


@dataclass(frozen=True)
class ApplyRequest:
    """One ``faap apply``: the run (``--epoch``), SRC (an image folder or a COCO dataset root with
    ``--split``), DST, the output format (``png``, or ``jpeg``/``webp`` with ``quality``),
    ``--force`` and what to do with an unreadable image (``fail`` or ``skip``)."""

    run: Path
    src: Path
    out: Path
    epoch: int | None = None
    split: str | None = None
    fmt: str = "png"
    quality: int | None = None
    force: bool = False
    on_corrupt: str = "fail"


@dataclass(frozen=True)
class Item:
    """One input image: its path, the name written under DST and (COCO) its image record."""

    source: Path
    name: str
    record: dict[str, Any] | None = None


def codec_of(fmt: str, quality: int | None) -> Codec:
    """The output codec; a quality is needed for jpeg/webp and refused for png."""
    if fmt not in SUFFIX:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(SUFFIX)}")
    if fmt == "png":
        if quality is not None:
            raise ConfigError("--quality applies to --format jpeg or webp; png is lossless")
        return Codec("png")
    return parse_codec(f"{fmt}:{95 if quality is None else quality}", "--format/--quality")


def check_paths(src: Path, out: Path, force: bool) -> None:
    """SRC must exist; DST may be neither SRC nor inside it, nor a folder holding files other than
    an earlier apply's unless ``force``."""
    if not src.is_dir():
        raise FaapError(f"{src} is not a folder of images or a COCO dataset root")
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents:
        where = "SRC" if out_r == src_r else "inside SRC"
        raise FaapError(f"--out {out} is {where} ({src}): faap apply never writes there")
    if out.exists() and not out.is_dir():
        raise FaapError(f"--out {out} is a file; name a folder")
    if out.is_dir() and not force and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise FaapError(f"--out {out} holds other files; name an empty folder or pass --force")


def list_items(src: Path, split: str | None, codec: Codec) -> tuple[list[Item], dict[str, Any] | None]:
    """The images to perturb: a COCO split's (``--split``; its annotation JSON returned too), else
    every image file under ``src`` (recursive, sorted), each with its name under DST."""
    ann = src / "annotations" / f"instances_{split}.json" if split else None
    if ann is not None:
        if not ann.is_file():
            raise DataError(f"{src} has no COCO split '{split}' ({ann} is missing)")
        from faapkit.data.coco import read_annotation_file

        coco = read_annotation_file(ann)
        folder = src / "images" / str(split)
        items = [
            Item(folder / im["file_name"], _renamed(f"images/{split}/{im['file_name']}", codec), im)
            for im in coco["images"]
        ]
        return items, coco
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{src} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return [Item(p, _renamed(p.relative_to(src).as_posix(), codec)) for p in files], None


def _renamed(name: str, codec: Codec) -> str:
    return str(Path(name).with_suffix(SUFFIX[codec.name]).as_posix())


def read_image(path: Path, exif: bool = True) -> Any:
    """``path`` as an 8-bit RGB PIL image, with its EXIF orientation applied (``exif``; a COCO
    split's boxes refer to the stored pixels, as faapkit's dataset reader reads them); an
    unreadable file is a :class:`DataError` naming it."""
    from PIL import Image, ImageOps

    from faapkit.data.validate import to_rgb

    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            # PIL would give the first page alone; a camera's MPO JPEG holds the photo first (then a preview)
            if frames > 1 and image.format != "MPO":
                raise DataError(
                    f"cannot read image {path}: it holds {frames} pages or frames, and faap apply writes one image "
                    "per file; split it into one file per page"
                )
            image.load()
            return to_rgb(ImageOps.exif_transpose(image) if exif else image)
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types for damaged files
        raise DataError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None


def perturb_image(module: Any, image: Any, min_size: int, max_size: int) -> Any:
    """The size policy: ``image`` resized as ``faap eval`` resizes it, perturbed, as 8-bit RGB."""
    import numpy as np
    import torch
    import torchvision.transforms.functional as TF
    from PIL import Image

    from faapkit.data.transforms import resize

    resized, _ = resize(image, {}, min_size, max_size)
    with torch.no_grad():
        out = module(TF.to_tensor(resized)[None])[0]
    pixels = (out * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(pixels))


def apply_run(req: ApplyRequest, progress: Callable[[int, int], None] | None = None, say: Any = None) -> dict[str, Any]:
    """Check everything (every image to be written is decoded first), then perturb and write each
    image not already written; remove the earlier outputs no current source writes; the manifest."""
    from faapkit.deploy.loading import load_perturbation

    codec = codec_of(req.fmt, req.quality)
    if req.on_corrupt not in ("fail", "skip"):
        raise ConfigError(f"--on-corrupt {req.on_corrupt!r} is not one of fail, skip")
    check_paths(req.src, req.out, req.force)
    items, coco = list_items(req.src, req.split, codec)
    check_targets(items, req.src, req.out)
    module = load_perturbation(req.run, epoch=req.epoch)
    before = listed_files(req.out)
    manifest = start_manifest(req, module.info, codec, {item.name for item in items})
    todo = [item for item in items if not already_written(item, req, manifest)]
    left_out = check_sources(todo, req, manifest)
    to_write = {item.name for item in todo} - left_out
    written = 0
    for done, item in enumerate(items, 1):
        if item.name in to_write:
            written += write_one(module, item, req, codec, manifest)
        if progress is not None:
            progress(done, len(items))
    if coco is not None:
        write_annotations(req, coco, manifest)
    removed = remove_replaced(req.out, before, manifest["files"])
    manifest["complete"] = True
    save_manifest(req.out, manifest)
    return {**manifest, "written": written, "removed": removed}


def listed_files(out: Path) -> dict[str, Any]:
    """The files an earlier apply's manifest in ``out`` lists (``{}`` if none is readable)."""
    try:
        earlier = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = earlier.get("files") if isinstance(earlier, dict) else None
    return {str(k): v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def remove_replaced(out: Path, before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Remove the outputs an earlier apply wrote that this one does not list (another
    ``--format``, a source removed or now unreadable): only files inside ``out`` that are still
    what the earlier manifest recorded (sha256), so nothing else is touched. Their names."""
    from faapkit.artifacts.integrity import file_sha256

    out_r, removed = out.resolve(), []
    for name, entry in sorted(before.items()):
        target = (out_r / name).resolve()
        if name in now or out_r not in target.parents or not target.is_file():
            continue
        if file_sha256(target) == entry.get("sha256"):
            target.unlink()
            removed.append(name)
    return removed


def already_written(item: Item, req: ApplyRequest, manifest: dict[str, Any]) -> bool:
    """Whether ``item``'s manifest entry matches its source and its written file (a resumed apply
    skips it); never under ``--force``."""
    from faapkit.artifacts.integrity import file_sha256

    entry, target = manifest["files"].get(item.name), req.out / item.name
    if req.force or not entry or not item.source.is_file() or not target.is_file():
        return False
    return entry.get("source_sha256") == file_sha256(item.source) and file_sha256(target) == entry.get("sha256")


def check_sources(items: list[Item], req: ApplyRequest, manifest: dict[str, Any]) -> set[str]:
    """Decode every image about to be written before anything is: the first that cannot be read
    or resized is refused (``--on-corrupt fail``), or all such are listed in the manifest and
    left out (``skip``). The names left out."""
    policy, left_out = manifest["size_policy"], set()
    for item in items:
        try:
            image = read_image(item.source, exif=item.record is None)
            check_resizable(item.source, image.height, image.width, policy["min_size"], policy["max_size"])
        except DataError as exc:
            if req.on_corrupt == "fail":
                hint = "pass --on-corrupt skip to leave it out (listed in the manifest); nothing was written"
                raise DataError(f"{exc.one_line()}; {hint}") from None
            manifest["corrupt"].append(str(item.source))
            manifest["files"].pop(item.name, None)
            left_out.add(item.name)
    return left_out


def check_targets(items: list[Item], src: Path, out: Path) -> None:
    """Every output must land inside DST, outside SRC (DST may hold SRC), and under a name of its
    own (``a.jpg`` and ``a.png`` would both be written as ``a.png``)."""
    src_r, out_r = src.resolve(), out.resolve()
    seen: dict[Path, Item] = {}
    for item in items:
        target = (out_r / item.name).resolve()
        if out_r not in target.parents:
            raise DataError(f"{item.source}: its output {item.name} would be written outside --out {out}")
        if target == src_r or src_r in target.parents:
            raise FaapError(f"--out {out}: {item.name} would be written inside SRC ({src}); name a folder outside it")
        if target in seen:
            first = (
                seen[target].source.relative_to(src).as_posix() if seen[target].record is None else seen[target].name
            )
            again = item.source.relative_to(src).as_posix() if item.record is None else item.name
            raise DataError(f"{src}: {first} and {again} would both be written as {item.name}; rename one")
        seen[target] = item


def start_manifest(req: ApplyRequest, info: Any, codec: Codec, names: set[str]) -> dict[str, Any]:
    """A fresh manifest, or the earlier one of the same checkpoint and settings (resume), keeping
    only the entries of current sources (``names``); an earlier apply of something else is
    replaced only with ``--force``."""
    fresh: dict[str, Any] = {
        "schema": MANIFEST_FORMAT,
        "run_id": info.run_id,
        "checkpoint": info.checkpoint,
        "checkpoint_sha256": info.checkpoint_sha256,
        "epsilon": info.epsilon,
        "generator": info.generator,
        "detector": info.detector,
        "size_policy": {
            "rule": "resized as faap eval resizes (short side min_size, long side capped at max_size), "
            "perturbed and written at that size",
            "min_size": info.min_size,
            "max_size": info.max_size,
        },
        "format": str(codec),
        "source": str(req.src.absolute()),
        "split": req.split,
        "faapkit": info.faapkit,
        "files": {},
        "corrupt": [],
        "complete": False,
    }
    path = req.out / MANIFEST
    if not path.is_file():
        return fresh
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if not req.force:
            raise FaapError(f"{path} is not readable JSON ({exc}); pass --force to start the apply again") from None
        earlier = {}
    earlier = earlier if isinstance(earlier, dict) else {}
    same = all(earlier.get(k) == fresh[k] for k in ("checkpoint_sha256", "epsilon", "size_policy", "format", "split"))
    if same:
        files = earlier.get("files")
        kept = {k: v for k, v in files.items() if k in names} if isinstance(files, dict) else {}
        return {**fresh, "files": kept, "corrupt": []}
    if not req.force:
        raise FaapError(
            f"--out {req.out} holds an apply of another checkpoint or settings ({path}); pass --force to replace it"
        )
    return fresh


def write_one(module: Any, item: Item, req: ApplyRequest, codec: Codec, manifest: dict[str, Any]) -> int:
    """Perturb and write one image (checked readable by :func:`check_sources`); 1."""
    from faapkit.artifacts.integrity import file_sha256
    from faapkit.data.codecs import encode
    from faapkit.io import atomic_write_bytes

    target, policy = req.out / item.name, manifest["size_policy"]
    source_sha = file_sha256(item.source)
    image = read_image(item.source, exif=item.record is None)
    out = perturb_image(module, image, policy["min_size"], policy["max_size"])
    atomic_write_bytes(target, encode(out, codec))
    manifest["files"][item.name] = {
        "source": str(item.source),
        "source_sha256": source_sha,
        "sha256": file_sha256(target),
        "source_size": [image.height, image.width],
        "size": [out.height, out.width],
    }
    save_manifest(req.out, manifest)
    return 1


def check_resizable(path: Path, height: int, width: int, min_size: int, max_size: int) -> None:
    """Refuse an image whose shape the size policy would resize to nothing (a sliver: its short
    side falls under one pixel once the long side is capped at ``max_size``)."""
    from faapkit.data.transforms import resized_hw

    h, w = resized_hw(height, width, min_size, max_size)
    if h < 1 or w < 1:
        raise DataError(
            f"cannot resize image {path} ({width}x{height}) as the detector sees images (short side {min_size}, "
            f"long side at most {max_size}): it would be {w}x{h}; crop it"
        )


def write_annotations(req: ApplyRequest, coco: dict[str, Any], manifest: dict[str, Any]) -> None:
    """The split's annotations for the written images: file names, sizes, boxes and areas
    rescaled to the written size; images left out (unreadable) are dropped with their boxes."""
    from faapkit.io import atomic_write_text

    codec = parse_codec(manifest["format"])
    written, scale = [], {}
    for im in coco["images"]:
        entry = manifest["files"].get(_renamed(f"images/{req.split}/{im['file_name']}", codec))
        if entry is None:
            continue
        (h0, w0), (h, w) = entry["source_size"], entry["size"]
        scale[im["id"]] = (w / w0, h / h0)
        written.append({**im, "file_name": _renamed(im["file_name"], codec), "width": w, "height": h})
    anns = []
    for ann in coco.get("annotations", []):
        if ann["image_id"] not in scale:
            continue
        sx, sy = scale[ann["image_id"]]
        x, y, bw, bh = ann["bbox"]
        anns.append({**ann, "bbox": [x * sx, y * sy, bw * sx, bh * sy], "area": ann.get("area", bw * bh) * sx * sy})
    out = {**coco, "images": written, "annotations": anns}
    atomic_write_text(req.out / "annotations" / f"instances_{req.split}.json", json.dumps(out))


def save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    from faapkit.io import atomic_write_text

    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


# What an 8-bit lossy codec did to the effect where it was measured (docs/deploy.md, "Image codecs",
# gives the runs): the share of the gap closed, floats vs after the codec.
MEASURED_LOSSY = {
    ("jpeg", 95): "JPEG quality 95 reversed level-up's effect: every one of five seeds widened the gap "
    "(share closed -35% median, 25% as floats)",
    ("jpeg", 75): "JPEG quality 75 removed level-up's effect: no seed of five closed the gap, two widened it",
}


def lossy_warning(codec: Codec) -> str:
    """The warning of a lossy ``--format``: what is known of its effect at that quality."""
    known = MEASURED_LOSSY.get((codec.name, codec.quality or 0))
    measured = known or "not measured at this quality; measure it with faap eval RUN --codec " + str(codec)
    return f"--format {codec}: a lossy codec can undo the perturbation ({measured}); png keeps it"
