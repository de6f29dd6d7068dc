"""Every hook has a test here (meta-tested), plus plugin-manager behaviour."""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path

import pluggy
import pytest

from faapkit import hookimpl
from faapkit.errors import ConfigError, DuplicateNameError, UnknownNameError
from faapkit.plugins import hookspecs, make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.plugins.specs import DetectorSpec, GeneratorSpec, HeadSpec, LoggerSpec, LossSpec, ScheduleSpec, VersionSpec

HOOKS = sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("faap_"))


def test_every_hook_has_a_test():
    this = sys.modules[__name__]
    missing = [h for h in HOOKS if not hasattr(this, f"test_hook_{h}")]
    assert not missing, f"hooks without a test: {missing}"


def test_every_hook_is_documented():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "plugin-hooks.md").read_text()
    for h in HOOKS:
        assert f"## {h}(" in doc, f"{h} missing from docs/plugin-hooks.md"


def _with(obj, name="testplugin"):
    return make_plugin_manager(extra_plugins=[(name, obj)])


def test_hook_faap_register_versions(registries):
    assert {"1st", "2nd", "3rd", "4th", "7th"} <= set(registries.versions)
    assert registries.versions.providers["4th"] == "v4th"

    class P:
        @hookimpl
        def faap_register_versions(self, register):
            register(
                VersionSpec(
                    name="4th-short",
                    loss="infonce_anchor_aligned",
                    head="stabilized_mlp",
                    schedules={"epsilon": "constant", "beta": "linear"},
                )
            )

    reg = Registries.from_plugin_manager(_with(P()))
    assert reg.versions.provider("4th-short") == "testplugin"


def _version_plugin(name, aliases=(), schedules=None):
    class P:
        @hookimpl
        def faap_register_versions(self, register):
            register(
                VersionSpec(
                    name=name,
                    aliases=aliases,
                    loss="infonce_anchor_aligned",
                    head="stabilized_mlp",
                    schedules=schedules or {"epsilon": "constant", "beta": "linear"},
                )
            )

    return P()


def test_a_version_alias_resolves_to_the_canonical_name():
    from faapkit.config import resolve_config

    reg = Registries.from_plugin_manager(_with(_version_plugin("4th-short", aliases=("4s", "short"))))
    assert reg.versions.get("short").name == "4th-short" and reg.versions.provider("4s") == "testplugin"
    assert resolve_config(reg, version="4s").version == "4th-short"
    with pytest.raises(UnknownNameError, match="did you mean 'short'"):
        reg.versions.get("shrot")


@pytest.mark.parametrize(
    ("first", "second", "claimed", "held"),
    [
        (("a", ("4th",)), None, "4th", "version '4th'"),  # an alias taking a built-in's name
        (("a", ("x",)), ("b", ("x",)), "x", "an alias of version 'a'"),  # one alias, two versions
        (("a", ("x",)), ("x", ()), "x", "an alias of version 'a'"),  # a name taking an alias
    ],
)
def test_a_name_or_alias_claimed_twice_names_both_plugins(first, second, claimed, held):
    plugins = [("one", _version_plugin(*first))] + ([("two", _version_plugin(*second))] if second else [])
    owner = "one" if second else "v4th"
    claimer = "two" if second else "one"
    with pytest.raises(DuplicateNameError) as info:
        Registries.from_plugin_manager(make_plugin_manager(extra_plugins=plugins))
    message = str(info.value)
    assert f"'{claimed}' claimed by both plugin '{owner}' ({held}) and plugin '{claimer}'" in message


def test_a_schedule_of_another_kind_is_refused_naming_both():
    bad = _version_plugin("eps-from-lr", schedules={"epsilon": "warmup_cosine", "beta": "linear"})
    with pytest.raises(
        ConfigError,
        match=(
            "version 'eps-from-lr' \\(plugin 'testplugin'\\): schedule 'warmup_cosine' \\(plugin 'components'\\) "
            "is an 'lr' schedule, but role 'epsilon' takes an 'epsilon' schedule"
        ),
    ):
        Registries.from_plugin_manager(_with(bad))
    from faapkit.config import resolve_config

    reg = Registries.from_plugin_manager(make_plugin_manager())
    with pytest.raises(ConfigError, match="schedules.epsilon.name: schedule 'warmup_cosine' is an 'lr' schedule"):
        resolve_config(reg, version="4th", overrides=["schedules.epsilon.name='warmup_cosine'"])
    # a schedule of no kind fits every role
    assert resolve_config(reg, version="4th", overrides=["schedules.lr.name='constant'", "schedules.lr.value=1.0"])


