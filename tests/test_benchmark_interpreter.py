"""The benchmark says which interpreter ran the exporter, and falls back to its
own, saying why, when the server's cannot be used."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from benchmarks.server_python import describe, server_interpreter


def test_an_interpreter_describes_its_version() -> None:
    assert describe(sys.executable) == (platform.python_version(), sys.version_info[:2] == (3, 11))


def test_a_missing_server_python_falls_back_to_the_benchmarks_own_and_says_so(
        tmp_path: Path) -> None:
    missing = tmp_path / "python3"
    chosen = server_interpreter(str(missing))
    assert chosen.executable == sys.executable
    assert f"no {missing}" in chosen.description


def test_a_python_of_another_version_is_not_made_a_server_venv(tmp_path: Path) -> None:
    other = tmp_path / "python3"
    other.write_text("#!/bin/sh\necho 3.12.1 False\n")
    other.chmod(0o755)
    chosen = server_interpreter(str(other))
    assert chosen.executable == sys.executable
    assert "is Python 3.12.1, the bundle is for 3.11" in chosen.description
