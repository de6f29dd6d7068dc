"""Plugin commands (``faap_register_commands``) through real ``.dist-info`` entry points: they
run, ``faap --help`` lists them without importing torch, and a name claimed twice is one error
line naming both providers. (``test_hooks.test_hook_faap_register_commands`` is the hook's test.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from faapkit import hookimpl
from faapkit.cli._plugin_commands import requested_command
from faapkit.errors import ConfigError
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.commands import plugin_commands
from tests.conftest import run_here

EXTERNAL = Path(__file__).resolve().parent / "external"
PLUGINS = {"hello": "faap-hello", "twin": "faap-hello-twin", "clash": "faap-clash"}


def command_env(site: Path, *plugins: str) -> dict[str, str]:
    """Environment of a ``faap`` process that finds the named plugins of
    ``external/faap_commands_plugin.py`` as installed distributions (one ``.dist-info`` each)."""
    for plugin in plugins:
        dist = PLUGINS[plugin]
        info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[faap]\n{plugin} = faap_commands_plugin:{plugin}\n")
    path = os.pathsep.join([str(site), str(EXTERNAL), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, "FAAP_DISABLE_PLUGIN_AUTOLOAD": "0", "COLUMNS": "200"}


def test_help_lists_plugin_commands_without_importing_torch(tmp_path):
    code = (
        "import sys; from faapkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'faap --help imported torch'\nprint('ok')"
    )
    env = {**os.environ, **command_env(tmp_path / "site", "hello")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip().endswith("ok")
    assert "hello" in out and "Say hello (a test plugin)." in out and "Print TEXT in capitals." in out
    assert "train" in out  # the built-ins are still there


def test_a_blocked_plugin_s_commands_are_gone(tmp_path):
    code, _, err = run_here("--disable-plugin", "hello", "hello", "greet", env=command_env(tmp_path / "site", "hello"))
    assert code == 2 and "No such command 'hello'" in err


@pytest.mark.parametrize(
    ("plugins", "args", "expected"),
    [
        (
            ("hello", "twin"),
            ("hello", "greet"),
            "error: faap command 'hello' claimed by both plugin 'hello' (faap-hello 0.1) "
            "and plugin 'twin' (faap-hello-twin 0.1)",
        ),
        (
            ("clash",),
            ("--help",),
            "error: faap command 'train' claimed by both faapkit (built-in command) "
            "and plugin 'clash' (faap-clash 0.1)",
        ),
    ],
)
def test_a_command_name_claimed_twice_is_one_error_naming_both(tmp_path, plugins, args, expected):
    code, out, err = run_here(*args, env=command_env(tmp_path / "site", *plugins))
    assert code == 1 and err.strip() == expected and "Traceback" not in err and out == ""


def test_a_registration_that_is_no_command_is_refused():
    class Bad:
        @hookimpl
        def faap_register_commands(self, register):
            register("bad", 42, "")

    pm = make_plugin_manager(extra_plugins=[("bad", Bad())])
    with pytest.raises(ConfigError, match=r"plugin 'bad' .*registered command 'bad' as a int, not a typer.Typer"):
        plugin_commands(pm, {"train"})


def test_the_requested_command_skips_root_options():
    assert requested_command(["--disable-plugin", "hello", "hello", "greet"]) == "hello"
    assert requested_command(["--disable-plugin=x", "train", "--help"]) == "train"
    assert requested_command(["--help"]) is None
