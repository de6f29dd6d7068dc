"""Frozen records of registered components. Factories may be ``"module:attr"`` strings so that
registering a component never imports torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


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
    must be a plain, assignable attribute (schedules change it every epoch)."""

    def build(self, **options: Any) -> Any:
        epsilon = options.pop("epsilon")
        validated = self.options.model_validate(options)
        return resolve_factory(self.factory)(epsilon=epsilon, **validated.model_dump())


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec(ComponentSpec):
    """A per-epoch schedule ``f(epoch, total_epochs, **options) -> float``."""

    kind: Literal["epsilon", "weight", "lr"] = "weight"

    def value(self, epoch: int, total_epochs: int, options: Mapping[str, Any]) -> float:
        return float(resolve_factory(self.factory)(epoch, total_epochs, **options))


@dataclass(frozen=True, kw_only=True)
class DetectorSpec(ComponentSpec):
    """A DETR configuration. ``arch`` holds the architecture hyperparameters, ``weights`` an optional
    packaged checkpoint (``"package:relative/path"``) used when no checkpoint is configured."""

    arch: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None


@dataclass(frozen=True, kw_only=True)
class LoggerSpec(ComponentSpec):
    """A scalar writer chosen by ``train.loggers``: ``factory(run_dir=..., **options)`` returns a
    ``faapkit.train.loggers.MetricsLogger`` (``open(start_step)``, ``log(split, step, epoch, scalars)``,
    ``close()``). The factory runs before training starts: a missing package is refused there."""

    def build(self, **options: Any) -> Any:
        run_dir = options.pop("run_dir")
        validated = self.options.model_validate(options)
        return resolve_factory(self.factory)(run_dir=run_dir, **validated.model_dump())


@dataclass(frozen=True, kw_only=True)
class VersionSpec:
    """A method version: which registered parts it uses and its default configuration.

    ``generator`` names the version's default generator (``generator.name`` in a config wins).

    ``defaults`` is a nested mapping merged under the user's config file and ``--set`` overrides,
    e.g. ``{"train": {"batch_size": 8}, "loss": {"temperature": 0.1}}``.
    """

    name: str
    loss: str
    head: str | None
    schedules: Mapping[str, str]
    generator: str = "unet"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    aliases: tuple[str, ...] = ()
