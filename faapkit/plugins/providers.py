"""Who provides what: every registered component with the plugin and distribution behind it
(``faap inspect plugins``, a version's ``--help``) and the providers a training run records in its
manifest. Torch-free, like the rest of the plugin machinery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faapkit.plugins import FaapPluginManager
    from faapkit.plugins.registry import Registries, Registry


def provider(pm: FaapPluginManager, registry: Registry[Any], name: str) -> dict[str, Any]:
    """Who provides ``name`` in ``registry``: the plugin and its distribution."""
    plugin = registry.providers[name]
    info = pm.info.get(plugin)
    return {
        "plugin": plugin,
        "distribution": info.distribution if info else "?",
        "distribution_version": info.version if info else "?",
        "builtin": bool(info and info.builtin),
    }


def component_rows(pm: FaapPluginManager, registries: Registries) -> list[dict[str, Any]]:
    """One row per registered version, loss, head, generator, schedule, detector and logger:
    its kind, name, provider, description and aliases."""
    reg = registries
    rows: list[dict[str, Any]] = []
    for kind, registry in (
        ("version", reg.versions),
        ("loss", reg.losses),
        ("head", reg.heads),
        ("generator", reg.generators),
        ("schedule", reg.schedules),
        ("detector", reg.detectors),
        ("logger", reg.loggers),
    ):
        for name in registry:
            found = provider(pm, registry, name)
            rows.append(
                {
                    "kind": kind,
                    "name": name,
                    **{k: found[k] for k in ("plugin", "distribution", "builtin")},
                    "description": getattr(registry.entries[name], "description", ""),
                    "aliases": list(getattr(registry.entries[name], "aliases", ())),
                }
            )
    return rows


def version_providers(pm: FaapPluginManager, registries: Registries, version: str) -> dict[str, object]:
    """What a run of ``version`` records of its parts (version, loss, head, schedules): each
    part's name and the plugin and distribution providing it."""
    reg = registries
    spec = reg.versions.get(version)
    items: dict[str, tuple[Registry[Any], str]] = {"version": (reg.versions, version), "loss": (reg.losses, spec.loss)}
    if spec.head:
        items["head"] = (reg.heads, spec.head)
    for role, name in spec.schedules.items():
        items[f"schedule.{role}"] = (reg.schedules, name)
    out: dict[str, object] = {}
    for key, (registry, name) in items.items():
        found = provider(pm, registry, name)
        out[key] = {"name": name, **{k: found[k] for k in ("plugin", "distribution", "distribution_version")}}
    return out


def version_names(registries: Registries) -> list[str]:
    """The registered versions as ``--help`` names them: ``name (alias a, b)``."""
    return [
        name + (f" (alias {', '.join(spec.aliases)})" if spec.aliases else "")
        for name, spec in sorted(registries.versions.entries.items())
    ]
