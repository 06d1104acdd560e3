"""scripts/setup.sh, run on a copy of the checkout whose pip is a stand-in
script: what it installs is not the point here, when it installs and what it
says when pip fails are."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout with scripts/setup.sh and a venv whose pip logs its calls and
    exits with the code in .venv/pip-rc."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    pip = bin_dir / "pip"
    pip.write_text('#!/bin/sh\nhere="$(dirname "$0")/.."\necho "$@" >>"$here/pip-calls"\n'
                   'echo "ERROR: no matching distribution for holidays"\n'
                   'exit "$(cat "$here/pip-rc" 2>/dev/null || echo 0)"\n')
    pip.chmod(0o755)
    return tmp_path


def setup(checkout: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/setup.sh"], cwd=checkout, capture_output=True,
                          text=True, timeout=60)


def installs(checkout: Path) -> int:
    calls = checkout / ".venv" / "pip-calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    return sum(1 for line in lines if line.startswith("install"))


def test_a_changed_pyproject_installs_again_whatever_its_time_stamp(checkout: Path) -> None:
    assert setup(checkout).returncode == 0
    assert setup(checkout).returncode == 0
    assert installs(checkout) == 1
    pyproject = checkout / "pyproject.toml"
    stat = pyproject.stat()
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["holidays"]\n')
    # A checkout can leave the file older than the last install.
    os.utime(pyproject, (stat.st_atime - 3600, stat.st_mtime - 3600))
    assert setup(checkout).returncode == 0
    assert installs(checkout) == 2


def test_a_failed_pip_install_stops_setup_with_pips_own_lines(checkout: Path) -> None:
    (checkout / ".venv" / "pip-rc").write_text("1")
    failed = setup(checkout)
    assert failed.returncode == 1
    assert "pip install -e . failed" in failed.stderr
    assert "no matching distribution for holidays" in failed.stderr
    (checkout / ".venv" / "pip-rc").write_text("0")
    assert setup(checkout).returncode == 0  # not marked installed: tried again
    assert installs(checkout) == 2
