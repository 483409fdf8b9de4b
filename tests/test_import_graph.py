"""The package's import graph (every ``import``, at module top or inside a function) has no cycle.

``KNOWN_CYCLES`` lists the strongly connected components that exist today, each with the edge that
closes it. The test fails on any new cycle, on a known one that grows, and on a known one that is
gone (so the list only shrinks, deliberately).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import eks_llm_stack

PACKAGE = Path(eks_llm_stack.__file__).parent

#: Cycles still to break, as the sorted module set of each strongly connected component.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        if "third_party" in path.parts:
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """module → the package modules it imports (``from x import y`` counts ``x.y`` if it is a module)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    target = ".".join(parts + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in mods else target)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.add(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_new_import_cycle() -> None:
    found = cycles(import_graph())
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not new, f"new or grown import cycle(s): {new}"
    assert not gone, f"cycle(s) broken, remove them from KNOWN_CYCLES: {gone}"


def test_cycle_finder_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == {frozenset({"a", "b", "c"})}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    # config/gpu_pool imports the catalog inside its checks (so load_profile stays light): still an edge.
    assert "eks_llm_stack.catalog" in graph["eks_llm_stack.config.gpu_pool"]
    assert "eks_llm_stack.charts.model" in graph["eks_llm_stack.stacks.serving"]
    # Karpenter's factory imports GpuNodePool; GpuNodePool takes a protocol, not Karpenter (no cycle).
    assert "eks_llm_stack.constructs.gpu_node_pool" in graph["eks_llm_stack.constructs.karpenter"]
    assert "eks_llm_stack.constructs.karpenter" not in graph["eks_llm_stack.constructs.gpu_node_pool"]


def function_level_imports(source: str) -> list[int]:
    """Line numbers of ``import`` statements inside a function or method of ``source``."""
    found = []
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            found += [n.lineno for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)]
    return sorted(set(found))


def test_no_imports_inside_functions_in_stacks() -> None:
    """Stacks compose; what they use is visible at the top of the module (lazy imports belong to cli/)."""
    found = {
        path.name: lines
        for path in sorted((PACKAGE / "stacks").glob("*.py"))
        if (lines := function_level_imports(path.read_text()))
    }
    assert found == {}


def test_function_level_import_check_sees_one() -> None:
    source = (
        "import os\n\nclass A:\n    def f(self):\n        if True:\n            from x import y\n        return y\n"
    )
    assert function_level_imports(source) == [6]
    assert function_level_imports("import os\n") == []
