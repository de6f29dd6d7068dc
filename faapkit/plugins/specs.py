"""Frozen records of registered components. Factories may be ``"module:attr"`` strings so that
registering a component never imports torch."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from faapkit.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor, nn


# The input size of the embedded benchmark's 128 px images, at which its tiny detectors were trained:
# the default of every DetectorSpec (hence of data.min_size, data.max_size and data.train_scales) and
# of detector pretraining. Upstream DETR's is 800 / 1333 / 480..800.
EMBEDDED_MIN_SIZE = 128
EMBEDDED_MAX_SIZE = 213
EMBEDDED_TRAIN_SCALES: tuple[int, ...] = (112, 120, 128, 136, 144)


class NoOptions(BaseModel):
    """Options model of a component that takes none."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def resolve_factory(factory: Callable[..., Any] | str) -> Callable[..., Any]:
    """Import ``"package.module:attr"`` lazily, or return a callable unchanged."""
    if callable(factory):
        return factory
    module_name, _, attr = factory.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """A named, lazily built component. ``options`` validates its configuration section."""

    name: str
    factory: Callable[..., Any] | str
    options: type[BaseModel] = NoOptions
    description: str = ""

    def build(self, **options: Any) -> Any:
        validated = self.options.model_validate(options)
        return resolve_factory(self.factory)(**validated.model_dump())


@dataclass(frozen=True, kw_only=True)
class LossSpec(ComponentSpec):
    """A fairness loss strategy; its factory returns a ``faapkit.losses.LossStrategy``."""


@dataclass(frozen=True, kw_only=True)
class HeadSpec(ComponentSpec):
    """A trainable module on decoder features; factory(feature_dim=..., **options) -> nn.Module."""

    def build(self, **options: Any) -> Any:
        feature_dim = options.pop("feature_dim")
        validated = self.options.model_validate(options)
        return resolve_factory(self.factory)(feature_dim=feature_dim, **validated.model_dump())


@dataclass(frozen=True, kw_only=True)
class GeneratorSpec(ComponentSpec):
    """A perturbation generator: ``factory(epsilon=..., **options) -> nn.Module`` mapping images
    ``(B, 3, H, W)`` to a delta of the same shape with ``|delta| <= module.epsilon``. ``epsilon``
    must be a plain, assignable attribute (schedules change it every epoch).

    ``uses_detector``: the factory also receives ``detector=`` (the frozen detector the run
    trains against or evaluates) and may read its view of the clean image (e.g.
    ``detector.image_features``); it must not register the detector as a submodule, so its weights
    stay out of the generator's checkpoint and optimiser."""

    uses_detector: bool = False

    def build(self, **options: Any) -> Any:
        epsilon = options.pop("epsilon")
        detector = options.pop("detector", None)
        validated = self.options.model_validate(options)
        extra: dict[str, Any] = {}
        if self.uses_detector:
            if detector is None:
                raise ConfigError(f"generator '{self.name}' reads the detector, but none was given to build it")
            extra["detector"] = detector
        return resolve_factory(self.factory)(epsilon=epsilon, **extra, **validated.model_dump())


ScheduleKind = Literal["epsilon", "weight", "lr"]


def role_kind(role: str) -> ScheduleKind:
    """The kind of schedule a role takes: ``epsilon`` (the perturbation bound), ``lr`` (a factor
    of ``train.lr``), any other role a loss ``weight``."""
    return "epsilon" if role == "epsilon" else "lr" if role == "lr" else "weight"


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec(ComponentSpec):
    """A per-epoch schedule ``f(epoch, total_epochs, **options) -> float``. ``kind`` is the one
    role kind it is made for (:func:`role_kind`; binding it to another role is refused), ``None``
    one that fits any role (a constant, a linear ramp)."""

    kind: ScheduleKind | None = None

    def check_role(self, role: str, where: str, provider: str | None = None) -> None:
        """Refuse binding this schedule to a role of another kind; ``where`` names the binding."""
        if self.kind is not None and self.kind != role_kind(role):
            by = f" (plugin '{provider}')" if provider else ""
            raise ConfigError(
                f"{where}: schedule '{self.name}'{by} is an '{self.kind}' schedule, "
                f"but role '{role}' takes an '{role_kind(role)}' schedule"
            )

    def value(self, epoch: int, total_epochs: int, options: Mapping[str, Any]) -> float:
        return float(resolve_factory(self.factory)(epoch, total_epochs, **options))


