"""docs/architecture.md stays true: every module listed, layers respected, names distinct."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| (\d+) \| `([\w.]+)` \|", re.M)


def documented() -> dict[str, int]:
    return {name: int(layer) for layer, name in ROW.findall(DOC)}


# Written by packaging/buildhook.py at install time: present in a built tree only.
BUILT = {"exporter._version"}


def modules() -> dict[str, Path]:
    found = {name: ROOT / "exporter" / "_version.py" for name in BUILT}
    for path in (ROOT / "exporter").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("exporter"):
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("exporter"))
    return names


def test_every_module_is_in_the_architecture_table_and_every_row_exists() -> None:
    assert set(modules()) == set(documented()), (
        f"missing from docs/architecture.md: {sorted(set(modules()) - set(documented()))}; "
        f"listed but gone: {sorted(set(documented()) - set(modules()))}"
    )


def test_no_module_imports_from_a_later_layer() -> None:
    layers, wrong = documented(), []
    for name, path in modules().items():
        if not path.exists():  # a built-only module before the first install
            continue
        for target in imported(path):
            if target in layers and layers[target] > layers[name]:
                wrong.append(f"{name} (layer {layers[name]}) imports {target} "
                             f"(layer {layers[target]})")
    assert not wrong, "\n".join(wrong)


def test_no_two_modules_share_a_base_name() -> None:
    seen: dict[str, str] = {}
    for name in modules():
        base = name.rsplit(".", 1)[-1]
        assert base not in seen or name == "exporter", f"{name} and {seen.get(base)}"
        seen[base] = name


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_of_any_kind() -> None:
    """Typing-only imports (under TYPE_CHECKING) count: a cycle hidden there
    is still two modules that cannot be understood one without the other."""
    known = modules()
    graph = {name: {target for target in imported(path) if target in known and target != name}
             for name, path in known.items() if path.exists()}
    assert not cycles(graph), cycles(graph)


def test_the_cycle_check_sees_a_typing_only_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
