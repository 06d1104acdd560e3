"""The benchmarks run the exporter under a server's interpreter, in a venv they
keep current, and fall back to their own interpreter, saying why, when that
cannot be done. The interpreters here are shell scripts that answer as python3
and venv's pip would, so no venv is made and no package index is asked."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

from benchmarks import server_python
from benchmarks.server_python import describe, server_interpreter

FAKE_PYTHON = """#!/bin/sh
# Answers as a CPython {version} would to what server_python asks of it.
here=$(cd "$(dirname "$0")" && pwd)
case "$1 $2" in
  "-c import platform"*) echo "{version} {is_target}" ;;
  "-m venv")
    mkdir -p "$3/bin"
    printf 'home = /x\\nexecutable = %s\\n' "$here/$(basename "$0")" > "$3/pyvenv.cfg"
    cp "$here/pip.sh" "$3/bin/pip"
    cp "$here/venv-python.sh" "$3/bin/python" ;;
  *) exit 3 ;;
esac
"""
FAKE_PIP = """#!/bin/sh
echo "$@" >> "{log}"
rc=$(cat "{pip_rc}")
[ "$rc" = 0 ] || echo "ERROR: no index"
exit "$rc"
"""
FAKE_VENV_PYTHON = """#!/bin/sh
exit "$(cat "{import_rc}")"
"""


class Fake:
    """A fake python3 in its own folder, and the files that steer and record it."""

    def __init__(self, folder: Path, version: str = "3.11.9", is_target: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log, self.pip_rc, self.import_rc = (folder / "pip.log", folder / "pip_rc",
                                                 folder / "import_rc")
        self.pip_rc.write_text("0")
        self.import_rc.write_text("0")
        self.python = folder / "python3"
        for name, text in (("python3", FAKE_PYTHON), ("pip.sh", FAKE_PIP),
                           ("venv-python.sh", FAKE_VENV_PYTHON)):
            (folder / name).write_text(text.format(
                version=version, is_target=is_target, log=self.log, pip_rc=self.pip_rc,
                import_rc=self.import_rc))
            (folder / name).chmod(0o755)

    def installs(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout of our own, so the real .venv-server is never touched."""
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(server_python, "ROOT", root)
    monkeypatch.setattr(server_python, "VENV", root / ".venv-server")
    return root


def test_an_interpreter_describes_its_version() -> None:
    assert describe(sys.executable) == (platform.python_version(), sys.version_info[:2] == (3, 11))


def test_a_program_that_answers_nothing_is_no_interpreter(checkout: Path) -> None:
    chosen = server_interpreter("/bin/true")
    assert describe("/bin/true") is None
    assert chosen.executable == sys.executable
    assert "no /bin/true" in chosen.description


def test_a_missing_server_python_falls_back_to_the_benchmarks_own_and_says_so(
        checkout: Path, tmp_path: Path) -> None:
    missing = tmp_path / "python3"
    chosen = server_interpreter(str(missing))
    assert chosen.executable == sys.executable
    assert f"no {missing}" in chosen.description


def test_a_python_of_another_version_is_not_made_a_server_venv(
        checkout: Path, tmp_path: Path) -> None:
    fake = Fake(tmp_path / "other", version="3.12.1", is_target=False)
    chosen = server_interpreter(str(fake.python))
    assert chosen.executable == sys.executable
    assert "is Python 3.12.1, the bundle is for 3.11" in chosen.description
    assert not (checkout / ".venv-server").exists()


def test_the_server_venv_is_made_once_with_the_checkout_installed_editable(
        checkout: Path, tmp_path: Path) -> None:
    fake = Fake(tmp_path / "debian")
    chosen = server_interpreter(str(fake.python))
    assert chosen.executable == str(checkout / ".venv-server" / "bin" / "python")
    assert "(Python 3.11.9), as on a server" in chosen.description
    assert fake.log.read_text().split()[-2:] == ["-e", str(checkout)]
    assert server_interpreter(str(fake.python)).executable == chosen.executable
    assert fake.installs() == 1


def test_the_server_venv_is_installed_again_when_pyproject_changes(
        checkout: Path, tmp_path: Path) -> None:
    fake = Fake(tmp_path / "debian")
    server_interpreter(str(fake.python))
    stamp = checkout / ".venv-server" / ".installed"
    os.utime(stamp, (stamp.stat().st_mtime - 10,) * 2)
    server_interpreter(str(fake.python))
    assert fake.installs() == 2


def test_a_server_venv_that_cannot_import_the_exporter_is_installed_again(
        checkout: Path, tmp_path: Path) -> None:
    fake = Fake(tmp_path / "debian")
    server_interpreter(str(fake.python))
    fake.import_rc.write_text("1")
    server_interpreter(str(fake.python))
    assert fake.installs() == 2


def test_a_bare_name_is_looked_up_on_path(checkout: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Fake(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{fake.python.parent}{os.pathsep}{os.environ['PATH']}")
    chosen = server_interpreter("python3")
    assert chosen.executable == str(checkout / ".venv-server" / "bin" / "python")
    assert server_interpreter("python3").executable == chosen.executable
    assert fake.installs() == 1


def test_a_venv_made_from_another_python_is_not_used(checkout: Path, tmp_path: Path) -> None:
    first, second = Fake(tmp_path / "first"), Fake(tmp_path / "second")
    server_interpreter(str(first.python))
    chosen = server_interpreter(str(second.python))
    assert chosen.executable == sys.executable
    assert f"was made from {first.python.resolve()}; remove it" in chosen.description
    assert second.installs() == 0


def test_a_failed_install_falls_back_and_gives_pips_last_line(
        checkout: Path, tmp_path: Path) -> None:
    fake = Fake(tmp_path / "debian")
    fake.pip_rc.write_text("1")
    chosen = server_interpreter(str(fake.python))
    assert chosen.executable == sys.executable
    assert chosen.description.endswith("no .venv-server from "
                                       f"{fake.python}: ERROR: no index)")
    assert not (checkout / ".venv-server" / ".installed").exists()
