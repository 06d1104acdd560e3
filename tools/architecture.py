"""The floor plan of docs/architecture.md, worked out from the imports.

Every Python module of the repository's code (the package, the monitoring
config, the tools, the benchmarks, the test helpers) sits on a floor: one
above the highest floor of what it imports, the ground floor if it imports
nothing of ours. Written by hand the numbers drifted (one "layer" held five
floors); written here they cannot. The page's table keeps its hand-written
"one job" column; `python -m tools.generate` rewrites the floor numbers and
the order, adds a new module with its docstring's first line as its job and
drops a module that is gone. tests/test_architecture.py checks the page
against the imports on its own, with no code from here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
# Where our Python lives; tests/ itself holds test modules, not parts of the house.
FOLDERS = ("exporter", "monitoring", "tools", "benchmarks", "tests/support", "alerts", "grafana")
PACKAGES = ("exporter", "monitoring", "tools", "benchmarks", "tests", "alerts", "grafana")
# Written by packaging/buildhook.py at install time: present in a built tree only.
BUILT = {"exporter._version": "version and git revision, written at build time (not in git)"}
ROW = re.compile(r"^\| (\d+) \| `([\w.]+)` \| (.*) \|$")
HEADER = "| floor | module | its one job |"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module by dotted name (a package by its own name)."""
    found = {name: root / "exporter" / "_version.py" for name in BUILT}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _ours(name: str) -> bool:
    return name.split(".", 1)[0] in PACKAGES


def imported(path: Path) -> set[str]:
    """The names a module imports from our code, wherever the import stands
    (inside a function or under TYPE_CHECKING included): `from a.b import c`
    gives both a.b and a.b.c, whichever of them is a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _ours(node.module):
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if _ours(alias.name))
    return names


def graph(found: dict[str, Path]) -> dict[str, set[str]]:
    return {name: {target for target in imported(path) if target in found and target != name}
            for name, path in found.items() if path.exists()}


def floors(edges: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor; a cycle has none (the architecture test names it)."""
    out: dict[str, int] = {}

    def floor(name: str, seen: frozenset[str]) -> int:
        if name in out:
            return out[name]
        if name in seen:
            raise ValueError(f"import cycle through {name}")
        out[name] = 1 + max((floor(t, seen | {name}) for t in edges.get(name, ())), default=0)
        return out[name]

    for name in sorted(edges):
        floor(name, frozenset())
    return out


def _first_line(path: Path) -> str:
    if not path.exists():
        return ""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = " ".join(docstring.strip().split("\n\n", 1)[0].split())
    return re.split(r"(?<=[.:])\s", paragraph, maxsplit=1)[0].rstrip(".:")


def render(text: str, root: Path = ROOT) -> str:
    """`text` (the page) with its floor table rewritten from the imports."""
    found = modules(root)
    edges = graph(found)
    floor = floors(edges)
    for name in BUILT:
        floor.setdefault(name, 1)
    lines = text.split("\n")
    start = lines.index(HEADER)
    end = start + 2
    jobs: dict[str, str] = {}
    while end < len(lines) and lines[end].startswith("|"):
        match = ROW.match(lines[end])
        if match:
            jobs[match.group(2)] = match.group(3)
        end += 1
    rows = [f"| {floor[name]} | `{name}` | "
            f"{jobs.get(name) or BUILT.get(name) or _first_line(found[name])} |"
            for name in sorted(found, key=lambda n: (floor[n], n))]
    return "\n".join([*lines[:start + 2], *rows, *lines[end:]])


def outputs() -> dict[Path, str]:
    return {DOC: render(DOC.read_text(encoding="utf-8"))}