def test_hook_faap_register_losses():
    class P:
        @hookimpl
        def faap_register_losses(self, register):
            register(LossSpec(name="my_loss", factory="faap_plugins.v4th.loss:AnchorAlignedInfoNCE"))

    reg = Registries.from_plugin_manager(_with(P()))
    assert reg.losses.provider("my_loss") == "testplugin"


def test_hook_faap_register_heads(registries):
    assert registries.heads.provider("simclr_mlp") == "components"
    head = registries.heads.get("stabilized_mlp").build(feature_dim=32)
    import torch

    z = head(torch.randn(3, 5, 32))
    assert z.shape == (3, 128) and torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)


def test_hook_faap_register_schedules(registries):
    spec = registries.schedules.get("linear")
    assert spec.value(0, 24, {"start": 0.5, "end": 0.6}) == 0.5
    assert spec.value(23, 24, {"start": 0.5, "end": 0.6}) == pytest.approx(0.6)

    class P:
        @hookimpl
        def faap_register_schedules(self, register):
            register(ScheduleSpec(name="halving", factory=lambda e, t, **o: 0.1 / 2**e))

    reg = Registries.from_plugin_manager(_with(P()))
    assert reg.schedules.get("halving").value(2, 10, {}) == pytest.approx(0.025)


def test_hook_faap_register_generators(registries, tmp_path):
    """A plugin's generator is chosen by ``generator.name`` and trained by the same engine."""
    import torch

    assert registries.generators.provider("subpixel") == "components"

    class Constant(torch.nn.Module):
        def __init__(self, epsilon: float, level: float) -> None:
            super().__init__()
            self.epsilon, self.level = epsilon, level
            self.scale = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return self.epsilon * torch.tanh(self.scale + self.level) * torch.ones_like(x)

    from pydantic import BaseModel, ConfigDict

    class ConstantOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        level: float = 0.5

    class P:
        @hookimpl
        def faap_register_generators(self, register):
            register(GeneratorSpec(name="constant", factory=Constant, options=ConstantOptions))

    reg = Registries.from_plugin_manager(_with(P()))
    assert reg.generators.provider("constant") == "testplugin"
    from faapkit.config import resolve_config

    cfg = resolve_config(reg, version="4th", overrides=["generator.name=constant", "generator.level=0.25"])
    assert cfg.generator == {"name": "constant", "level": 0.25}
    with pytest.raises(ConfigError, match="generator.levels"):
        resolve_config(reg, version="4th", overrides=["generator.name=constant", "generator.levels=1"])
    gen = reg.generators.get("constant").build(epsilon=0.1, level=0.25)
    expected = 0.1 * float(torch.tanh(torch.tensor(0.25)))
    assert float(gen(torch.zeros(1, 3, 4, 4)).detach().max()) == pytest.approx(expected)


def tiny_body(dilation):
    """A plugin's backbone body, named in ``arch`` as ``"tests.plugins.test_hooks:tiny_body"``:
    one stride-8 conv, ``(B, 3, H, W) -> {"0": (B, 24, H/8, W/8)}``."""
    import torch

    class Body(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 24, 8, 8)

        def forward(self, x):
            return {"0": self.conv(x)}

    return Body(), 24


def test_hook_faap_register_detectors(registries):
    """A plugin's detector is what its factory builds (here with a backbone of its own); a factory
    that returns something else, or an arch that does not fit it, is one ConfigError."""
    import torch

    from faapkit.detr.frozen import load_detector
    from faapkit.plugins.specs import DetectorParts

    assert {"detr-r50", "detr-r101", "detr-synth-tiny"} <= set(registries.detectors)
    arch = {"hidden_dim": 32, "nheads": 2, "enc_layers": 1, "dec_layers": 1, "dim_feedforward": 64}
    arch |= {"num_queries": 3, "num_classes": 2, "backbone": "tests.plugins.test_hooks:tiny_body"}

    class P:
        @hookimpl
        def faap_register_detectors(self, register):
            register(DetectorSpec(name="detr-mine", factory="faapkit.detr.build:detr_parts", arch=arch))
            register(DetectorSpec(name="tuple", factory="faapkit.detr.build:build_detr", arch=arch))
            register(DetectorSpec(name="misfit", factory="faapkit.detr.build:detr_parts", arch={"layers": 2}))

    reg = Registries.from_plugin_manager(_with(P()))
    assert reg.detectors.provider("detr-mine") == "testplugin"
    parts = reg.detectors.get("detr-mine").build()
    assert isinstance(parts, DetectorParts) and (parts.num_queries, parts.num_classes, parts.feature_dim) == (3, 2, 32)
    det = load_detector(reg.detectors.get("detr-mine"), allow_random=True)
    out = det(torch.randn(2, 3, 64, 48), torch.zeros(2, 64, 48, dtype=torch.bool))
    assert out["pred_logits"].shape == (2, 3, 3) and out["pred_boxes"].shape == (2, 3, 4)
    assert det.model.backbone[0].num_channels == 24 and out["features"].shape == (2, 3, 32)
    with pytest.raises(ConfigError, match="detector 'tuple'.*returned a tuple, not the DetectorParts"):
        reg.detectors.get("tuple").build()
    with pytest.raises(ConfigError, match="detector 'misfit': its arch does not fit its factory"):
        reg.detectors.get("misfit").build()
    unknown = DetectorSpec(name="x", factory="faapkit.detr.build:detr_parts", arch={**arch, "backbone": "vgg"})
    with pytest.raises(ConfigError, match="unknown backbone 'vgg'; known: tinyconv, resnet18"):
        unknown.build()


