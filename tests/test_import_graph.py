"""The code's shape, checked: no import loop between files, and stages import only down the DAG

    CLI -> engine -> export -> core <- train

Every import counts, also the ones inside functions. The engine reaches export through engine/loaders.py
alone; the package root (styleengine/__init__.py, __main__.py) sits on top with the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package folder -> dotted package name (the stage folders install as parts of the one package)
PACKAGES = {"styleengine": "styleengine", "train": "styleengine.train", "export": "styleengine.export",
            "engine": "styleengine.engine"}
ALLOWED = {
    "top": {"cli", "engine", "export", "train", "core"},
    "cli": {"engine", "export", "train", "core"},
    "engine": {"export", "core"},
    "export": {"core"},
    "train": {"core"},
    "core": set(),
}
ENGINE_TO_EXPORT_DOOR = "styleengine.engine.loaders"


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "top"
    return parts[1] if parts[1] in ALLOWED else "top"


def import_edges(mods: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(importer, imported project module, line) for every import statement, at any depth. Importing a module
    also runs its parent packages' __init__ files: those count as imported too, from outside the package."""
    edges = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # `from pkg import submodule` imports the submodule too
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in mods]
            for t in targets:
                while t and t not in mods and "." in t:
                    t = t.rpartition(".")[0]
                if t in mods and t != name:
                    edges.append((name, t, node.lineno))
                parent = t.rpartition(".")[0]
                while parent in mods and not (name + ".").startswith(parent + "."):
                    if parent != name:
                        edges.append((name, parent, node.lineno))
                    parent = parent.rpartition(".")[0]
    return edges


def cycles(edges: list[tuple[str, str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(edges: list[tuple[str, str, int]]) -> list[str]:
    bad = []
    for a, b, line in edges:
        sa, sb = stage(a), stage(b)
        if sa == sb:
            continue
        if sb not in ALLOWED[sa]:
            bad.append(f"{a}:{line} imports {b} ({sa} -> {sb})")
        elif sa == "engine" and sb == "export" and a != ENGINE_TO_EXPORT_DOOR:
            bad.append(f"{a}:{line} imports {b}: the engine reaches export only through {ENGINE_TO_EXPORT_DOOR}")
    return bad


def test_no_import_loops_between_files():
    loops = cycles(import_edges(modules()))
    assert not loops, "import loops: " + "; ".join(" <-> ".join(c) for c in loops)


def test_stages_import_only_down_the_dag():
    bad = violations(import_edges(modules()))
    assert not bad, "\n".join(bad)


def test_the_checks_have_teeth(tmp_path):
    # A tiny tree with a loop, a stage import against the DAG and an engine->export import outside the door,
    # hidden inside functions: every one is found.
    for folder in PACKAGES:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "styleengine" / "core").mkdir()
    (tmp_path / "styleengine" / "core" / "__init__.py").write_text("")
    (tmp_path / "styleengine" / "core" / "a.py").write_text("def f():\n    from . import b\n")
    (tmp_path / "styleengine" / "core" / "b.py").write_text("from styleengine.core import a\n")
    (tmp_path / "train" / "t.py").write_text("def f():\n    import styleengine.engine.x\n")
    (tmp_path / "engine" / "x.py").write_text("def g():\n    from styleengine.export import e\n")
    (tmp_path / "engine" / "loaders.py").write_text("from styleengine.export import e\n")
    (tmp_path / "export" / "e.py").write_text("")
    # a loop through a package __init__: engine/t2 imports engine/sub/f, whose package imports engine/sub/p -> t2
    (tmp_path / "engine" / "sub").mkdir()
    (tmp_path / "engine" / "sub" / "__init__.py").write_text("from .p import x\n")
    (tmp_path / "engine" / "sub" / "f.py").write_text("")
    (tmp_path / "engine" / "sub" / "p.py").write_text("from ..t2 import y\n")
    (tmp_path / "engine" / "t2.py").write_text("from .sub.f import z\n")
    edges = import_edges(modules(tmp_path))
    assert cycles(edges) == [["styleengine.core.a", "styleengine.core.b"],
                             ["styleengine.engine.sub", "styleengine.engine.sub.p", "styleengine.engine.t2"]]
    bad = violations(edges)
    assert any("styleengine.train.t:2 imports styleengine.engine.x (train -> engine)" in b for b in bad)
    assert any(b.startswith("styleengine.engine.x:2 imports styleengine.export.e: the engine reaches") for b in bad)
    assert not any(b.startswith("styleengine.engine.loaders") for b in bad)
