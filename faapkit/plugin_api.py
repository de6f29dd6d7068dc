"""The public plugin API: everything a faap plugin may import, in one module.

Built-in plugins (``faap_plugins``) and third-party ones (``examples/faap-example-plugin``) use
this module and nothing else of faapkit, so what a plugin depends on is stated here and kept
stable. It is the public face of the plugin machinery (``faapkit.plugins``, internal: plugins
never import it) and of the engine parts a plugin builds on, each re-exported from where it is
defined. Importing it never imports torch: the loss-strategy parts (``LossStrategy``,
``LossInputs``, ``LossOutput`` and the loss helpers) are loaded on first attribute access, i.e.
inside a loss factory, when torch is needed anyway.

- registration: ``hookimpl`` and the specs a ``register`` callback takes (``VersionSpec``,
  ``LossSpec``, ``HeadSpec``, ``GeneratorSpec``, ``ScheduleSpec``, ``DetectorSpec``,
  ``LoggerSpec``); the hooks themselves are documented in ``docs/plugin-hooks.md``;
- detectors: ``DetectorParts`` (what a ``DetectorSpec`` factory returns), ``detr_parts``
  (the built-in DETR factory, ``**arch -> DetectorParts``, to wrap or extend), and for a detector
  with its own loss ``TorchvisionDetector`` (any torchvision-style model, whose forward takes a
  list of images and returns detections, or its loss dict in training mode, behind faapkit's
  contract), ``postprocess_detections`` (its postprocess) and ``torchvision_parts`` (the built-in
  torchvision detectors' factory);
- runs: ``RunRecord``, what a ``faap_read_run`` reader returns (plain dicts with its keys work too),
  and ``train_only_records`` (one record per logged epoch no metrics file covers);
- options: ``Options``, the strict base every component's options model derives from;
- losses: ``LossStrategy`` (subclass it), ``LossInputs`` (what the engine hands it: features
  ``(B, Q, D)``, logits ``(B, Q, C+1)``, groups ``(B,)``, the batch's DETR loss, the clean images and
  ``detection_on`` to query the frozen detector with ground truth, ...),
  ``LossOutput``; helpers ``image_scores`` ``(B, Q, C+1) -> (B,)``, ``matched_scores``,
  ``wasserstein_1d_asymmetric``, ``info_nce``, ``self_similarity``, ``count_groups``,
  ``score_terms`` (logged group means of image scores), ``need_anchors_and_targets`` (a skip rule);
- distributed: ``DistInfo`` and ``average_gradients``, for a loss that trains a module of its own
  (the 7th's discriminator) and keeps its replicas identical under torchrun;
- building on the built-ins: ``VersionSpec(extends="level-up", ...)`` takes a registered version's
  parts and defaults; ``LevelUpDetection`` (level-up's loss, subclass it and add a term to
  ``super().__call__(x)``) and ``LevelUpOptions`` (its options, subclass them for yours); the
  built-in generators ``ResearchUNetGenerator``, ``SubPixelGenerator``, ``DetectorAwareGenerator``
  (its ``detector`` is the frozen detector it reads) and ``TransformerAwareGenerator``, with
  ``pad_to_multiple_of_4`` (what the sub-pixel generators feed the detector) and
  ``clamp_normalized`` (an image plus a delta, kept a valid image); ``signed_descent`` (projected
  signed-gradient descent of a delta on a loss of the perturbed images: the headroom probe's
  oracle, a loss's teacher with ``LossInputs.detection_on``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from faapkit.compare.records import RunRecord, train_only_records
from faapkit.plugins.hookspecs import hookimpl
from faapkit.plugins.specs import (
    DetectorParts,
    DetectorSpec,
    GeneratorSpec,
    HeadSpec,
    LoggerSpec,
    LossSpec,
    ScheduleSpec,
    VersionSpec,
)

if TYPE_CHECKING:
    from faap_plugins.level_up import LevelUpOptions
    from faap_plugins.level_up.loss import LevelUpDetection
    from faapkit.detr.build import detr_parts
    from faapkit.detr.views import decoder_attention, query_confidence
    from faapkit.distributed import DistInfo, average_gradients
    from faapkit.generators.perturb import ResearchUNetGenerator, clamp_normalized, signed_descent
    from faapkit.generators.subpixel import (
        DetectorAwareGenerator,
        SubPixelGenerator,
        pad_to_multiple_of_4,
        rms_per_position,
    )
    from faapkit.generators.transformer_aware import TransformerAwareGenerator
    from faapkit.losses.base import LossInputs, LossOutput, LossStrategy, count_groups
    from faapkit.losses.common import (
        image_scores,
        info_nce,
        matched_scores,
        need_anchors_and_targets,
        score_terms,
        self_similarity,
        wasserstein_1d_asymmetric,
    )
    from faapkit.tvdet.build import torchvision_parts
    from faapkit.tvdet.wrapper import TorchvisionDetector, postprocess_detections


class Options(BaseModel):
    """Strict, closed option model: unknown keys and wrong types are errors, and so are inf/nan."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