def test_hook_faap_register_loggers(registries, tmp_path, synth_root):
    """A plugin's logger, chosen by ``train.loggers``, receives every step's scalars (log_every=1)
    between one open and one close, next to the built-in CSV."""
    assert registries.loggers.provider("csv") == registries.loggers.provider("tensorboard") == "components"
    calls: list[tuple] = []

    class Memory:
        def __init__(self, run_dir, prefix):
            self.run_dir, self.prefix = run_dir, prefix

        def open(self, start_step):
            calls.append(("open", start_step))

        def log(self, split, step, epoch, scalars):
            calls.append(("log", split, step, epoch, {f"{self.prefix}{k}": v for k, v in scalars.items()}))

        def close(self):
            calls.append(("close",))

    from pydantic import BaseModel, ConfigDict

    class MemoryOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prefix: str = ""

    class P:
        @hookimpl
        def faap_register_loggers(self, register):
            register(LoggerSpec(name="memory", factory=Memory, options=MemoryOptions))

    reg = Registries.from_plugin_manager(_with(P()))
    assert reg.loggers.provider("memory") == "testplugin"
    from faapkit.config import resolve_config
    from faapkit.train.trainer import Trainer

    overrides = ["train.batch_size=4", "data.limit_images=24", "train.epochs=1", "train.steps_per_epoch=2"]
    overrides += ["train.val_every=0", "generator.channels=8", "train.log_every=1"]
    overrides += ["train.loggers=['csv', 'memory']", "train.logger_options.memory.prefix='m/'"]
    trainer = Trainer(resolve_config(reg, version="level-up", overrides=overrides), reg, tmp_path / "run")
    trainer.setup()
    trainer.fit()
    assert calls[0] == ("open", 0) and calls[-1] == ("close",) and len(calls) == 4
    rows = [c for c in calls if c[0] == "log"]
    assert [(split, step, epoch) for _, split, step, epoch, _ in rows] == [("train", 1, 0), ("train", 2, 0)]
    # one step per row: the epoch's mean in train_log.jsonl is the mean of the two rows
    epoch_mean = trainer.run.read_log()[0]["loss_det"]
    assert (rows[0][4]["m/loss_det"] + rows[1][4]["m/loss_det"]) / 2 == pytest.approx(epoch_mean, abs=1e-6)
    assert rows[1][4]["m/epsilon"] == trainer.run.read_log()[0]["epsilon"]
    assert (tmp_path / "run" / "metrics.csv").is_file()


def test_hook_faap_read_run(pm, tmp_path):
    assert pm.hook.faap_read_run(path=tmp_path) is None  # an empty folder is nobody's run

    class P:
        @hookimpl
        def faap_read_run(self, path):
            return [{"run": "x", "epoch": 1}] if path.name == "mine" else None

    mine = tmp_path / "mine"
    mine.mkdir()
    assert _with(P()).hook.faap_read_run(path=mine) == [{"run": "x", "epoch": 1}]
    # compare reads a plugin's plain dicts as typed records, and names a bad key in one error
    from faapkit.compare import discover
    from faapkit.compare.records import RunRecord
    from faapkit.errors import FaapError

    records, _ = discover([mine], _with(P()))
    assert records == [RunRecord(run="x", epoch=1)] and records[0].perturbed is None

    class Bad:
        @hookimpl
        def faap_read_run(self, path):
            return [{"run": "x", "epoch": "first"}] if path.name == "mine" else None

    with pytest.raises(FaapError, match="mine: a faap_read_run plugin's record has a bad 'epoch'.*'first'"):
        discover([mine], _with(Bad()))


