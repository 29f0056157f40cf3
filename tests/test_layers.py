"""The package reads top-down: every import points down the layers, and no two modules import
each other, even through imports inside functions.

Layers, bottom up (a package may import its own modules and anything below it):
  types, errors, losses, statistics, deprecation, domains, files, config_files → data, models, verifiers → training, scoring → ranking
  → methods → selection, eval → recipes → serve → parity → integrations → cli
`rewardkit/__init__.py` is the public facade above them all, and a package's `_MOVED` table
(rewardkit/deprecation.py) holds forwarding addresses of old names, not dependencies.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rewardkit"
LAYERS = [("types", "errors", "losses", "statistics", "deprecation", "domains", "files", "config_files"),
          ("data", "models", "verifiers"), ("training", "scoring"),
          ("ranking",), ("methods",), ("selection", "eval"), ("recipes",), ("serve",), ("parity",), ("integrations",),
          ("cli",)]
RANK = {area: level for level, areas in enumerate(LAYERS) for area in areas}
# same-layer neighbours that may not import each other either
APART = [("data", "models"), ("training", "scoring"), ("selection", "eval")]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def area(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported rewardkit module, line) for every import statement, at any depth; imports of
    names from a package count as imports of the submodule when one has that name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("rewardkit"):
            for alias in node.names:
                sub = PACKAGE.parent / (node.module.replace(".", "/") + f"/{alias.name}")
                found.append((f"{node.module}.{alias.name}" if sub.with_suffix(".py").is_file() or sub.is_dir()
                              else node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("rewardkit")]
    return found


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_no_import_points_up_or_sideways():
    wrong = []
    for module, path in modules().items():
        here = area(module)
        if here is None:  # the facade
            continue
        assert here in RANK, f"{module}: package {here!r} has no layer in this test; add it to LAYERS"
        for target, line in imports(path):
            there = area(target)
            if there in (None, here):
                continue
            if RANK[there] > RANK[here] or tuple(sorted((here, there))) in APART:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not wrong, "imports against the layers:\n  " + "\n  ".join(wrong)


def test_no_two_modules_import_each_other():
    graph = defaultdict(set)
    known = modules()
    for module, path in known.items():
        for target, _ in imports(path):
            graph[module].add(target if target in known else target.rsplit(".", 1)[0])
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(known):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """A scoring module importing a method is caught (the checks above are not vacuous)."""
    fake = tmp_path / "rewardkit"
    (fake / "scoring").mkdir(parents=True)
    (fake / "methods").mkdir()
    (fake / "scoring" / "__init__.py").write_text("")
    (fake / "methods" / "__init__.py").write_text("")
    (fake / "scoring" / "bad.py").write_text("def f():\n    from rewardkit.methods import get_method\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    try:
        test_no_import_points_up_or_sideways()
    except AssertionError as exc:
        assert "scoring/bad.py:2 imports rewardkit.methods" in str(exc)
    else:
        raise AssertionError("the upward import was not reported")
