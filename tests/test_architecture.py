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
