"""No function of the engine packages and ``cli/`` runs over 50 lines unless it says why.

A function's length is its body without the docstring: from the first statement to the last
line. The signature is left out on purpose: a typer command declares each option as a
parameter, and those declarations are the command's interface, not logic. An exception is a
``# long: <reason>`` comment on the line above the ``def`` (or above its first decorator); it
must name a reason and sit on a function that needs it, so exceptions stay rare and honest.
Functions are read with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "faapkit"
# the engine (train, evaluate and what they build on) and the commands
CHECKED = ["train", "evaluate", "generators", "losses", "artifacts", "data", "cli", "distributed"]
LIMIT = 50
MARKER = re.compile(r"^\s*#\s*long:\s*(.*?)\s*$")

Finding = tuple[str, int, str, int, str | None]  # file, def line, name, length, reason or None


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        body = body[1:] or body  # a function that is only a docstring counts that
    assert node.end_lineno is not None
    return node.end_lineno - body[0].lineno + 1


def functions(source: str, name: str) -> list[Finding]:
    """Every function (methods and nested ones too) of one module with its length and the reason
    its ``# long:`` comment gives (``""`` for an empty reason, None without a comment)."""
    lines = source.splitlines()
    found: list[Finding] = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            above = lines[top - 2] if top >= 2 else ""
            match = MARKER.match(above)
            found.append((name, node.lineno, node.name, body_lines(node), match.group(1) if match else None))
    return found


def checked_files() -> list[Path]:
    files: list[Path] = []
    for entry in CHECKED:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def problems(found: list[Finding]) -> list[str]:
    out = []
    for name, line, func, length, reason in found:
        where = f"{name}:{line} {func} ({length} lines)"
        if reason is not None and not reason:
            out.append(f"{where}: '# long:' without a reason")
        elif length > LIMIT and reason is None:
            out.append(f"{where}: over {LIMIT} lines; split it, or say why above its def with '# long: <reason>'")
        elif length <= LIMIT and reason is not None:
            out.append(f"{where}: marked '# long:' but within {LIMIT} lines; drop the marker")
    return out


def test_no_long_function_without_a_reason():
    files = checked_files()
    assert len(files) > 40 and all(p.is_file() for p in files)  # the packages are where this test looks
    found = [f for p in files for f in functions(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT.parent)))]
    assert any(func == "setup" and name.endswith("train/trainer.py") for name, _, func, _, _ in found)
    bad = problems(found)
    assert not bad, "\n".join(bad)
    marked = [f for f in found if f[4] is not None]
    assert len(marked) <= 3, f"'# long:' exceptions are meant to be rare: {marked}"


def _source(body: int, marker: str | None = None, decorated: bool = False) -> str:
    head = ([marker] if marker is not None else []) + (["@decorator"] if decorated else [])
    return "\n".join([*head, "def f(x):", '    """Doc."""', *["    x += 1"] * body, ""])


def test_length_counts_the_body_and_the_marker_must_fit():
    assert problems(functions(_source(LIMIT), "m.py")) == []
    assert "over 50 lines" in problems(functions(_source(LIMIT + 1), "m.py"))[0]
    assert functions(_source(LIMIT + 1), "m.py")[0][3] == LIMIT + 1  # the docstring is not counted
    assert problems(functions(_source(LIMIT + 1, "# long: one tight loop"), "m.py")) == []
    assert problems(functions(_source(LIMIT + 1, "# long: one tight loop", decorated=True), "m.py")) == []
    assert "without a reason" in problems(functions(_source(LIMIT + 1, "# long:"), "m.py"))[0]
    assert "drop the marker" in problems(functions(_source(3, "# long: stale"), "m.py"))[0]