class DetectorCriterion(Protocol):
    """The set loss of a detector: ``criterion(outputs, targets) -> (terms, indices)`` with
    ``terms`` unweighted scalar losses by name and ``indices`` the matching, one ``(query_idx,
    target_idx)`` pair of index tensors per image; ``total(terms)`` is their weighted sum. Training
    on box-level groups also calls it with ``counted=`` (one boolean ``(T_i,)`` per image: the
    targets whose class and box terms count, under the same matching; see
    ``faapkit.detr.criterion``); a criterion without that keyword trains image-level groups only."""

    def __call__(
        self, outputs: dict[str, Any], targets: list[dict[str, Tensor]], /
    ) -> tuple[dict[str, Tensor], list[tuple[Tensor, Tensor]]]: ...

    def total(self, terms: dict[str, Tensor], /) -> Tensor: ...


class DetectorLoss(Protocol):
    """A detector's own training loss: ``loss(images (B, 3, H, W) normalised, mask (B, H, W),
    targets) -> terms``, unweighted scalar terms by name whose sum is the loss (as torchvision's
    detection models return them in training mode). Targets are faapkit's: normalised cxcywh
    ``boxes (T_i, 4)`` of the unpadded image and ``labels (T_i,)`` (the dataset's category ids)."""

    def __call__(self, images: Tensor, mask: Tensor, targets: list[dict[str, Tensor]], /) -> dict[str, Tensor]: ...


@dataclass(frozen=True, kw_only=True)
class DetectorParts:
    """What a detector factory returns; the engine freezes ``model`` and never trains it.

    - ``model(NestedTensor(images (B, 3, H, W) normalised, mask (B, H, W)))`` -> a dict of tensors
      with a batch dimension first, which ``postprocess`` reads; a DETR's holds
      ``pred_logits (B, Q, C+1)`` (last = no object), ``pred_boxes (B, Q, 4)`` (normalised cxcywh),
      optionally ``aux_outputs`` (a list of such dicts, one per earlier decoder layer) and
      ``features (B, Q, D)`` (decoder features, needed by versions with a head or a feature loss);
    - the loss training lowers, one of two kinds: ``criterion``, a set loss on the model's outputs
      (:class:`DetectorCriterion`, a DETR's), or ``loss``, the detector's own loss of images and
      targets (:class:`DetectorLoss`, e.g. a torchvision model's in training mode, with its batch
      norm kept frozen);
    - ``postprocess(outputs, sizes (B, 2) as (h, w))`` -> per image ``{"scores" (Q,), "labels" (Q,),
      "boxes" (Q, 4) xyxy in pixels}``;
    - ``num_queries`` Q and ``num_classes`` C as the outputs have them; ``feature_dim`` D, or
      ``None`` when the outputs carry no ``features``.
    """

    model: nn.Module
    criterion: DetectorCriterion | None = None
    loss: DetectorLoss | None = None
    postprocess: Callable[[dict[str, Any], Tensor], list[dict[str, Tensor]]]
    num_queries: int
    num_classes: int
    feature_dim: int | None

    def __post_init__(self) -> None:
        if (self.criterion is None) == (self.loss is None):
            raise ConfigError("a detector's parts give exactly one of 'criterion' (a set loss) and 'loss' (its own)")


@dataclass(frozen=True, kw_only=True)
class DetectorSpec(ComponentSpec):
    """A detector configuration: ``factory(**arch) -> DetectorParts``. ``arch`` holds the
    architecture hyperparameters (validated by ``options`` when one is given, otherwise checked
    against the factory's signature), ``weights`` an optional packaged checkpoint
    (``"package:relative/path"``) used when no checkpoint is configured. ``trained_unpadded``: those
    weights were trained on shape-bucketed (never padded) batches, so generators are trained on such
    batches too (``data.shape_buckets``) unless the config says otherwise. ``benchmark``: the bias
    of the embedded benchmark (``faapkit.data.synth.BIASES``) a run, probe or evaluation without a
    dataset of its own uses: the one those weights were trained on, or one that keeps its val and
    test and renders its train split from images the weights never saw (``FRESH_TRAIN``), so that a
    detector is never measured on another bias's images by default.

    The input size its weights expect: ``min_size`` (evaluation resizes the short side to it) and
    ``max_size`` (the cap of the long side), and ``train_scales`` (the short sides training draws
    from, with the same cap). They are the defaults of ``data.min_size``, ``data.max_size`` and
    ``data.train_scales`` for runs and evaluations with this detector; the defaults here are the
    embedded benchmark's (its 128 px images), upstream DETR's are 800 / 1333 and 480..800."""

    arch: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    trained_unpadded: bool = False
    benchmark: str | None = None
    min_size: int = EMBEDDED_MIN_SIZE
    max_size: int = EMBEDDED_MAX_SIZE
    train_scales: tuple[int, ...] = EMBEDDED_TRAIN_SCALES
    person_label: int = 1  # the label its outputs give people (COCO's id; the embedded benchmark's)

    def __post_init__(self) -> None:
        sizes = (self.min_size, self.max_size, *self.train_scales)
        if not self.train_scales or any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in sizes):
            raise ConfigError(
                f"detector '{self.name}': min_size, max_size and train_scales must be positive integers, got "
                f"{self.min_size}, {self.max_size} and {list(self.train_scales)}"
            )

    def build(self, **options: Any) -> DetectorParts:
        """Build the detector's parts (random weights) from ``arch``; ``options`` must be empty."""
        if options:
            raise TypeError("DetectorSpec.build takes no options: the architecture is the spec's arch")
        arch = dict(self.arch)
        if self.options is not NoOptions:
            arch = self.options.model_validate(arch).model_dump()
        factory = resolve_factory(self.factory)
        try:
            inspect.signature(factory).bind(**arch)
        except TypeError as exc:
            raise ConfigError(f"detector '{self.name}': its arch does not fit its factory: {exc}") from None
        except ValueError:  # a builtin without a signature: let the call itself check
            pass
        parts = factory(**arch)
        if not isinstance(parts, DetectorParts):
            raise ConfigError(
                f"detector '{self.name}': factory {self.factory!r} returned a {type(parts).__name__}, "
                "not the DetectorParts it must return"
            )
        return parts


