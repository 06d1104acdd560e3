"""docs/architecture.md stays true: every module of every Python folder listed on
its floor, imports only going down, no cycle of any kind, names distinct, every
module-level cache listed with its bound.

These checks read the imports themselves; tools/architecture.py, which writes
the floor numbers, is not used here, so a fault there cannot hide one here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| (\d+) \| `([\w.]+)` \|", re.M)
CACHE_ROW = re.compile(r"^\| `([\w.]+)` \| `(\w+)` \| ([^|]+) \|", re.M)
# Every folder that holds our Python, and where it sits: the package, the
# monitoring config, the development tools, the benchmarks, the test helpers,
# and the hand-written tables beside the generated alert and dashboard files.
FOLDERS = ("exporter", "monitoring", "tools", "benchmarks", "tests/support", "alerts", "grafana")
OURS = ("exporter", "monitoring", "tools", "benchmarks", "tests", "alerts", "grafana")
# Written by packaging/buildhook.py at install time: present in a built tree only.
BUILT = {"exporter._version"}
CACHE_DECORATORS = {"cache", "lru_cache"}


def documented() -> dict[str, int]:
    return {name: int(floor) for floor, name in ROW.findall(DOC)}


def modules() -> dict[str, Path]:
    found = {name: ROOT / "exporter" / "_version.py" for name in BUILT}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path) -> set[str]:
    """Every import of our code in the module, wherever it stands (in a
    function, under TYPE_CHECKING)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in OURS:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] in OURS)
    return names


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target in imported(path) if target in known and target != name}
            for name, path in known.items() if path.exists()}


def test_every_module_of_every_folder_is_in_the_floor_table_and_every_row_exists() -> None:
    assert set(modules()) == set(documented()), (
        f"missing from docs/architecture.md: {sorted(set(modules()) - set(documented()))}; "
        f"listed but gone: {sorted(set(documented()) - set(modules()))} "
        "(python -m tools.generate writes the rows)"
    )


def test_every_import_goes_down_to_a_lower_floor() -> None:
    """Not even to its own floor: a floor is the modules that need nothing of one
    another, so a chain of imports (schedule -> app -> metrics) spans floors."""
    floors, wrong = documented(), []
    for name, targets in import_graph().items():
        for target in targets:
            if target in floors and name in floors and floors[target] >= floors[name]:
                wrong.append(f"{name} (floor {floors[name]}) imports {target} "
                             f"(floor {floors[target]})")
    assert not wrong, "\n".join(wrong) + "\n(python -m tools.generate renumbers the floors)"


def test_every_floor_but_the_ground_stands_on_the_one_below() -> None:
    """The numbers are the real floors, not just an order: a module on floor n
    imports something on floor n-1, so no floor is left empty or skipped."""
    floors, graph = documented(), import_graph()
    loose = [f"{name} on floor {floor} imports nothing from floor {floor - 1}"
             for name, floor in floors.items() if floor > 1 and name in graph
             and not any(floors.get(target) == floor - 1 for target in graph[name])]
    assert not loose, "\n".join(loose)


def test_no_two_modules_of_the_package_share_a_base_name() -> None:
    """A reader finds "DIMSE status" in one module, not in three called `status`."""
    seen: dict[str, str] = {}
    for name in modules():
        if not name.startswith("exporter."):
            continue
        base = name.rsplit(".", 1)[-1]
        assert base not in seen, f"{name} and {seen.get(base)}"
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
    """Typing-only imports (under TYPE_CHECKING) and imports inside functions
    count: a cycle hidden there is still two modules that cannot be understood
    one without the other."""
    found = cycles(import_graph())
    assert not found, found


def test_the_cycle_check_sees_a_typing_only_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_a_same_floor_cycle_fails_the_floor_check() -> None:
    """Two modules importing each other on one floor: the downward rule refuses both."""
    floors = {"x.a": 3, "x.b": 3}
    graph = {"x.a": {"x.b"}, "x.b": {"x.a"}}
    wrong = [(n, t) for n, ts in graph.items() for t in ts if floors[t] >= floors[n]]
    assert sorted(wrong) == [("x.a", "x.b"), ("x.b", "x.a")]


def module_caches(path: Path) -> set[str]:
    """Names of state kept at module level: memoized functions, containers
    filled at run time, names a function rebinds with `global`, semaphores."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def called(node: ast.expr) -> str:
        while isinstance(node, ast.Call):
            node = node.func
        if isinstance(node, ast.Attribute):
            return node.attr
        return node.id if isinstance(node, ast.Name) else ""

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                called(d) in CACHE_DECORATORS for d in node.decorator_list):
            found.add(node.name)
        value, targets = None, []
        if isinstance(node, ast.Assign):
            value, targets = node.value, node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            value, targets = node.value, [node.target]
        if value is None:
            continue
        empty = (isinstance(value, ast.Dict | ast.List | ast.Set) and not (
            getattr(value, "keys", None) or getattr(value, "elts", None)))
        kind = called(value) if isinstance(value, ast.Call) else ""
        made = (kind in {"dict", "set", "list", "OrderedDict", "local"}
                and isinstance(value, ast.Call) and not value.args
                ) or kind in {"BoundedSemaphore", "Semaphore", *CACHE_DECORATORS}
        if empty or made:
            found.update(t.id for t in targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.update(node.names)
    return found


def test_every_module_level_cache_is_listed_with_its_bound() -> None:
    listed = {(module, name) for module, name, _ in CACHE_ROW.findall(DOC)}
    present = {(name, cache) for name, path in modules().items()
               if name.startswith("exporter") and path.exists()
               for cache in module_caches(path)}
    assert present == listed, (
        f"not in docs/architecture.md's module caches: {sorted(present - listed)}; "
        f"listed but gone: {sorted(listed - present)}")


def test_the_cache_finder_sees_each_kind() -> None:
    source = ROOT / "tests" / "testdata" / "module_state_example.py"
    assert module_caches(source) == {"_memo", "_wrapped", "_filled", "_seen", "_slots",
                                     "_rebound"}
