"""The package layering of docs/architecture.md: no import cycle between faapkit's packages,
and no import of a layer drawn above.

Imports are read with ``ast`` (nothing is imported), including imports inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency, and a cycle through one only waits for
the day somebody moves it to the top of the file.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "faapkit"

Edges = dict[str, dict[str, list[str]]]  # node -> imported node -> ["file:line", ...]

# The drawing of docs/architecture.md, top to bottom: a node may import its own layer and below.
LAYERS: list[set[str]] = [
    {"faapkit.cli", "faapkit.__main__"},
    {"faapkit.report"},
    {"faapkit.compare", "faapkit.plugin_api"},
    {"faapkit.deploy"},
    {"faapkit.train"},
    {"faapkit.evaluate"},
    {"faapkit.losses", "faapkit.generators"},
    {"faapkit.artifacts", "faapkit.distributed"},
    {"faapkit.tvdet"},
    {"faapkit.data"},
    {"faapkit.detr"},
    {"faapkit.config", "faapkit"},
    {"faapkit.plugins"},
    {"faapkit.io", "faapkit.errors", "faapkit.fairness"},
]


def node_of(module: str) -> str | None:
    """``faapkit.losses.base`` -> ``faapkit.losses``; ``faapkit.io`` -> ``faapkit.io``;
    ``faapkit`` (the package's ``__init__``) -> ``faapkit``; anything else -> None."""
    parts = module.split(".")
    if parts[0] != "faapkit":
        return None
    return ".".join(parts[:2])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """Absolute names of every module an import statement may load, with its line."""
    found: list[tuple[str, int]] = []
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.Import):
            found += [(alias.name, stmt.lineno) for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:  # relative: resolve against this module's package
                package = module.split(".")[: len(module.split(".")) - stmt.level + (1 if is_package else 0)]
                base = ".".join([*package, base] if base else package)
            found.append((base, stmt.lineno))
            # ``from faapkit import io`` imports the module faapkit.io, not only the package
            found += [(f"{base}.{alias.name}", stmt.lineno) for alias in stmt.names if base == "faapkit"]
    return found


def is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT.parent / rel).is_dir() or (ROOT.parent / rel.with_suffix(".py")).is_file()


def package_graph() -> Edges:
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        src = node_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, line in imported_modules(tree, module, path.name == "__init__.py"):
            dst = node_of(name)
            if dst is not None and dst != "faapkit" and not is_module(dst):
                dst = "faapkit"  # ``from faapkit import hookimpl``: a name defined in faapkit/__init__.py
            if src is not None and dst is not None and dst != src:
                edges[src][dst].append(f"{path.relative_to(ROOT.parent)}:{line}")
    return edges


