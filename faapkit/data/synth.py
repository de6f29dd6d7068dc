"""The embedded synthetic benchmark: "persons" on textured backgrounds with a known bias.

Every image carries ``attributes = {"gender": "female"|"male", "age": "young"|"adult"|"senior"}``.
Figures of the ``female`` group are drawn with lower contrast and opacity against their background,
and the detector's ``train`` split holds three male images per female image (as the research data
did), so a detector trained on it is measurably worse on ``female`` images; a bounded perturbation
that raises local contrast can compensate. The bias comes in strengths (``BIASES``), each with a
shipped detector trained on it (``faapkit.config.defaults.TINY_DETECTORS``): ``v1`` a weaker
bias, ``v2`` a stronger one and ``v3`` v2's images with a larger val split. ``v4``, the default
(``DEFAULT_BIAS``), is ``v3`` with its ``train`` split rendered from the next seed
(``FRESH_TRAIN``): val and test are v3's byte for byte, the generator's train images are images
v3's detector never saw, as a user's fairness data is to a deployed detector
(docs/effect-diagnosis.md section 17). Each has its own cache folder (``synth-<bias>-seed<seed>``). ``age`` only
tints the figures (a third attribute value to exercise more than two groups). Output is
deterministic for a seed and bias: the same bytes every time.

Two layouts are written side by side:
- ``OUT/coco/annotations/instances_{split}.json`` + ``OUT/coco/images/{split}/*.jpg`` (attributes);
- ``OUT/research/{women,men}_split/{split}/*.jpg`` + ``gender_{women,men}_{split}.json`` (research).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faapkit.errors import DataError

SPLITS: dict[str, tuple[int, int]] = {"train": (900, 300), "val": (120, 120), "test": (250, 250)}  # (male, female)
# a bias whose split sizes differ from SPLITS; v3's val is drawn like its test, so a gap selected on
# val is measured as precisely as the gap reported on test
BIAS_SPLITS: dict[str, dict[str, tuple[int, int]]] = {"v3": {**SPLITS, "val": (250, 250)}}
SIZES = [(96, 128), (128, 128), (128, 160), (112, 144), (160, 128)]  # (h, w) pool; few shapes = few eval buckets
AGES = ("young", "adult", "senior")
# ``age`` tints a figure's colour
TINTS = {"young": np.array([0.0, 0.08, 0.0]), "adult": np.zeros(3), "senior": np.array([0.05, 0.05, 0.05])}
# per bias: each group's figure contrast and opacity (lower opacity lets the background texture through)
BIASES: dict[str, dict[str, dict[str, float]]] = {
    "v1": {"contrast": {"male": 1.0, "female": 0.30}, "opacity": {"male": 0.9, "female": 0.6}},
    "v2": {"contrast": {"male": 1.0, "female": 0.20}, "opacity": {"male": 0.9, "female": 0.5}},
    "v3": {"contrast": {"male": 1.0, "female": 0.20}, "opacity": {"male": 0.9, "female": 0.5}},
}
# v4 is v3's figures and split sizes with its train split rendered from seed + 1 unless a train seed
# is given (FRESH_TRAIN): v3's detector was trained on seed 0's train split, and a generator trained
# there meets an answer the detector gives only to its own training images
BIASES["v4"] = BIASES["v3"]
BIAS_SPLITS["v4"] = BIAS_SPLITS["v3"]
FRESH_TRAIN = frozenset({"v4"})
DEFAULT_BIAS = "v4"
CATEGORY = {"id": 1, "name": "person", "supercategory": "person"}


def splits_for(bias: str) -> tuple[tuple[str, int, int], ...]:
    """``(split, n_male, n_female)`` of each split of ``bias``'s benchmark."""
    return tuple((k, m, f) for k, (m, f) in BIAS_SPLITS.get(bias, SPLITS).items())