def test_hook_faap_register_commands(tmp_path):
    """A plugin found through a real ``.dist-info`` entry point adds a group and a one-function
    command (more in test_command_plugins.py)."""
    from tests.conftest import run_here
    from tests.plugins.test_command_plugins import command_env

    env = command_env(tmp_path / "site", "hello")
    assert run_here("hello", "greet", "--name", "ada", env=env)[:2] == (0, "hello ada\n")
    assert run_here("hello", "count", "3", env=env)[:2] == (0, "1 2 3\n")
    assert run_here("shout", "hi", env=env)[:2] == (0, "HI\n")
    code, out, _ = run_here("hello", "--help", env=env)
    assert code == 0 and "greet" in out and "count" in out


def test_duplicate_name_names_both_plugins():
    class P:
        @hookimpl
        def faap_register_heads(self, register):
            register(HeadSpec(name="simclr_mlp", factory="x:y"))

    with pytest.raises(DuplicateNameError, match="'components' and plugin 'testplugin'"):
        Registries.from_plugin_manager(_with(P()))


def test_misspelled_hook_fails_loudly():
    class P:
        @hookimpl
        def faap_register_loss(self, register):  # singular: not a hook
            pass

    with pytest.raises(ConfigError, match="faap_register_loss"):
        _with(P())


def test_unknown_name_suggests(registries):
    with pytest.raises(UnknownNameError, match="did you mean '3rd'"):
        registries.versions.get("4rd")


def test_version_with_missing_component_is_reported():
    class P:
        @hookimpl
        def faap_register_versions(self, register):
            register(VersionSpec(name="broken", loss="nope", head=None, schedules={}))

    with pytest.raises(ConfigError, match="version 'broken'.*loss 'nope'"):
        Registries.from_plugin_manager(_with(P()))


def test_blocked_plugin_is_not_loaded():
    pm = make_plugin_manager(blocked=["v7th"])
    reg = Registries.from_plugin_manager(pm)
    assert "7th" not in reg.versions and "4th" in reg.versions


def test_builtins_come_from_entry_points(pm):
    info = pm.info["v4th"]
    assert info.builtin and info.distribution == "faapkit" and info.module == "faap_plugins.v4th"


class _EP:
    def __init__(self, name, value, group="faap"):
        self.name, self.value, self.group = name, value, group

    def load(self):
        import importlib

        return importlib.import_module(self.value)


class _Dist:
    def __init__(self, name, eps):
        self.metadata = {"Name": name}
        self.version = "9.9"
        self.entry_points = eps


def _fake_distributions(monkeypatch, extra):
    import importlib.metadata as md

    real = list(md.distributions())
    monkeypatch.setattr(md, "distributions", lambda: [*real, *extra])


def test_third_party_entry_point_plugin_trains_through_registry(monkeypatch, tmp_path, synth_root):
    example = Path(__file__).resolve().parents[2] / "examples" / "faap-example-plugin"
    monkeypatch.syspath_prepend(str(example))
    with monkeypatch.context() as patched:  # only plugin discovery sees the fake distribution
        _fake_distributions(patched, [_Dist("faap-example-plugin", [_EP("example", "faap_example_plugin")])])
        pm = make_plugin_manager(autoload=True)
    reg = Registries.from_plugin_manager(pm)
    assert reg.losses.provider("detection_wasserstein") == "example"
    assert pm.info["example"].distribution == "faap-example-plugin" and not pm.info["example"].builtin
    from faapkit.config import resolve_config
    from faapkit.train.trainer import Trainer

    cfg = resolve_config(
        reg,
        version="det-only",
        overrides=["train.max_steps=2", "train.batch_size=4", "data.limit_images=40", "train.epochs=1"],
    )
    trainer = Trainer(cfg, reg, tmp_path / "run")
    trainer.setup()
    summary = trainer.fit()
    assert summary["global_step"] == 2
    # autoload off: third-party plugins are skipped, built-ins stay
    reg_off = Registries.from_plugin_manager(make_plugin_manager(autoload=False))
    assert "det-only" not in reg_off.versions and "4th" in reg_off.versions


def test_plugin_failing_at_import_is_reported_and_others_work(monkeypatch):
    _fake_distributions(monkeypatch, [_Dist("broken-plugin", [_EP("broken", "faap_no_such_module_xyz")])])
    pm = make_plugin_manager(autoload=True)
    assert [name for name, _ in pm.load_errors] == ["broken"]
    assert "4th" in Registries.from_plugin_manager(pm).versions


def test_pluggy_marker_is_project_scoped():
    assert isinstance(hookimpl, pluggy.HookimplMarker) and hookimpl.project_name == "faap"
    assert types.ModuleType  # keep import used