def find_cycle(edges: Edges) -> list[str] | None:
    """One cycle of the graph as ``[a, b, ..., a]``, or None (iterative DFS, colour marking)."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in sorted(edges):
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(edges.get(start, {})))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop(0)
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(edges.get(nxt, {}))))
    return None


def describe(cycle: list[str], edges: Edges) -> str:
    hops = [f"{a} -> {b} ({', '.join(edges[a][b][:3])})" for a, b in pairwise(cycle)]
    return "import cycle between faapkit packages: " + " ; ".join(hops)


def test_no_import_cycle_between_packages():
    edges = package_graph()
    # the graph is the real one: the layers of docs/architecture.md depend on each other as drawn
    engine = {"faapkit.evaluate", "faapkit.losses", "faapkit.generators", "faapkit.artifacts"}
    assert engine <= set(edges["faapkit.train"])
    assert {"faapkit.detr", "faapkit.data", "faapkit.generators"} <= set(edges["faapkit.evaluate"])
    assert "faapkit.detr" in edges["faapkit.data"]
    cycle = find_cycle(edges)
    assert cycle is None, describe(cycle, edges)


def test_imports_follow_the_documented_layers():
    edges = package_graph()
    rank = {node: i for i, layer in enumerate(LAYERS) for node in layer}
    nodes = set(edges) | {d for targets in edges.values() for d in targets}
    unplaced = sorted(nodes - set(rank))
    assert not unplaced, f"{unplaced}: in no layer; add each to LAYERS here and to docs/architecture.md"
    upward = [
        f"{src} -> {dst} ({', '.join(where[:3])})"
        for src, targets in edges.items()
        for dst, where in targets.items()
        if rank[dst] < rank[src]
    ]
    assert not upward, f"imports of a higher layer than docs/architecture.md draws: {upward}"
    drawing = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    undrawn = sorted(node for node in rank if node != "faapkit" and node not in drawing)
    assert not undrawn, f"{undrawn} missing from the drawing in docs/architecture.md"


def test_leaf_modules_stay_leaves():
    """``errors`` and ``io`` sit under every package: they import nothing of faapkit but errors."""
    edges = package_graph()
    assert set(edges.get("faapkit.errors", {})) == set()
    assert set(edges.get("faapkit.io", {})) == {"faapkit.errors"}


def test_a_cycle_is_found_and_named():
    edges: Edges = defaultdict(lambda: defaultdict(list))
    edges["faapkit.train"]["faapkit.data"].append("faapkit/train/x.py:3")
    edges["faapkit.data"]["faapkit.errors"].append("faapkit/data/y.py:4")
    assert find_cycle(edges) is None
    edges["faapkit.data"]["faapkit.train"].append("faapkit/data/z.py:9")
    cycle = find_cycle(edges)
    assert cycle == ["faapkit.data", "faapkit.train", "faapkit.data"]
    assert "faapkit.data -> faapkit.train (faapkit/data/z.py:9)" in describe(cycle, edges)


def test_relative_and_from_package_imports_are_resolved():
    tree = ast.parse("from . import box\nfrom ..errors import DataError\nfrom faapkit import io, hookimpl\n")
    names = {name for name, _ in imported_modules(tree, "faapkit.data.coco", is_package=False)}
    assert {"faapkit.data", "faapkit.errors", "faapkit.io", "faapkit.hookimpl"} <= names


def test_the_evaluate_library_never_imports_its_command_layer():
    """``faapkit/evaluate/`` (the records, evaluator, scoring, COCO evaluation, inference) is the
    library under ``faapkit/evaluate/command/`` (what ``faap eval`` resolves, refuses and writes):
    the command layer imports the library, never the reverse."""
    library, command = ROOT / "evaluate", ROOT / "evaluate" / "command"
    seen: dict[bool, list[str]] = {True: [], False: []}  # in the command layer -> imports of it
    for path in sorted(library.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, line in imported_modules(tree, module_name(path), path.name == "__init__.py"):
            into = "command" if name.startswith("faapkit.evaluate.command") else "library"
            if into == "command" or name.startswith("faapkit.evaluate."):
                seen[command in path.parents].append(f"{path.relative_to(ROOT.parent)}:{line} -> {into}")
    assert any(e.endswith("-> library") for e in seen[True]), "the command layer no longer uses the library"
    upward = [e for e in seen[False] if e.endswith("-> command")]
    assert not upward, f"the evaluate library imports its command layer: {upward}"


# An issue reference in code: "issue 28", "issue #28", "#28" (not "&#28;", not a path or a URL's "/#28")
ISSUE_REFERENCE = re.compile(r"\bissue ?#?\d+|(?<![&\w/])#\d+\b", re.IGNORECASE)


def issue_references(text: str) -> list[str]:
    return ISSUE_REFERENCE.findall(text)


def test_code_carries_no_issue_number():
    """Why a line is as it is belongs in a comment; when and under which ticket belongs to git.
    Docs may cite issues; code, comments and docstrings do not."""
    repo = ROOT.parent
    found = [
        f"{path.relative_to(repo)}:{n}: {line.strip()}"
        for folder in ("faapkit", "plugins", "examples", "benchmarks", "tests")
        for path in sorted((repo / folder).rglob("*.py"))
        if path != Path(__file__).resolve()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if issue_references(line)
    ]
    assert not found, "issue numbers in code:\n" + "\n".join(found)


def test_the_issue_number_check_sees_each_spelling():
    assert issue_references("a fix (issue 28)") and issue_references("see Issue #7") and issue_references("# #12")
    assert not issue_references("&#28; docs/effect-diagnosis.md#11 x#1f77b4 0.28 issues")
