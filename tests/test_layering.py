"""The import graph of bpfkit: no circles, and every import points down the layers of
docs/architecture.md (imports inside functions count too: they are still dependencies)."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "bpfkit"

# A module may import its own package (no circles inside it) and any package of a lower rank.
RANK = {
    "errors": 0, "shipped": 0, "_build": 0, "cachedir": 0,
    "_sys": 1, "compiler": 1, "columnar": 1,
    "btf": 2, "sections": 2, "tracefs": 2, "cgroups": 2, "display": 2,
    "features": 3,
    "maps": 4, "binaries": 4,
    "symbols": 5, "hist": 5, "events": 5, "probes": 5,
    "stacks": 6, "counters": 6, "record": 6,
    "loader": 7,
    "tools": 8, "testing": 8, "exporter": 8, "ipython": 8,
    "cli": 9,
    "__init__": 10,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["bpfkit", *parts])] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """bpfkit modules that ``name`` imports, anywhere in the file."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            # `from . import x` names a submodule when there is one; otherwise a name in `mod`
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t.startswith("bpfkit") and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_rank() -> None:
    assert {_top(m) for m in _modules()} <= set(RANK)


def test_imports_point_down() -> None:
    bad = []
    for mod, deps in _graph().items():
        for dep in deps:
            a, b = _top(mod), _top(dep)
            if a != b and RANK[b] >= RANK[a]:
                bad.append(f"{mod} (rank {RANK[a]}) imports {dep} (rank {RANK[b]})")
    assert bad == []


def test_no_import_circles() -> None:
    graph = _graph()
    # a circle: any strongly connected set of two or more modules (Tarjan); a package's face
    # (__init__) imports its modules, so a module must not import its own package's face
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == []
