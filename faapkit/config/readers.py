"""What the user writes: config files (TOML, YAML, JSON) and ``--set key.path=value`` items, read
into plain trees. A byte-order mark reads like none; a YAML 1.1 boolean spelt ``on``/``off``/``yes``/
``no`` is refused by name rather than read as a bool; ``1e-4`` is a number in YAML too."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faapkit.errors import ConfigError

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
# YAML 1.1 (PyYAML) reads "1e-4" as a string: its float pattern needs a dot. YAML 1.2 and every
# user mean a number, so the 1.2 float pattern is added to the loader.
_YAML12_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"""
    r"""|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"""
)


@dataclass(frozen=True)
class _Yaml11Bool:
    """A YAML 1.1 boolean spelt other than true/false (``on``, ``off``, ``yes``, ``no``): kept as
    written, with its line, so that it is refused by name rather than read as a bool."""

    text: str
    line: int


def _construct_bool(loader: Any, node: Any) -> bool | _Yaml11Bool:
    text = str(loader.construct_scalar(node))
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return _Yaml11Bool(text, node.start_mark.line + 1)


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # YAML 1.1 reads `advantaged: on` as True, which then fails as "not a valid string" naming
    # nothing; YAML 1.2 and most users mean the word. Such values are refused by name instead.
    Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)

    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))
    # integers must stay integers: the int resolver (added first for digits) is tried before ours
    for first in "-+0123456789.":
        resolvers = Loader.yaml_implicit_resolvers.get(first, [])
        floats = [r for r in resolvers if r[0] == "tag:yaml.org,2002:float"]
        others = [r for r in resolvers if r[0] != "tag:yaml.org,2002:float"]
        Loader.yaml_implicit_resolvers[first] = others + floats
    return Loader


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``) or JSON (``.json``) config file, each with
    its own parser, into a dict."""
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder: name the TOML, YAML or JSON file in it")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigError(f"config file {path}: unknown format '{suffix}' (use {', '.join(CONFIG_SUFFIXES)})")
    try:
        # utf-8-sig: a file saved with a byte-order mark (Windows editors) reads like one without
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        if suffix in {".yaml", ".yml"}:
            import yaml

            data = yaml.load(text, Loader=_yaml_loader()) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot parse config file {path} as {suffix[1:].upper()}: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a table/mapping at the top level")
    _refuse_yaml11_bools(data, path)
    return data


def _refuse_yaml11_bools(node: Any, path: Path, where: str = "") -> None:
    """The first YAML 1.1 boolean spelt ``on``/``off``/``yes``/``no`` (as a value or a key) is a
    configuration error naming the key and the file, and saying to quote it."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = key.text if isinstance(key, _Yaml11Bool) else key
        here = f"{where}[{name}]" if isinstance(node, list) else f"{where}.{name}" if where else str(name)
        for found, what in ((key, f"the key '{here}'"), (value, f"'{here}'")):
            if isinstance(found, _Yaml11Bool):
                raise ConfigError(
                    f"config file {path}, line {found.line}: {what} is {found.text}, a boolean in YAML 1.1: quote it "
                    f'("{found.text}") if you mean the word, or write true/false'
                )
        _refuse_yaml11_bools(value, path, here)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> (["train", "lr"], 0.0003). Values are TOML literals, else strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key.path=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return [p for p in key.strip().split(".") if p], value
