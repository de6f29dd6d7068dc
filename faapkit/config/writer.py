"""A resolved configuration written back as TOML (``faap config show``, a run's ``config.toml``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def to_toml(data: Mapping[str, Any]) -> str:
    """A resolved config as TOML that ``tomllib`` reads back to the same values (``tomli-w``
    quotes every key that needs it, e.g. a group named ``skin 6-10``). TOML has no null: unset
    (``None``) settings are left out and named in a comment at the top, so that what is unset
    stays visible."""
    import tomli_w

    unset: list[str] = []
    kept = _without_none(data, "", unset)
    # json-escaped: a key holding a newline would otherwise end the comment and break the TOML
    head = "".join(f"# {json.dumps(key)[1:-1]} = (unset)\n" for key in unset)
    return head + tomli_w.dumps(kept)


def _without_none(node: Any, where: str, unset: list[str]) -> Any:
    """``node`` without its ``None`` values (their dotted keys appended to ``unset``); a ``None``
    inside a list has no key to leave out and is refused by tomli-w as it should be."""
    if not isinstance(node, Mapping):
        return node
    kept: dict[str, Any] = {}
    for key, value in node.items():
        here = f"{where}.{key}" if where else str(key)
        if value is None:
            unset.append(here)
        else:
            kept[str(key)] = _without_none(value, here, unset)
    return kept