@dataclass(frozen=True)
class SynthSpec:
    """``train_seed``: the seed of the ``train`` split's images when it is not ``seed`` (a
    ``FRESH_TRAIN`` bias's is ``seed + 1`` unless given). The shipped detectors were trained on
    ``seed`` 0's train split; a generator trained on another seed's sees images the detector never
    saw, as a user's fairness data is to a deployed detector (docs/effect-diagnosis.md section 17),
    while val and test stay ``seed``'s."""

    seed: int = 0
    splits: tuple[tuple[str, int, int], ...] | None = None  # None: the bias's own (splits_for)
    jpeg_quality: int = 92
    bias: str = DEFAULT_BIAS
    train_seed: int | None = None

    def seed_of(self, split: str) -> int:
        """The seed that renders ``split``'s images."""
        return self.train_seed if split == "train" and self.train_seed is not None else self.seed

    def __post_init__(self) -> None:
        if self.bias not in BIASES:
            raise DataError(f"unknown benchmark bias '{self.bias}' (known: {', '.join(BIASES)})")
        if self.splits is None:
            object.__setattr__(self, "splits", splits_for(self.bias))
        if self.train_seed is None and self.bias in FRESH_TRAIN:
            object.__setattr__(self, "train_seed", self.seed + 1)

    @property
    def split_sizes(self) -> tuple[tuple[str, int, int], ...]:
        assert self.splits is not None
        return self.splits


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(0.25, 0.75, size=3)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = (gy / h - 0.5) * rng.uniform(-0.25, 0.25) + (gx / w - 0.5) * rng.uniform(-0.25, 0.25)
    noise = rng.normal(0, 0.05, size=(h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    img = base[None, None, :] + grad[..., None] + noise + rng.normal(0, 0.02, size=(h, w, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def _draw_person(
    img: np.ndarray,
    rng: np.random.Generator,
    box: tuple[int, int, int, int],
    contrast: float,
    opacity: float,
    tint: np.ndarray,
) -> None:
    """A head (ellipse) over a body (rounded trapezoid) filling ``box = (x, y, w, h)``."""
    x, y, bw, bh = box
    region = img[y : y + bh, x : x + bw]
    local = region.reshape(-1, 3).mean(0)
    direction = np.where(local > 0.5, -1.0, 1.0) * rng.uniform(0.35, 0.5)
    color = np.clip(local + contrast * (direction + tint), 0, 1)
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    head_r = 0.22 * bw
    head_cy, cx = 0.18 * bh, bw / 2
    head = ((xx - cx) / head_r) ** 2 + ((yy - head_cy) / (0.17 * bh)) ** 2 <= 1
    body_top = 0.33 * bh
    half = (0.28 + 0.2 * (yy - body_top) / max(1.0, bh - body_top)) * bw
    body = (yy >= body_top) & (np.abs(xx - cx) <= half)
    shape = head | body
    region[shape] = color * opacity + region[shape] * (1 - opacity)


def _boxes(rng: np.random.Generator, h: int, w: int, count: int | None = None) -> list[tuple[int, int, int, int]]:
    """Up to ``count`` (default: 1..3, drawn) boxes ``(x, y, w, h)`` that barely overlap; a box that
    finds no place in 20 tries is left out."""
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, 4)) if count is None else count):
        for _attempt in range(20):
            bh = int(rng.integers(int(0.35 * h), int(0.75 * h)))
            bw = max(8, int(bh * rng.uniform(0.4, 0.6)))
            if bw >= w:
                continue
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            if all(_iou((x, y, bw, bh), b) < 0.1 for b in boxes):
                boxes.append((x, y, bw, bh))
                break
    return boxes


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def render_image(
    seed: int, split_index: int, index: int, gender: str, bias: str = DEFAULT_BIAS
) -> tuple[bytes, dict[str, Any], list[list[int]]]:
    """One image as JPEG bytes with its attributes and xywh boxes; a pure function of its arguments."""
    strength = BIASES[bias]
    rng = np.random.default_rng([seed, split_index, index, 0 if gender == "male" else 1])
    h, w = SIZES[int(rng.integers(0, len(SIZES)))]
    img = _background(rng, h, w)
    age = AGES[int(rng.integers(0, len(AGES)))]
    tint = TINTS[age]
    boxes = _boxes(rng, h, w)
    for box in boxes:
        _draw_person(img, rng, box, strength["contrast"][gender], strength["opacity"][gender], tint)
    buf = io.BytesIO()
    Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=92, optimize=False)
    return buf.getvalue(), {"gender": gender, "age": age}, [list(b) for b in boxes]


