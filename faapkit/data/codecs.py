"""Image codecs a deployed perturbation goes through: ``png`` (8-bit, lossless), ``jpeg:Q`` and
``webp:Q`` (lossy, quality ``Q`` in 1..100), as pure functions of an image.

``faap eval --codec`` passes the baseline and the perturbed images through one of them before the
detector; ``faap apply --format`` writes with one. The perturbation's delta is a few grey levels
(epsilon 0.09 is about 5 levels of 255), so 8-bit rounding keeps it while a lossy codec's
quantisation of high frequencies can remove it. Importing this module imports no torch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from faapkit.errors import ConfigError

CODECS = ("png", "jpeg", "webp")
PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@dataclass(frozen=True)
class Codec:
    """A codec by name, with its quality (``None`` for png)."""

    name: str
    quality: int | None = None

    def __str__(self) -> str:
        return self.name if self.quality is None else f"{self.name}:{self.quality}"

    @property
    def lossless(self) -> bool:
        return self.name == "png"


def parse_codec(text: str, option: str = "--codec") -> Codec:
    """``png``, ``jpeg:Q`` or ``webp:Q`` -> :class:`Codec`; anything else refused naming ``option``."""
    name, _, quality = text.strip().lower().partition(":")
    if name not in CODECS:
        raise ConfigError(f"{option} {text!r}: not one of png, jpeg:Q, webp:Q")
    if name == "png":
        if quality:
            raise ConfigError(f"{option} {text!r}: png is lossless and takes no quality")
        return Codec("png")
    if not (quality.isascii() and quality.isdigit()) or not 1 <= int(quality) <= 100:
        raise ConfigError(f"{option} {text!r}: {name} needs a quality 1..100, e.g. {name}:95")
    return Codec(name, int(quality))


def encode(image: Image.Image, codec: Codec) -> bytes:
    """The bytes of ``image`` (RGB) written with ``codec`` (4:2:0 chroma for jpeg, PIL's default)."""
    buffer = io.BytesIO()
    options = {} if codec.quality is None else {"quality": codec.quality}
    image.convert("RGB").save(buffer, format=PIL_FORMAT[codec.name], **options)
    return buffer.getvalue()


def round_trip(image: Image.Image, codec: Codec) -> Image.Image:
    """``image`` as a reader of ``codec``'s file sees it: encoded, then decoded to RGB."""
    with Image.open(io.BytesIO(encode(image, codec))) as decoded:
        return decoded.convert("RGB")


def through_codec(images: Any, codec: Codec) -> Any:
    """Normalised images ``(B, 3, H, W)`` (ImageNet statistics, unpadded) as the detector sees them
    after a round trip through ``codec``: mapped to 8-bit RGB, encoded, decoded and normalised
    again, each image on its own; same shape, device and dtype."""
    import numpy as np
    import torch

    from faapkit.data.transforms import denormalize, normalize

    pixels = (denormalize(images.float()).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
    decoded = [np.asarray(round_trip(Image.fromarray(p.numpy()), codec)) for p in pixels]
    back = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(images.device, torch.float32) / 255
    return normalize(back).to(images.dtype)
