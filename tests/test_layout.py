"""The package's import structure: no circles between modules (lazy imports inside functions
included, and a package's ``__init__`` counted, since importing ``a.b`` runs ``a/__init__``), and no
module of the inference, serving or export layers importing training code."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "pix2pix"
# Layers that run a trained model must not pull in the training stack (optimisers, the loop).
NO_TRAINING = ("pix2pix.inference", "pix2pix.serve", "pix2pix.export", "pix2pix.video")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (and their package inits)."""
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                names = [stem] + [f"{stem}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                # the module itself if it is one, and every package __init__ on its way
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    cand = ".".join(parts[:i])
                    if cand in files and cand != mod and not mod.startswith(cand + "."):
                        targets.add(cand)
        graph[mod] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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


def test_graph_sees_imports():
    g = import_graph()
    # sanity: the walker finds a lazy import and a package init
    assert "pix2pix.inference.translator" in g["pix2pix.inference"]
    assert "pix2pix.util.ranges" in g["pix2pix.inference.translator"]
    assert len(g) > 60


def test_no_import_circles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles (lazy imports included): " + "; ".join(" <-> ".join(c) for c in cycles)


def test_inference_serve_export_do_not_import_training():
    g = import_graph()
    bad = [(m, t) for m, ts in g.items() for t in ts
           if m.startswith(NO_TRAINING) and t.startswith("pix2pix.training")]
    assert not bad, f"run-time layers importing training code: {bad}"


def test_find_cycles_detects_a_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def private_imports(source: str, project_modules: set[str]) -> list[str]:
    """Private names (``_x``) one module takes from another: ``from m import _x`` or ``m._x``."""
    tree = ast.parse(source)
    found, aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(PACKAGE)):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(a.name)
                aliases.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            aliases.update(a.asname or a.name for a in node.names if a.name in project_modules)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_name_crosses_modules():
    modules = {module_name(p) for p in SRC.rglob("*.py")}
    bad = {module_name(p): names for p in SRC.rglob("*.py")
           if (names := private_imports(p.read_text(), modules))}
    assert not bad, f"private names used outside their module: {bad}"


def test_private_imports_sees_both_forms():
    src = "from .a import _x, y\nfrom . import b\nb._z()\nimport os\nos._exit\n"
    assert private_imports(src, set()) == ["_x", "b._z"]