def write_synthetic(out: Path, spec: SynthSpec = SynthSpec()) -> Path:
    """Write both layouts under ``out`` (atomically: built in a temp folder, then renamed)."""
    out = Path(out)
    if (out / "manifest.json").is_file():
        _check_same_benchmark(out, spec)
        return out
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for split_index, (split, n_male, n_female) in enumerate(spec.split_sizes):
        research = _write_coco_split(tmp, spec, split_index, split, n_male, n_female)
        _write_research_split(tmp, split, research)
    manifest = {
        "generator": "faapkit.data.synth",
        "seed": spec.seed,
        "splits": {s: {"male": m, "female": f} for s, m, f in spec.split_sizes},
        "layouts": {"attributes": "coco", "research": "research"},
        "bias": spec.bias,
        **BIASES[spec.bias],
        **({"train_seed": spec.train_seed} if spec.train_seed is not None else {}),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return publish(tmp, out)


def publish(tmp: Path, out: Path) -> Path:
    """Rename a benchmark built in ``tmp`` to ``out`` (an empty ``out`` is replaced); a concurrent
    writer that finished first wins."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    try:
        os.replace(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "manifest.json").is_file():  # not a concurrent writer that finished first
            raise
    return out


def _write_coco_split(
    tmp: Path, spec: SynthSpec, split_index: int, split: str, n_male: int, n_female: int
) -> dict[str, dict[str, list[Any]]]:
    """Render one split's images into the attributes layout (``coco/``); returns each group's
    images and annotations for the research layout."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    research: dict[str, dict[str, list[Any]]] = {g: {"images": [], "annotations": []} for g in ("male", "female")}
    img_dir = tmp / "coco" / "images" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    order = [("male", i) for i in range(n_male)] + [("female", i) for i in range(n_female)]
    for image_id, (gender, i) in enumerate(order, start=1):
        data, attrs, boxes = render_image(spec.seed_of(split), split_index, i, gender, spec.bias)
        file_name = f"{split}_{image_id:05d}.jpg"
        (img_dir / file_name).write_bytes(data)
        width, height = Image.open(io.BytesIO(data)).size
        image = {"id": image_id, "file_name": file_name, "width": width, "height": height, "attributes": attrs}
        images.append(image)
        anns = []
        for x, y, bw, bh in boxes:
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "bbox": [x, y, bw, bh],
                "area": bw * bh,
                "iscrowd": 0,
            }
            annotations.append(ann)
            anns.append(ann)
        research[gender]["images"].append({k: v for k, v in image.items() if k != "attributes"})
        research[gender]["annotations"].extend(anns)
    ann_dir = tmp / "coco" / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    coco = {
        "info": {"description": "faapkit synthetic biased benchmark", "seed": spec.seed_of(split)},
        "images": images,
        "annotations": annotations,
        "categories": [CATEGORY],
    }
    (ann_dir / f"instances_{split}.json").write_text(json.dumps(coco, indent=1, sort_keys=True))
    return research


def _write_research_split(tmp: Path, split: str, research: dict[str, dict[str, list[Any]]]) -> None:
    """The same split in the research layout (``research/{women,men}_split/``), images linked."""
    img_dir = tmp / "coco" / "images" / split
    for gender, folder in (("female", "women"), ("male", "men")):
        rdir = tmp / "research" / f"{folder}_split" / split
        rdir.mkdir(parents=True, exist_ok=True)
        for image in research[gender]["images"]:
            _link_or_copy(img_dir / image["file_name"], rdir / image["file_name"])
        payload = {
            "images": research[gender]["images"],
            "annotations": research[gender]["annotations"],
            "categories": [CATEGORY],
        }
        (tmp / "research" / f"{folder}_split" / f"gender_{folder}_{split}.json").write_text(
            json.dumps(payload, indent=1, sort_keys=True)
        )


