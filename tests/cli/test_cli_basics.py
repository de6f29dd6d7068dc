import json
import os
import subprocess
import sys

from tests.conftest import run_cli, run_here


def test_help_does_not_import_torch():
    code = (
        "import sys; from faapkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'faap --help imported torch'\nprint('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("ok")


def test_version_help_names_what_is_registered_without_torch():
    code = (
        "import sys; from faapkit.cli import main\n"
        "blocked = ['--disable-plugin', 'level_up', 'train', '--help']\n"
        "joined = ['--disable-plugin=level_up', 'train', '--help']\n"
        "for cmd in (['train', '--help'], ['config', 'show', '--help'], blocked, joined):\n"
        "    try:\n        main(cmd)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'train --help imported torch'\n"
    )
    env = {**os.environ, "COLUMNS": "250"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    listed = [line for line in out.splitlines() if "method version:" in line]
    assert len(listed) == 4, out
    assert all("1st, 2nd, 3rd, 4th, 7th" in line for line in listed)
    assert "level-up" in listed[0] and "level-up" in listed[1]
    assert "level-up" not in listed[2] and "level-up" not in listed[3]


def test_every_command_has_help():
    for cmd in (
        ["train"],
        ["eval"],
        ["compare"],
        ["inspect"],
        ["inspect", "plugins"],
        ["config", "show"],
        ["data", "synth"],
        ["detector", "pretrain"],
        ["probe", "headroom"],
    ):
        code, out, err = run_here(*cmd, "--help")
        assert code == 0, (cmd, err)
        assert "Usage" in out


def test_config_show_resolves_version_defaults():
    code, out, err = run_here("config", "show", "--version", "4th", "--json")
    assert code == 0, err
    cfg = json.loads(out)
    assert cfg["version"] == "4th"
    assert cfg["train"]["max_norm"] == 0.5 and cfg["train"]["augment"] == "weak"
    assert cfg["loss"]["temperature"] == 0.1 and cfg["loss"]["lambda_align"] == 0.3
    assert cfg["schedules"]["epsilon"]["name"] == "three_phase_to_end"


def test_config_show_toml_and_override():
    code, out, _ = run_here("config", "show", "--version", "1st", "--set", "train.lr=3e-4")
    assert code == 0
    assert "lr = 0.0003" in out and 'version = "1st"' in out


def test_unknown_version_is_one_line_error():
    """``python -m faapkit`` as its own process (the other tests here run it in-process): the
    exit code and the one stderr line are the process's."""
    code, out, err = run_cli("config", "show", "--version", "9th")
    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown version '9th'" in err and "Traceback" not in err


def test_unknown_key_lists_valid_keys():
    code, _, err = run_here("config", "show", "--set", "train.nosuchkey=1")
    assert code == 2
    assert "unknown key 'train.nosuchkey'" in err and "batch_size" in err and "Traceback" not in err


def test_wrong_type_is_rejected():
    code, _, err = run_here("config", "show", "--set", "train.epochs=many")
    assert code == 2 and "train.epochs" in err


def test_config_file_toml_and_yaml(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('version = "3rd"\n[train]\nbatch_size = 6\n[loss]\nalpha = 0.5\n')
    code, out, err = run_here("config", "show", "--config", str(toml), "--json")
    assert code == 0, err
    cfg = json.loads(out)
    assert cfg["version"] == "3rd" and cfg["train"]["batch_size"] == 6 and cfg["loss"]["alpha"] == 0.5
    yaml = tmp_path / "c.yaml"
    yaml.write_text("version: 2nd\nloss:\n  temperature: 0.2\n")
    code, out, err = run_here("config", "show", "--config", str(yaml), "--json")
    assert code == 0, err
    assert json.loads(out)["loss"]["temperature"] == 0.2
    bad = tmp_path / "bad.toml"
    bad.write_text("[loss]\nnot_an_option = 1\n")
    code, _, err = run_here("config", "show", "--version", "4th", "--config", str(bad))
    assert code == 2 and "loss.not_an_option" in err


def test_probe_headroom_writes_its_report_and_never_overwrites(tmp_path, synth_root):
    out = tmp_path / "headroom.json"
    args = ("probe", "headroom", "--split", "val", "--limit-images", "4", "--steps", "1", "--bootstrap", "20")
    code, stdout, err = run_here(*args, "--out", str(out), "--json")
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report == json.loads(stdout) and report["oracle"]["steps"] == 1
    assert set(report["lift"]) == {"female", "male"} and "oracle" in err
    code, _, err = run_here(*args, "--out", str(out))
    assert code != 0 and "--force" in err and len(err.strip().splitlines()) == 1
    for bad, says in (
        (("--disadvantaged", "nope"), "not a group"),
        (("--disadvantaged", "male"), "both 'male'"),
        (("--bootstrap", "1"), "at least 10"),
        (("--bootstrap", "-5"), "at least 10"),
    ):
        code, _, err = run_here(*args[:-2], *bad)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, (bad, err)


def test_inspect_plugins_names_the_provider_of_every_kind():
    code, out, err = run_here("inspect", "plugins", "--json")
    assert code == 0, err
    rows = json.loads(out)["components"]
    kinds = {r["kind"] for r in rows}
    assert kinds == {"version", "loss", "head", "generator", "schedule", "detector", "logger"}
    by_name = {(r["kind"], r["name"]): r for r in rows}
    assert by_name[("generator", "subpixel")]["plugin"] == "components"
    assert by_name[("version", "level-up")]["plugin"] == "level_up"
    assert all(r["distribution"] == "faapkit" and r["builtin"] for r in rows)


def test_notes_and_warnings_print_their_text_not_markup(capsys):
    """A hint such as ``pip install 'faapkit[mlflow]'`` keeps its brackets on stderr."""
    from faapkit.cli._console import info, warn

    warn("not installed (pip install 'faapkit[mlflow]')")
    info("reads only its [eval] section")
    err = capsys.readouterr().err
    assert "pip install 'faapkit[mlflow]'" in err and "its [eval] section" in err


def test_a_plain_train_trains_the_default_version_and_its_help_says_which(tmp_path, synth_root):
    from faapkit.config.defaults import DEFAULT_VERSION

    assert DEFAULT_VERSION == "level-up"
    code, out, err = run_here("train", "--help", env={"COLUMNS": "250"})
    assert code == 0, err
    assert f"(default: {DEFAULT_VERSION} on the embedded benchmark)" in out and "default: 4th" not in out
    code, out, err = run_here("config", "show", "--json")
    assert code == 0 and json.loads(out)["version"] == DEFAULT_VERSION, err
    tiny = [f"data.root='{synth_root}'", "train.batch_size=4", "train.steps_per_epoch=1", "train.val_every=0"]
    tiny += ["generator.channels=8", "data.limit_images=8"]
    run = tmp_path / "run"
    code, _, err = run_here(
        "train", "--out", str(run), "--max-steps", "1", "--quiet", *(a for s in tiny for a in ("--set", s))
    )
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["version"] == "level-up"
