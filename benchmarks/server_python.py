"""The interpreter the benchmarked exporter runs under: a server's, not ours.

On a stock Debian 12 server `sudo ./install.sh` (the offline bundle) makes the
exporter's venv from `/usr/bin/python3.11`, Debian's build: profile-guided and
link-time optimised, libpython linked in statically. The development venv is
made from whatever `python3` comes first on PATH; on the CI machine kind that
is a pyenv build configured with `--enable-shared` only (no PGO, no LTO),
under which the exporter spends about a quarter more user CPU on the same
request (`benchmarks/interpreters.py` compares the two side by side). So the
benchmarks start the exporter from `.venv-server`, a venv made from the
distribution's python3 with this checkout installed editable (the code
measured is the working tree's), and their headings say which interpreter
ran it.

They fall back to their own interpreter, saying why, when there is no such
python3, it is not a 3.11, or the venv cannot be made (no `python3-venv`, no
package index).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-server"
DISTRIBUTION_PYTHON = "/usr/bin/python3"
TARGET_VERSION = (3, 11)  # what the offline bundle is built for (scripts/release.sh)
DESCRIBE = (f"import platform, sys; print(platform.python_version(), "
            f"sys.version_info[:2] == {TARGET_VERSION})")
STEP_TIMEOUT = 600.0


@dataclass(frozen=True)
class Interpreter:
    executable: str
    description: str  # for the table's heading


def describe(executable: str) -> tuple[str, bool] | None:
    """(version, is the bundle's version) of `executable`, None if it does not run as one."""
    try:
        out = subprocess.run([executable, "-c", DESCRIBE], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 2 or out[1] not in ("True", "False"):
        return None
    return out[0], out[1] == "True"


def ours(why: str) -> Interpreter:
    """This benchmark's own interpreter, and why it runs the exporter."""
    return Interpreter(sys.executable,
                       f"{sys.executable} (Python {platform.python_version()}; {why})")


def server_interpreter(choice: str | None = None) -> Interpreter:
    """`choice` (a python3 to make the venv from), else the distribution's python3."""
    named = choice or DISTRIBUTION_PYTHON
    base = Path(shutil.which(named) or named)  # a bare name is looked up on PATH
    found = describe(str(base))
    if found is None:
        return ours(f"no {named} to run the exporter as a server would")
    version, is_target = found
    if not is_target:
        wanted = ".".join(map(str, TARGET_VERSION))
        return ours(f"{named} is Python {version}, the bundle is for {wanted}")
    problem = ensure_venv(base)
    if problem:
        return ours(f"no {VENV.name} from {named}: {problem}")
    return Interpreter(str(VENV / "bin" / "python"),
                       f"{VENV.name} from {named} (Python {version}), as on a server")


def made_from(venv: Path) -> Path | None:
    """The interpreter `venv` was made from, by its pyvenv.cfg."""
    try:
        lines = (venv / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "executable":
            return Path(value.strip()).resolve()
    return None


def ensure_venv(base: Path) -> str:
    """Make `.venv-server` from `base`, or refresh it; what went wrong, or ""."""
    maker = made_from(VENV)
    if maker is not None and maker != base.resolve():
        return f"{VENV.name} was made from {maker}; remove it to remake it"
    stamp = VENV / ".installed"
    if (stamp.exists() and stamp.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime
            and not run([str(VENV / "bin" / "python"), "-c", "import exporter"])):
        return ""
    print(f"# installing this checkout into {VENV.name} (made from {base}; needs the "
          f"package index)", file=sys.stderr, flush=True)
    for step in ([str(base), "-m", "venv", str(VENV)],
                 [str(VENV / "bin" / "pip"), "install", "--quiet",
                  "--disable-pip-version-check", "-e", str(ROOT)]):
        problem = run(step)
        if problem:
            return problem
    stamp.touch()
    return ""


def run(command: list[str]) -> str:
    """Run `command` within STEP_TIMEOUT; its last line of complaint, or "" when it worked."""
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
    except OSError as exc:
        return str(exc)
    try:
        output, _ = process.communicate(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # pip's build backends with it
        process.communicate()
        return f"{Path(command[0]).name} took over {STEP_TIMEOUT:g} s"
    if process.returncode == 0:
        return ""
    lines = [line for line in output.splitlines()
             if line.strip() and not line.startswith("WARNING: Location")]
    return lines[-1] if lines else f"{Path(command[0]).name} exited {process.returncode}"


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", metavar="PYTHON3",
                        help="the python3 to make .venv-server from and run the exporter "
                             "under (default: the distribution's /usr/bin/python3; "
                             "'current': this benchmark's own interpreter)")


def chosen(args: argparse.Namespace) -> Interpreter:
    if args.python == "current":
        return ours("asked for")
    return server_interpreter(args.python)
