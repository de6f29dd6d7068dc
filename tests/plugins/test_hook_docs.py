"""What the hook documentation names exists: every ``faapkit.…`` object cited by a hook's
docstring or by docs/plugin-hooks.md imports, and every ``Name.method`` it cites is defined."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from faapkit.plugins import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin-hooks.md"
DOTTED = re.compile(r"\bfaapkit(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def resolves(dotted: str) -> bool:
    """Import the longest module prefix of ``dotted``, then look the rest up as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def cited_names() -> dict[str, str]:
    """name -> where it is cited."""
    names = {}
    for hook, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hook.startswith("faap_"):
            names.update({n: f"hookspecs.{hook}" for n in DOTTED.findall(inspect.getdoc(fn) or "")})
    names.update({n: "docs/plugin-hooks.md" for n in DOTTED.findall(DOC.read_text(encoding="utf-8"))})
    return names


def test_every_cited_faapkit_name_exists():
    names = cited_names()
    assert "faapkit.losses.base.LossStrategy" in names  # the loss contract is cited
    missing = {n: where for n, where in names.items() if not resolves(n)}
    assert not missing, f"hook documentation names things that do not exist: {missing}"


def test_the_checker_catches_a_wrong_name():
    assert resolves("faapkit.plugin_api.train_only_records")
    assert resolves("faapkit.compare.records.RunRecord")
    assert not resolves("faapkit.compare.NoSuchRecord")
    assert not resolves("faapkit.no_such_module.thing")


def test_the_loss_contract_named_by_the_docstring_is_the_real_one():
    from faapkit.losses.base import LossInputs, LossOutput, LossStrategy

    doc = inspect.getdoc(hookspecs.faap_register_losses) or ""
    assert "__call__(batch)" not in doc and "strategy(inputs: LossInputs) -> LossOutput" in doc
    params = list(inspect.signature(LossStrategy.__call__).parameters)
    assert params == ["self", "inputs"]
    hints = LossStrategy.__call__.__annotations__
    assert hints["inputs"] in ("LossInputs", LossInputs) and hints["return"] in ("LossOutput", LossOutput)