@dataclass(frozen=True, kw_only=True)
class LoggerSpec(ComponentSpec):
    """A scalar writer chosen by ``train.loggers``: ``factory(run_dir=..., **options)`` returns a
    ``faapkit.train.loggers.MetricsLogger`` (``open(start_step)``, ``log(split, step, epoch, scalars)``,
    ``close()``). The factory runs before training starts: a missing package is refused there."""

    def build(self, **options: Any) -> Any:
        run_dir = options.pop("run_dir")
        validated = self.options.model_validate(options)
        return resolve_factory(self.factory)(run_dir=run_dir, **validated.model_dump())


class _Inherited:
    """The value of a ``VersionSpec`` field left to the version it ``extends``."""

    def __repr__(self) -> str:
        return "INHERITED"


INHERITED: Any = _Inherited()
# the fields a version without ``extends`` must give, and the defaults of the others
_REQUIRED_PARTS = ("loss", "head", "schedules")
_PART_DEFAULTS: dict[str, Any] = {"generator": "unet", "group_levels": ("image",)}


@dataclass(frozen=True, kw_only=True)
class VersionSpec:
    """A method version: which registered parts it uses and its default configuration.

    ``generator`` names the version's default generator (``generator.name`` in a config wins).

    ``defaults`` is a nested mapping merged under the user's config file and ``--set`` overrides,
    e.g. ``{"train": {"batch_size": 8}, "loss": {"temperature": 0.1}}``.

    ``extends`` names a registered version (built-in or another plugin's) this one builds on: the
    parts it does not give (``loss``, ``head``, ``schedules``, ``generator``, ``group_levels``) are
    that version's, and its ``defaults`` are deep-merged on top of that version's. The registries
    resolve it once every plugin has registered, so the registered spec is complete; an unknown
    base is refused naming it. Without ``extends``, ``loss``, ``head`` and ``schedules`` are required.

    ``aliases`` are other names ``--version`` accepts; a run records ``name``. A name or alias
    that another plugin already claimed is refused at registration, naming both plugins.

    ``group_levels`` are the levels of groups (``data.group_level``) the version trains on:
    ``"image"`` (one group per image) and, where its loss reads each box's group
    (``LossInputs.detection_of_group``), ``"box"``; training refuses data of another level.
    """

    name: str
    loss: str = INHERITED
    head: str | None = INHERITED
    schedules: Mapping[str, str] = INHERITED
    generator: str = INHERITED
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    aliases: tuple[str, ...] = ()
    group_levels: tuple[str, ...] = INHERITED
    extends: str | None = None

    def __post_init__(self) -> None:
        if self.extends is not None:
            return
        missing = [part for part in _REQUIRED_PARTS if getattr(self, part) is INHERITED]
        if missing:
            raise ConfigError(
                f"version '{self.name}' gives no {', '.join(missing)}: name them, or extend a version that has them"
            )
        for part, default in _PART_DEFAULTS.items():
            if getattr(self, part) is INHERITED:
                object.__setattr__(self, part, default)

    def extending(self, base: VersionSpec) -> VersionSpec:
        """This version completed from ``base`` (itself complete): the parts this one left to it,
        and ``base.defaults`` with this version's deep-merged on top."""
        parts = {p: getattr(base, p) for p in (*_REQUIRED_PARTS, *_PART_DEFAULTS) if getattr(self, p) is INHERITED}
        return replace(self, **parts, defaults=deep_merged(base.defaults, self.defaults))


def deep_merged(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` merged in: nested mappings key by key, any other value of ``top`` wins."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        both_maps = isinstance(below, Mapping) and isinstance(value, Mapping)
        merged[key] = deep_merged(below, value) if both_maps else value  # type: ignore[arg-type]
    return merged