def _check_same_benchmark(out: Path, spec: SynthSpec) -> None:
    """A folder that holds a benchmark keeps it; asking for another seed, train seed, bias or split
    sizes there is refused (keeping the old images silently would make every later evaluation
    measure them)."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        seed, splits, train_seed = manifest["seed"], manifest["splits"], manifest.get("train_seed")
        bias = manifest_bias(manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{out / 'manifest.json'} is not a synthetic benchmark's manifest ({exc})") from None
    wanted = {s: {"male": m, "female": f} for s, m, f in spec.split_sizes}
    if manifest.get("mixed"):  # its splits count images, not groups: no split sizes to set side by side
        raise DataError(
            f"{out} already holds the mixed benchmark of {benchmark_words(seed, bias)}; "
            f"{benchmark_words(spec.seed, spec.bias, spec.train_seed)} needs another folder, or remove {out} first"
        )
    if seed != spec.seed or splits != wanted or bias != spec.bias or train_seed != spec.train_seed:
        held = benchmark_words(seed, bias, train_seed) + ("" if splits == wanted else f", splits {splits}")
        asked = benchmark_words(spec.seed, spec.bias, spec.train_seed)
        asked += "" if splits == wanted else f", splits {wanted}"
        raise DataError(
            f"{out} already holds the synthetic benchmark of {held}; {asked} needs another folder, "
            f"or remove {out} first"
        )


def benchmark_words(seed: int, bias: str, train_seed: int | None = None) -> str:
    """How messages name one synthetic benchmark: ``seed 0, bias v3[, train split of seed 1]``."""
    return f"seed {seed}, bias {bias}" + ("" if train_seed is None else f", train split of seed {train_seed}")


def check_synth_out(out: Path, seed: int, train_seed: int | None = None) -> None:
    """``faap data synth``'s ``--seed``, ``--train-seed`` and ``OUT`` before anything is written: a
    folder that is new, empty or holding a benchmark (:func:`write_synthetic` then refuses another
    one). The folder above ``OUT`` is created, so that the output lock can lie beside ``OUT``."""
    from faapkit.errors import ConfigError

    if seed < 0:
        raise ConfigError(f"--seed must be at least 0, got {seed}")
    if train_seed is not None and (train_seed < 0 or train_seed == seed):
        raise ConfigError(f"--train-seed must be at least 0 and not --seed ({seed}), got {train_seed}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; give a folder (new, or holding this benchmark)")
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise DataError(f"{out} exists and is not empty; choose a new folder")
    try:
        out.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the folder of {out}: {exc.strerror or exc}") from None


def manifest_bias(manifest: dict[str, Any]) -> str:
    """The bias a benchmark's manifest records; manifests written before biases had names hold
    the contrast and opacity only (those of ``v1``)."""
    if "bias" in manifest:
        return str(manifest["bias"])
    held = {"contrast": manifest["contrast"], "opacity": manifest["opacity"]}
    for name, strength in BIASES.items():
        if strength == held:
            return name
    raise KeyError(f"contrast/opacity {held} match no known bias")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def default_cache_dir() -> Path:
    root = os.environ.get("FAAP_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "faapkit")
    return Path(root)


def embedded_dataset(seed: int = 0, bias: str = DEFAULT_BIAS) -> Path:
    """The embedded benchmark's ``coco`` layout, generated into the cache on first use."""
    out = default_cache_dir() / embedded_folder(seed, bias)
    write_synthetic(out, SynthSpec(seed=seed, bias=bias))
    return out / "coco"


def embedded_dataset_for(
    detector: Any,
    checkpoint: Path | None = None,
    seed: int = 0,
    *,
    recorded: Path | None = None,
    benchmark: str | None = None,
) -> Path:
    """The embedded benchmark to use without a dataset of one's own: the one a run ``recorded``
    (its dataset root, when that is an embedded benchmark's folder), else the bias ``benchmark``
    names (``data.benchmark``), else the one the detector was trained on: what ``checkpoint``
    records (a ``faap detector pretrain`` file), else the registered detector's
    (``DetectorSpec.benchmark``), else the default bias."""
    held = parse_embedded_folder(recorded) if recorded is not None else None
    if held is not None:
        return embedded_dataset(*held)
    if benchmark is not None:
        return embedded_dataset(seed, benchmark)
    recorded_bias = None
    if checkpoint is not None:
        from faapkit.io import checkpoint_training

        recorded_bias = checkpoint_training(Path(checkpoint)).get("bias")
        if recorded_bias is not None and recorded_bias not in BIASES:
            raise DataError(
                f"{checkpoint}: 'trained.bias' is '{recorded_bias}', a benchmark this faapkit does not know "
                f"(known: {', '.join(BIASES)}); pass data.root / --data to choose the data"
            )
    return embedded_dataset(seed, recorded_bias or getattr(detector, "benchmark", None) or DEFAULT_BIAS)


def embedded_folder(seed: int, bias: str) -> str:
    """The cache folder of one embedded benchmark (``synth-v1-seed0``: the folder of releases
    before biases had names, so their caches and runs keep pointing at the same images)."""
    return f"synth-{bias}-seed{seed}"


def parse_embedded_folder(root: Path) -> tuple[int, str] | None:
    """``(seed, bias)`` when ``root`` is an embedded benchmark's ``coco`` folder in a cache, else ``None``."""
    match = re.fullmatch(r"synth-(v\d+)-seed(\d+)", root.parent.name) if root.name == "coco" else None
    if match is None or match.group(1) not in BIASES:
        return None
    return int(match.group(2)), match.group(1)
