"""The plugin machinery: hook declarations (``hookspecs``), the spec records plugins register
(``specs``), the registries they fill (``registry``) and, here, the plugin manager factory. Plugins
themselves import none of this directly: ``faapkit.plugin_api`` is their public face.

Built-in and third-party plugins both come from the ``faap`` entry-point group; nothing is
registered at import time, and a manager exists only once ``make_plugin_manager`` builds one.

- ``FAAP_DISABLE_PLUGIN_AUTOLOAD=1`` skips third-party entry points (built-ins still load).
- ``blocked`` (CLI ``--disable-plugin NAME``) blocks any plugin by its entry-point name.
- A plugin that fails to import is recorded in ``pm.load_errors`` and the rest keeps working.
- ``check_pending()`` makes a misspelled ``faap_*`` hook implementation fail loudly.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import pluggy

from faapkit.errors import ConfigError
from faapkit.plugins import hookspecs

ENTRY_POINT_GROUP = "faap"
BUILTIN_DISTRIBUTION = "faapkit"


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from."""

    name: str
    distribution: str
    version: str
    module: str
    builtin: bool


class FaapPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers provenance and import failures."""

    def __init__(self) -> None:
        super().__init__("faap")
        self.info: dict[str, PluginInfo] = {}
        self.load_errors: list[tuple[str, str]] = []
        self.blocked_names: set[str] = set()


@dataclass
class _EntryPointSource:
    entry_point: md.EntryPoint
    distribution: str
    version: str
    builtin: bool = field(default=False)


def _entry_points() -> list[_EntryPointSource]:
    seen: set[tuple[str, str]] = set()
    found: list[_EntryPointSource] = []
    for dist in md.distributions():
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or (dist_name, ep.name) in seen:
                continue
            seen.add((dist_name, ep.name))
            builtin = dist_name.lower() == BUILTIN_DISTRIBUTION
            found.append(_EntryPointSource(ep, dist_name, dist.version, builtin))
    # Built-ins first so that their names are stable and third-party duplicates are the ones reported.
    found.sort(key=lambda s: (not s.builtin, s.distribution, s.entry_point.name))
    return found


def autoload_enabled() -> bool:
    return os.environ.get("FAAP_DISABLE_PLUGIN_AUTOLOAD", "").strip() not in {"1", "true", "yes"}


def make_plugin_manager(
    *,
    autoload: bool | None = None,
    blocked: Sequence[str] = (),
    extra_plugins: Sequence[tuple[str, object]] = (),
) -> FaapPluginManager:
    """Build a fresh plugin manager.

    ``autoload`` (default: not ``FAAP_DISABLE_PLUGIN_AUTOLOAD``) controls third-party entry points.
    ``extra_plugins`` are ``(name, module_or_object)`` pairs registered after the entry points
    (used by tests and by programmatic callers).
    """
    if autoload is None:
        autoload = autoload_enabled()
    pm = FaapPluginManager()
    pm.add_hookspecs(hookspecs)
    sources = _entry_points()
    known = {s.entry_point.name for s in sources} | {name for name, _ in extra_plugins}
    unknown = [name for name in blocked if name not in known]
    if unknown:  # a misspelled name would leave the plugin it meant running
        raise ConfigError(
            f"--disable-plugin {unknown[0]!r}: no plugin has that name; known: {', '.join(sorted(known))}"
        )
    for name in blocked:
        pm.set_blocked(name)
        pm.blocked_names.add(name)
    for source in sources:
        ep = source.entry_point
        if not source.builtin and not autoload:
            continue
        if pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            pm.load_errors.append((ep.name, f"{type(exc).__name__}: {exc}"))
            continue
        _register(pm, ep.name, plugin, source.distribution, source.version, source.builtin)
    for name, plugin in extra_plugins:
        _register(pm, name, plugin, "(programmatic)", "", False)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"a plugin implements an unknown hook: {exc}") from None
    return pm


def _register(pm: FaapPluginManager, name: str, plugin: object, dist: str, version: str, builtin: bool) -> None:
    if pm.is_blocked(name):
        return
    if pm.has_plugin(name):
        raise ConfigError(f"two plugins are named '{name}' ({pm.info[name].distribution} and {dist})")
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin '{name}' is invalid: {exc}") from None
    module = getattr(plugin, "__name__", type(plugin).__name__)
    pm.info[name] = PluginInfo(name, dist, version, module, builtin)
