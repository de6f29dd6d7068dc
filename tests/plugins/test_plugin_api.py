"""The public plugin API: what a plugin may import, torch-free until a loss is built."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import faapkit.plugin_api as api

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*/*.py"))


def imported(path: Path) -> tuple[set[str], set[str]]:
    """Every module a file imports, at any depth (lazy imports included), and every name it
    imports from ``faapkit.plugin_api``."""
    modules: set[str] = set()
    api_names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            if node.module == "faapkit.plugin_api":
                api_names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules, api_names


def faapkit_imports(path: Path) -> set[str]:
    """Every ``faapkit...`` module a file imports, at any depth (lazy imports included)."""
    return {n for n in imported(path)[0] if n.split(".")[0] == "faapkit"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_example_plugin_uses_the_public_api_alone(path):
    """Of faapkit an example imports ``faapkit.plugin_api`` and its public names only: no built-in
    plugin (``faap_plugins``), no engine module, no private name."""
    modules, api_names = imported(path)
    assert {m for m in modules if m.split(".")[0] in {"faapkit", "faap_plugins"}} == {"faapkit.plugin_api"}
    assert api_names <= set(api.__all__), sorted(api_names - set(api.__all__))


def test_every_example_is_covered():
    assert {p.parent.name for p in EXAMPLES} >= {
        "faap-example-plugin",
        "faap-search-plugin",
        "faap-level-up-plus-plugin",
    }


def test_builtin_version_plugins_use_the_public_api_alone():
    """A version is one package: its registration (``__init__``) and its loss (``loss.py``)."""
    versions = sorted(p.parent for p in (REPO / "plugins" / "faap_plugins").glob("*/loss.py"))
    assert len(versions) >= 6
    for folder in versions:
        assert {p.name for p in folder.glob("*.py")} == {"__init__.py", "loss.py"}, folder.name
        for path in folder.glob("*.py"):
            assert faapkit_imports(path) == {"faapkit.plugin_api"}, f"{folder.name}/{path.name}"


def test_every_builtin_plugin_uses_the_public_api_alone():
    modules = sorted((REPO / "plugins").rglob("*.py"))
    assert len(modules) >= 15
    for path in modules:
        assert faapkit_imports(path) <= {"faapkit.plugin_api"}, path.name


def test_registering_a_version_imports_no_loss_and_no_torch():
    """The version packages' ``__init__`` name their loss by string: loading every plugin (what
    ``faap --help`` does) imports no ``loss.py`` and no torch."""
    code = (
        "import sys\n"
        "from faapkit.plugins import make_plugin_manager\n"
        "from faapkit.plugins.registry import Registries\n"
        "Registries.from_plugin_manager(make_plugin_manager())\n"
        "assert 'faap_plugins.v1st' in sys.modules, 'the version plugins were not loaded'\n"
        "assert not [m for m in sys.modules if m.startswith('faap_plugins.') and m.endswith('.loss')]\n"
        "assert 'torch' not in sys.modules, 'registering imported torch'\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_every_version_s_loss_factory_resolves():
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries
    from faapkit.plugins.specs import resolve_factory

    registries = Registries.from_plugin_manager(make_plugin_manager())
    for name in ("1st", "2nd", "3rd", "4th", "7th", "level-up"):
        spec = registries.losses.get(registries.versions.get(name).loss)
        assert isinstance(spec.factory, str) and spec.factory.startswith("faap_plugins.")
        assert issubclass(resolve_factory(spec.factory), api.LossStrategy), name


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


def test_the_built_ins_plugins_build_on_are_the_registered_ones():
    """The generators and level-up's loss the API exports are what the registered names build."""
    from faapkit.generators import perturb, subpixel, transformer_aware
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries
    from faapkit.plugins.specs import resolve_factory

    reg = Registries.from_plugin_manager(make_plugin_manager())
    loss = reg.losses.get(reg.versions.get("level-up").loss)
    assert resolve_factory(loss.factory) is api.LevelUpDetection and loss.options is api.LevelUpOptions
    assert issubclass(api.LevelUpDetection, api.LossStrategy)
    assert api.ResearchUNetGenerator is perturb.ResearchUNetGenerator
    assert api.SubPixelGenerator is subpixel.SubPixelGenerator
    assert api.DetectorAwareGenerator is subpixel.DetectorAwareGenerator
    assert api.TransformerAwareGenerator is transformer_aware.TransformerAwareGenerator
    assert api.pad_to_multiple_of_4 is subpixel.pad_to_multiple_of_4


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
