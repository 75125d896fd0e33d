"""No import cycle among srkit's modules, counting every import (also those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """srkit modules that `path` imports anywhere: module body, functions and TYPE_CHECKING blocks alike (an
    import inside a function hides a cycle from Python at import time, not from whoever has to change the code)."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base in modules:
                out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules)
    out.discard(me)
    return out


def test_no_import_cycles():
    files = sorted((SRC / "srkit").rglob("*.py"))
    modules = {_module_name(f) for f in files}
    graph = {_module_name(f): _imports(f, modules) for f in files}
    # A package's __init__ importing its own submodules (re-exports) and a submodule importing a sibling through
    # the package is the usual layout; the cycles that hurt are between different packages/modules.
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # package <-> its own submodule
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for mod in sorted(graph):
        if mod not in state:
            dfs(mod)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    # The checker itself must be able to fail: two modules importing each other at top level.
    pkg = tmp_path / "srkit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from srkit.b import x\n")
    (pkg / "b.py").write_text("def f():\n    import srkit.a\n\n\nx = 1\n")  # a lazy import still counts
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    try:
        test_no_import_cycles()
    except AssertionError as e:
        assert "srkit.a -> srkit.b -> srkit.a" in str(e)
    else:
        raise AssertionError("the cycle a <-> b was not found")
