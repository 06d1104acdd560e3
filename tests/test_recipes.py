"""The recipes in docs/operations.md work as written.

The test reads each recipe's marked blocks from the page itself (```yaml
recipe="NAME"``` is merged into the exporter config, ```sh recipe="NAME"```
is run by bash) and runs them in order, in a copy of this checkout, on a copy
of examples/kronoberg.yml whose hosts are all 127.0.0.1, against a running
`dicom-exporter serve`. Then the new targets must be on /sd, their names in
the regenerated alert rules and on the status page. Slow: the recipes call
curl and promtool.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.realpeers import LOOPBACK, free_port, require, wait_for_port

ROOT = Path(__file__).parent.parent
PAGE = ROOT / "docs" / "operations.md"
BLOCK = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>yaml|sh)[ \t]+"
                   r"recipe=\"(?P<name>[\w-]+)\"[ \t]*\n"
                   r"(?P<body>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_COPIED = {".git", ".venv", ".venv-server", ".mypy_cache", ".ruff_cache", ".pytest_cache",
              ".hypothesis", "test-artifacts", "dist", "build", "__pycache__"}


@dataclass(frozen=True)
class Block:
    lang: str
    body: str


def recipe(name: str, text: str | None = None) -> list[Block]:
    """The recipe's marked blocks, in page order, with the list indentation removed."""
    blocks = []
    for match in BLOCK.finditer(PAGE.read_text(encoding="utf-8") if text is None else text):
        if match["name"] != name:
            continue
        indent = len(match["indent"])
        lines = [line[indent:] if line[:indent].isspace() else line.lstrip()
                 for line in match["body"].splitlines()]
        blocks.append(Block(match["lang"], "\n".join(lines) + "\n"))
    return blocks


def merge(into: dict[str, Any], snippet: dict[str, Any], path: str = "") -> None:
    """Adds the snippet's keys to the config; a recipe adds, it never overwrites."""
    for key, value in snippet.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value, where)
        else:
            assert key not in into, f"the recipe overwrites {where}"
            into[key] = value


def write_local(config: dict[str, Any], path: Path) -> None:
    """The config with every host on loopback, so nothing leaves this machine."""
    for target in config.get("targets", {}).values():
        target["host"] = LOOPBACK
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def test_the_recipe_reader_finds_indented_marked_blocks_only() -> None:
    text = ("1. Add:\n\n   ```yaml recipe=\"r\"\n   targets:\n     a: {}\n   ```\n\n"
            "```sh\nnot marked\n```\n\n```sh recipe=\"other\"\necho other\n```\n"
            "```sh recipe=\"r\"\necho one\n```\n")
    assert recipe("r", text) == [Block("yaml", "targets:\n  a: {}\n"), Block("sh", "echo one\n")]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["add-partner-region", "add-a-site"])
def test_recipe_runs_as_written(name: str, tmp_path: Path) -> None:
    require("promtool")
    require("curl")
    blocks = recipe(name)
    snippets = [yaml.safe_load(b.body) for b in blocks if b.lang == "yaml"]
    assert snippets and any(b.lang == "sh" for b in blocks), f"{name}: no marked blocks"
    new_targets = [t for s in snippets for t in s.get("targets", {})]
    names = [*(v["name"] for s in snippets for v in s.get("sites", {}).values()),
             *(v for s in snippets for v in s.get("routine", {}).get("regions", {}).values())]
    assert new_targets and names

    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=lambda _, files: [f for f in files
                                                              if f in NOT_COPIED])
    config_file = tmp_path / "etc" / "dicom-exporter.yml"
    config_file.parent.mkdir()
    config = yaml.safe_load((ROOT / "examples" / "kronoberg.yml").read_text(encoding="utf-8"))
    write_local(config, config_file)
    rules = checkout / "alerts" / "dicom.rules.yml"
    assert not any(n in rules.read_text(encoding="utf-8") for n in names), "not new"

    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    env = {**os.environ, "CONFIG": str(config_file), "EXPORTER": base,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "serve", "--config.file", str(config_file),
         "--web.listen-address", f"{LOOPBACK}:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=checkout)
    try:
        wait_for_port(port, process)
        for block in blocks:
            if block.lang == "yaml":
                merge(config, yaml.safe_load(block.body))
                write_local(config, config_file)
                continue
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.body], cwd=checkout,
                                    env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, f"{block.body}\n{result.stdout}{result.stderr}"
        sd, page = get(f"{base}/sd"), get(f"{base}/")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "config reload failed" not in stderr, stderr
    generated = rules.read_text(encoding="utf-8")
    for target in new_targets:
        assert f'"{target}"' in sd, target
    for shown in names:
        assert shown in generated, f"{shown} is not in the regenerated rules"
        assert shown in page, f"{shown} is not on the status page"