_LAZY = {
    "LossStrategy": "faapkit.losses.base",
    "LossInputs": "faapkit.losses.base",
    "LossOutput": "faapkit.losses.base",
    "count_groups": "faapkit.losses.base",
    "image_scores": "faapkit.losses.common",
    "matched_scores": "faapkit.losses.common",
    "wasserstein_1d_asymmetric": "faapkit.losses.common",
    "info_nce": "faapkit.losses.common",
    "self_similarity": "faapkit.losses.common",
    "score_terms": "faapkit.losses.common",
    "need_anchors_and_targets": "faapkit.losses.common",
    "DistInfo": "faapkit.distributed",
    "average_gradients": "faapkit.distributed",
    "detr_parts": "faapkit.detr.build",
    "torchvision_parts": "faapkit.tvdet.build",
    "TorchvisionDetector": "faapkit.tvdet.wrapper",
    "postprocess_detections": "faapkit.tvdet.wrapper",
    "ResearchUNetGenerator": "faapkit.generators.perturb",
    "clamp_normalized": "faapkit.generators.perturb",
    "signed_descent": "faapkit.generators.perturb",
    "SubPixelGenerator": "faapkit.generators.subpixel",
    "DetectorAwareGenerator": "faapkit.generators.subpixel",
    "pad_to_multiple_of_4": "faapkit.generators.subpixel",
    "rms_per_position": "faapkit.generators.subpixel",
    "decoder_attention": "faapkit.detr.views",
    "query_confidence": "faapkit.detr.views",
    "TransformerAwareGenerator": "faapkit.generators.transformer_aware",
    # the built-in level-up version's loss and options, for versions that add to them
    "LevelUpDetection": "faap_plugins.level_up.loss",
    "LevelUpOptions": "faap_plugins.level_up",
}


def __getattr__(name: str) -> Any:
    """Torch-backed parts, imported on first use (registration stays torch-free)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'faapkit.plugin_api' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "DetectorAwareGenerator",
    "DetectorParts",
    "DetectorSpec",
    "DistInfo",
    "GeneratorSpec",
    "HeadSpec",
    "LevelUpDetection",
    "LevelUpOptions",
    "LoggerSpec",
    "LossInputs",
    "LossOutput",
    "LossSpec",
    "LossStrategy",
    "Options",
    "ResearchUNetGenerator",
    "RunRecord",
    "ScheduleSpec",
    "SubPixelGenerator",
    "TorchvisionDetector",
    "TransformerAwareGenerator",
    "VersionSpec",
    "average_gradients",
    "clamp_normalized",
    "count_groups",
    "decoder_attention",
    "detr_parts",
    "hookimpl",
    "image_scores",
    "info_nce",
    "matched_scores",
    "need_anchors_and_targets",
    "pad_to_multiple_of_4",
    "postprocess_detections",
    "query_confidence",
    "rms_per_position",
    "score_terms",
    "self_similarity",
    "signed_descent",
    "torchvision_parts",
    "train_only_records",
    "wasserstein_1d_asymmetric",
]
