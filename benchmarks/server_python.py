"""The interpreter the benchmarked exporter runs under: the server's, not ours.

A hospital server runs the exporter on its distribution's python3 (README:
Debian 12's), installed from the offline bundle. The development venv is
whatever `python3` was first on PATH when it was made; here that is a pyenv
build with a shared libpython and no profile-guided optimisation, which
spends about a fifth more CPU on the same request than Debian's statically
linked, optimised build. A timing measured under it describes our machine,
not what is shipped. So the benchmarked exporter runs from `.venv-server`, a
venv made from the distribution's python3 with this checkout installed
editable (the code measured is the working tree's), and the table says which
interpreter ran it.

Falls back to the benchmark's own interpreter, saying why, when there is no
such python3 or the venv cannot be made (no package index).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-server"
DISTRIBUTION_PYTHON = Path("/usr/bin/python3")
TARGET_VERSION = (3, 11)  # what the offline bundle is built for (scripts/release.sh)
DESCRIBE = "import platform, sys; print(platform.python_version(), sys.version_info[:2] == (3, 11))"


@dataclass(frozen=True)
class Interpreter:
    executable: str
    description: str  # for the table's heading


def describe(executable: str) -> tuple[str, bool] | None:
    """(version, is 3.11) of `executable`, None if it does not run."""
    try:
        out = subprocess.run([executable, "-c", DESCRIBE], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0], out[1] == "True"


def ours(why: str) -> Interpreter:
    found = describe(sys.executable)
    version = found[0] if found else "?"
    return Interpreter(sys.executable, f"{sys.executable} (Python {version}; {why})")


def server_interpreter(choice: str | None = None) -> Interpreter:
    """`choice` (a python3 to make the venv from), else the distribution's python3."""
    base = Path(choice) if choice else DISTRIBUTION_PYTHON
    found = describe(str(base))
    if found is None:
        return ours(f"no {base} to run the exporter as a server would")
    version, is_target = found
    if not is_target:
        return ours(f"{base} is Python {version}, the bundle is for "
                    f"{TARGET_VERSION[0]}.{TARGET_VERSION[1]}")
    problem = ensure_venv(base)
    if problem:
        return ours(f"no venv from {base}: {problem}")
    return Interpreter(str(VENV / "bin" / "python"),
                       f"{VENV.name} from {base} (Python {version}), as on a server")


def ensure_venv(base: Path) -> str:
    """Make or refresh `.venv-server` from `base`; what went wrong, or ""."""
    stamp = VENV / ".installed"
    pyproject = ROOT / "pyproject.toml"
    configured = VENV / "pyvenv.cfg"
    if configured.exists() and f"executable = {base.resolve()}" not in configured.read_text():
        return f"{VENV.name} was made from another python3; remove it to remake it"
    if stamp.exists() and stamp.stat().st_mtime >= pyproject.stat().st_mtime:
        return ""
    steps = [[str(base), "-m", "venv", str(VENV)],
             [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
              "-e", str(ROOT)]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines()
                     if line.strip() and not line.startswith("WARNING: Location")]
            return lines[-1] if lines else f"{step[0]} exited {done.returncode}"
    stamp.touch()
    return ""


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", metavar="PYTHON3",
                        help="the python3 to run the exporter under, in .venv-server "
                             "(default: the distribution's /usr/bin/python3; 'current': "
                             "this benchmark's own)")


def chosen(args: argparse.Namespace) -> Interpreter:
    if args.python == "current":
        return Interpreter(sys.executable, f"{sys.executable} (asked for)")
    return server_interpreter(args.python)
