"""The public plugin API: what a plugin may import, torch-free until a loss is built."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import faapkit.plugin_api as api

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "faap-example-plugin" / "faap_example_plugin.py"


def faapkit_imports(path: Path) -> set[str]:
    """Every ``faapkit...`` module a file imports, at any depth (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.split(".")[0] == "faapkit"}


def test_the_example_plugin_uses_the_public_api_alone():
    assert faapkit_imports(EXAMPLE) == {"faapkit.plugin_api"}


def test_builtin_version_plugins_use_the_public_api_alone():
    versions = sorted((REPO / "plugins").glob("v*.py"))
    assert len(versions) >= 6
    for path in versions:
        assert faapkit_imports(path) == {"faapkit.plugin_api"}, path.name


def test_every_builtin_plugin_uses_the_public_api_alone():
    modules = sorted((REPO / "plugins").glob("*.py"))
    assert len(modules) >= 9
    for path in modules:
        assert faapkit_imports(path) <= {"faapkit.plugin_api"}, path.name


def test_the_machinery_builds_no_plugin_manager_on_import():
    code = (
        "import gc, sys, faapkit, faapkit.plugin_api, faapkit.plugins\n"
        "from faapkit.plugins import FaapPluginManager\n"
        "assert not [o for o in gc.get_objects() if isinstance(o, FaapPluginManager)], 'a manager at import'\n"
        "assert 'faap_plugins' not in sys.modules, 'a plugin was loaded at import'\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_importing_the_api_does_not_import_torch():
    code = "import sys, faapkit.plugin_api\nassert 'torch' not in sys.modules, 'plugin_api imported torch'\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_lazy_loss_parts_are_the_engine_s_own():
    from faapkit.losses import base, common

    assert api.LossStrategy is base.LossStrategy and api.LossInputs is base.LossInputs
    assert api.image_scores is common.image_scores
    assert set(api._LAZY) <= set(api.__all__)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'LossStrategie'"):
        api.LossStrategie  # noqa: B018


def test_options_are_strict_and_closed():
    from pydantic import ValidationError

    class Opts(api.Options):
        k: int = 1

    with pytest.raises(ValidationError):
        Opts.model_validate({"k": "1"})
    with pytest.raises(ValidationError):
        Opts.model_validate({"kk": 1})
