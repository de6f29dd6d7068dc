"""Name-keyed registries that remember which plugin provided each entry."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from faapkit.errors import ConfigError, DuplicateNameError, UnknownNameError
from faapkit.plugins.specs import (
    DetectorSpec,
    GeneratorSpec,
    HeadSpec,
    LoggerSpec,
    LossSpec,
    ScheduleSpec,
    VersionSpec,
)

if TYPE_CHECKING:
    import pluggy

T = TypeVar("T")


@dataclass
class Registry(Generic[T]):
    """Entries of one kind (``"loss"``, ``"version"`` ...) keyed by name, with their providers.
    Specs with ``aliases`` (versions) are found by each alias too; a name or alias claimed twice,
    as either, is refused naming both plugins."""

    kind: str
    entries: dict[str, T] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> canonical name

    def add(self, spec: T, provider: str) -> None:
        name: str = spec.name  # type: ignore[attr-defined]
        if name in self.entries:
            raise DuplicateNameError(
                f"{self.kind} '{name}' registered by both plugin '{self.providers[name]}' and plugin '{provider}'"
            )
        own_aliases = [a for a in dict.fromkeys(getattr(spec, "aliases", ())) if a != name]
        for claimed in [name, *own_aliases]:
            owner = self.aliases.get(claimed, claimed if claimed in self.entries else None)
            if owner is not None:
                held = f"{self.kind} '{owner}'" if claimed == owner else f"an alias of {self.kind} '{owner}'"
                raise DuplicateNameError(
                    f"{self.kind} name or alias '{claimed}' claimed by both plugin '{self.providers[owner]}' "
                    f"({held}) and plugin '{provider}' ({self.kind} '{name}')"
                )
        self.entries[name] = spec
        self.providers[name] = provider
        self.aliases.update(dict.fromkeys(own_aliases, name))

    def get(self, name: str) -> T:
        if name in self.entries:
            return self.entries[name]
        if name in self.aliases:
            return self.entries[self.aliases[name]]
        close = difflib.get_close_matches(name, [*self.entries, *self.aliases], n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise UnknownNameError(
            f"unknown {self.kind} '{name}'; {hint}known: {', '.join(sorted(self.entries)) or '(none)'}"
        )

    def provider(self, name: str) -> str:
        return self.providers[self.get(name).name]  # type: ignore[attr-defined]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)


# hook name -> (Registries attribute, spec class)
REGISTRATION_HOOKS: dict[str, tuple[str, type]] = {
    "faap_register_versions": ("versions", VersionSpec),
    "faap_register_losses": ("losses", LossSpec),
    "faap_register_heads": ("heads", HeadSpec),
    "faap_register_generators": ("generators", GeneratorSpec),
    "faap_register_schedules": ("schedules", ScheduleSpec),
    "faap_register_detectors": ("detectors", DetectorSpec),
    "faap_register_loggers": ("loggers", LoggerSpec),
}


@dataclass
class Registries:
    """Everything the registration hooks provided, validated for consistency."""

    versions: Registry[VersionSpec] = field(default_factory=lambda: Registry("version"))
    losses: Registry[LossSpec] = field(default_factory=lambda: Registry("loss"))
    heads: Registry[HeadSpec] = field(default_factory=lambda: Registry("head"))
    generators: Registry[GeneratorSpec] = field(default_factory=lambda: Registry("generator"))
    schedules: Registry[ScheduleSpec] = field(default_factory=lambda: Registry("schedule"))
    detectors: Registry[DetectorSpec] = field(default_factory=lambda: Registry("detector"))
    loggers: Registry[LoggerSpec] = field(default_factory=lambda: Registry("logger"))

    @classmethod
    def from_plugin_manager(cls, pm: pluggy.PluginManager) -> Registries:
        """Call every registration hook implementation with a ``register`` bound to its plugin."""
        registries = cls()
        for hook_name, (attr, spec_type) in REGISTRATION_HOOKS.items():
            registry: Registry[Any] = getattr(registries, attr)
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                impl.function(register=_make_register(registry, spec_type, impl.plugin_name))
        registries.resolve_extended_versions()
        registries.check_references()
        return registries

    def resolve_extended_versions(self) -> None:
        """Complete every version that ``extends`` another from its base (bases first, so a
        chain resolves); an unknown base or a cycle is refused naming the version."""
        done: set[str] = set()

        def resolve(name: str, chain: tuple[str, ...]) -> VersionSpec:
            spec = self.versions.entries[name]
            if spec.extends is None or name in done:
                return spec
            who = f"version '{name}' (plugin '{self.versions.providers[name]}')"
            if spec.extends not in self.versions.entries and spec.extends not in self.versions.aliases:
                raise ConfigError(f"{who} extends an unknown version '{spec.extends}'")
            base = self.versions.get(spec.extends).name
            if base in chain:
                raise ConfigError(f"{who} extends itself through {' -> '.join((*chain, base))}")
            resolved = spec.extending(resolve(base, (*chain, base)))
            self.versions.entries[name] = resolved
            done.add(name)
            return resolved

        for name in list(self.versions.entries):
            resolve(name, (name,))

    def check_references(self) -> None:
        """Every version must name components that exist."""
        for name, version in self.versions.entries.items():
            who = f"version '{name}' (plugin '{self.versions.providers[name]}')"
            try:
                self.losses.get(version.loss)
                if version.head is not None:
                    self.heads.get(version.head)
                self.generators.get(version.generator)
                bound = {role: self.schedules.get(schedule) for role, schedule in version.schedules.items()}
            except UnknownNameError as exc:
                raise ConfigError(f"{who} refers to an {exc}") from None
            for role, spec in bound.items():
                spec.check_role(role, who, self.schedules.provider(spec.name))


def _make_register(registry: Registry[Any], spec_type: type, plugin: str) -> Callable[[Any], None]:
    def register(spec: Any) -> None:
        if not isinstance(spec, spec_type):
            raise ConfigError(
                f"plugin '{plugin}' registered a {type(spec).__name__} where a {spec_type.__name__} is expected"
            )
        registry.add(spec, plugin)

    return register
