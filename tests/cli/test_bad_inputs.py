"""The bad-input matrix: every case through the CLI (in this process; `faap` as a process is
tested in test_cli_basics), one clear line, non-zero exit, no traceback,
and no damage to an existing run folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch

from faapkit.data.synth import SynthSpec, write_synthetic
from tests.conftest import run_here

SMALL = SynthSpec(seed=5, splits=(("train", 8, 8), ("test", 6, 6)))
QUICK = ["--max-steps", "1", "--set", "train.batch_size=4", "--quiet"]


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory, synth_root):
    base = tmp_path_factory.mktemp("bad")
    data = write_synthetic(base / "data", SMALL) / "coco"
    run = base / "run"
    code, _, err = run_here("train", "--version", "4th", "--out", str(run), *QUICK)
    assert code == 0, err
    from faapkit.plugins import make_plugin_manager
    from faapkit.plugins.registry import Registries

    r18 = Registries.from_plugin_manager(make_plugin_manager()).detectors.get("detr-r18-d64")
    model = r18.build().model
    torch.save({"model": model.state_dict()}, base / "r18.pth")
    good = Path(__import__("faapkit").__file__).parent / "weights" / "detr-synth-tiny.pth"
    (base / "truncated.pth").write_bytes(good.read_bytes()[:4096])
    plugins = base / "plugins"
    _fake_dist(
        plugins,
        "nanplugin",
        """
        from faapkit import hookimpl
        from faapkit.plugins.specs import LossSpec, VersionSpec

        def build():
            from faapkit.losses.base import LossOutput, LossStrategy

            class NaNLoss(LossStrategy):
                def __call__(self, x):
                    return LossOutput(x.detection * float("nan"))
            return NaNLoss()

        @hookimpl
        def faap_register_losses(register):
            register(LossSpec(name="nan_loss", factory=build))

        @hookimpl
        def faap_register_versions(register):
            register(VersionSpec(name="nan-test", loss="nan_loss", head=None,
                                 schedules={"epsilon": "constant", "beta": "linear"}))
    """,
    )
    broken = base / "broken_plugins"
    _fake_dist(broken, "brokenplugin", "raise RuntimeError('this plugin is broken on purpose')")
    return {"base": base, "data": data, "run": run, "plugins": plugins, "broken": broken}


def _fake_dist(folder: Path, name: str, source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[faap]\n{name} = {name}\n")


def _mutate(world, name: str, fn) -> Path:
    """A fresh copy of the small dataset, changed by ``fn(coco_root)``."""
    dst = world["base"] / f"data-{name}"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(world["data"], dst)
    fn(dst)
    return dst


def _ann(root: Path, split: str = "train") -> Path:
    return root / "annotations" / f"instances_{split}.json"


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _drop_attr(d):
    del d["images"][0]["attributes"]["gender"]


def _all_male(d):
    for im in d["images"]:
        im["attributes"]["gender"] = "male"


def _first_image(root: Path) -> Path:
    return sorted((root / "images" / "train").iterdir())[0]


CASES = {
    "unknown config key": (lambda w: ["train", "--set", "train.nosuchkey=1"], 2, "unknown key 'train.nosuchkey'"),
    "wrong type": (lambda w: ["train", "--set", "train.epochs='many'"], 2, "train.epochs"),
    # 4th's epsilon schedule (warmup/hold/cooldown) has the start and peak these cases bound
    "negative epsilon": (
        lambda w: ["train", "--version", "4th", "--set", "schedules.epsilon.start=-0.1"],
        2,
        "invalid value for 'schedules.epsilon.start'",
    ),
    "epsilon above 1": (
        lambda w: ["train", "--version", "4th", "--set", "schedules.epsilon.peak=1.5"],
        2,
        "invalid value for 'schedules.epsilon.peak'",
    ),
    "unknown version": (lambda w: ["train", "--version", "9th"], 2, "unknown version '9th'"),
    "unknown detector": (lambda w: ["train", "--set", "detector.name='detr-x'"], 2, "unknown detector 'detr-x'"),
    "missing dataset root": (
        lambda w: ["train", "--set", f"data.root='{w['base'] / 'nope'}'"],
        1,
        "dataset root not found",
    ),
    "missing annotation file": (
        lambda w: ["train", "--set", f"data.root='{_mutate(w, 'noann', lambda r: _ann(r).unlink())}'"],
        1,
        "annotation file for split 'train' not found",
    ),
    "broken annotation json": (
        lambda w: ["train", "--set", f"data.root='{_mutate(w, 'badjson', lambda r: _ann(r).write_text('{'))}'"],
        1,
        "is not valid JSON",
    ),
    "image file missing": (
        lambda w: ["train", "--set", f"data.root='{_mutate(w, 'noimg', lambda r: _first_image(r).unlink())}'"],
        1,
        "image file(s) listed in the annotations are missing",
    ),
    "corrupt image": (
        lambda w: [
            "train",
            "--set",
            f"data.root='{_mutate(w, 'corrupt', lambda r: _first_image(r).write_bytes(b'xx'))}'",
        ],
        1,
        "corrupt image",
    ),
    "image without the attribute": (
        lambda w: ["train", "--set", f"data.root='{_mutate(w, 'noattr', lambda r: _edit_json(_ann(r), _drop_attr))}'"],
        1,
        "lack attribute 'gender'",
    ),
    "group with zero images": (
        lambda w: ["train", "--set", f"data.root='{_mutate(w, 'onegroup', lambda r: _edit_json(_ann(r), _all_male))}'"],
        1,
        "group 'female' of attribute 'gender' has no images",
    ),
    "split-by absent attribute": (
        lambda w: ["train", "--set", f"data.root='{w['data']}'", "--set", "data.split_by='skin'"],
        1,
        "has attribute 'skin'",
    ),
    "eval split-by absent attribute": (lambda w: ["eval", str(w["run"]), "--split-by", "skin"], 1, "attribute 'skin'"),
    "checkpoint of the wrong architecture": (
        lambda w: ["train", "--set", f"detector.checkpoint='{w['base'] / 'r18.pth'}'"],
        1,
        "does not fit detector",
    ),
    "truncated checkpoint": (
        lambda w: ["train", "--set", f"detector.checkpoint='{w['base'] / 'truncated.pth'}'"],
        1,
        "truncated",
    ),
    "missing detector checkpoint": (
        lambda w: ["train", "--set", f"detector.checkpoint='{w['base'] / 'none.pth'}'"],
        1,
        "checkpoint not found",
    ),
    "output dir not writable": (lambda w: ["train", "--out", str(w["base"] / "r18.pth" / "run")], 1, "not writable"),
    # a file as the run folder said 'is not writable: File exists'
    "output folder is a file": (lambda w: ["train", "--out", str(w["base"] / "r18.pth")], 1, "r18.pth is a file"),
    # --nproc 0 trained as one process (faap eval refuses it)
    "train --nproc 0": (lambda w: ["train", "--nproc", "0"], 2, "--nproc must be at least 1, got 0"),
    "existing run without --resume": (lambda w: ["train", "--out", str(w["run"])], 1, "already holds a run"),
    "resume with a different config": (
        lambda w: ["train", "--resume", str(w["run"]), "--set", "train.lr=0.5"],
        2,
        "the config differs in train.lr",
    ),
    # option values, refused before any work as configuration errors (exit 2; --epsilon was 1)
    "eval epsilon above 1": (lambda w: ["eval", str(w["run"]), "--epsilon", "2"], 2, "--epsilon must be in (0, 1]"),
    "eval epsilon 0": (lambda w: ["eval", str(w["run"]), "--epsilon", "0"], 2, "--epsilon must be in (0, 1]"),
    "eval epoch -1": (lambda w: ["eval", str(w["run"]), "--epoch", "-1"], 2, "--epoch must be at least 0, got -1"),
    "eval of a detector checkpoint": (
        lambda w: ["eval", str(w["base"] / "r18.pth")],
        1,
        "does not hold perturbation-generator weights",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, world):
    args_fn, code_expected, message = CASES[case]
    before = tree_digest(world["run"])
    args = args_fn(world)
    if args[0] == "train" and "--out" not in args and "--resume" not in args:
        args += ["--out", str(world["base"] / f"out-{case.replace(' ', '-')}")]
    code, out, err = run_here(*args, *([] if args[0] != "train" else QUICK))
    assert code == code_expected, (case, code, err)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and message in lines[0], lines[0]
    assert "Traceback" not in err
    assert tree_digest(world["run"]) == before, "the existing run folder changed"


def test_nan_loss_is_skipped_counted_and_aborts(world):
    out = world["base"] / "nan-run"
    env = {"PYTHONPATH": str(world["plugins"]), "FAAP_DISABLE_PLUGIN_AUTOLOAD": "0"}
    code, _, err = run_here(
        "train",
        "--version",
        "nan-test",
        "--out",
        str(out),
        "--set",
        "train.max_nonfinite=2",
        "--set",
        "train.batch_size=4",
        "--quiet",
        env=env,
    )
    assert code == 1 and "3 non-finite steps in epoch 0 (limit train.max_nonfinite=2)" in err and "Traceback" not in err
    assert (out / "run.json").is_file() and not list((out / "checkpoints").iterdir())


def test_nan_steps_below_the_limit_are_counted(world):
    out = world["base"] / "nan-run-2"
    env = {"PYTHONPATH": str(world["plugins"]), "FAAP_DISABLE_PLUGIN_AUTOLOAD": "0"}
    code, _, err = run_here(
        "train",
        "--version",
        "nan-test",
        "--out",
        str(out),
        "--set",
        "train.max_nonfinite=5",
        "--max-steps",
        "3",
        "--set",
        "train.batch_size=4",
        "--quiet",
        env=env,
    )
    assert code == 0, err
    ckpt = torch.load(next((out / "checkpoints").iterdir()), weights_only=True)
    assert ckpt["nonfinite"] == 3 and ckpt["skips"] == {"non-finite loss or gradient": 3}


def test_plugin_raising_at_import_is_a_counted_warning(world):
    env = {"PYTHONPATH": str(world["broken"]), "FAAP_DISABLE_PLUGIN_AUTOLOAD": "0"}
    code, out, err = run_here("inspect", "plugins", "--json", env=env)
    assert code == 0
    data = json.loads(out)
    assert data["load_errors"] == [
        {"plugin": "brokenplugin", "error": "RuntimeError: this plugin is broken on purpose"}
    ]
    assert "warning: plugin 'brokenplugin' failed to load" in err and "Traceback" not in err
    assert any(c["name"] == "4th" for c in data["components"])


def test_malicious_generator_checkpoint_is_refused(world, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"generator": Evil()}))
    code, out, err = run_here("eval", str(path))
    assert code == 1 and "refusing to load" in err and "pwned" not in out + err
