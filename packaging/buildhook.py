"""setuptools' build backend, plus the version from git tags.

pip calls this backend (pyproject.toml: backend-path) for every build:
wheel, sdist, editable. Before handing over to setuptools it writes
exporter/_version.py from `git describe`, so the version comes from tags
without a build dependency that would have to be fetched at build time:

    on tag v1.2.0                  1.2.0
    3 commits after v1.2.0         1.2.0.post3+g1a2b3c4
    a clone without tags           0.0.0+g1a2b3c4
    uncommitted changes            ...+g1a2b3c4.dirty
    no git (an unpacked sdist)     the _version.py the sdist carries

It also records the branch, the build user and the build date, which
`dicom-exporter --version` prints as Prometheus' programs do.
scripts/release.sh builds from a copy of the tree without .git and hands
the facts over in DICOM_EXPORTER_VERSION, DICOM_EXPORTER_REVISION and
DICOM_EXPORTER_BRANCH (its tests build versions 1.0.0, 1.0.1 ... that way);
SOURCE_DATE_EPOCH fixes the build date.

Installs from the release bundle use the built wheels: nothing runs then.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from setuptools.build_meta import *  # noqa: F403 - the PEP 517 hooks themselves

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "exporter" / "_version.py"
_DESCRIBE = re.compile(r"v(?P<tag>\d+(?:\.\d+)*)-(?P<distance>\d+)-g(?P<sha>[0-9a-f]+)")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_version(root: Path = ROOT) -> tuple[str, str] | None:
    """(version, full commit id) from git, or None outside a git checkout."""
    if not (root / ".git").exists():  # an unpacked sdist inside some other repository
        return None
    revision = _git(root, "rev-parse", "HEAD")
    if revision is None:
        return None
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no") not in ("", None)
    sha = revision[:7]
    described = _git(root, "describe", "--tags", "--long", "--match", "v[0-9]*", "--abbrev=7")
    match = _DESCRIBE.fullmatch(described or "")
    local = [f"g{sha}"] if not match or match["distance"] != "0" else []
    if dirty:
        local.append("dirty")
    if match is None:
        public = "0.0.0"
    elif match["distance"] == "0":
        public = match["tag"]
    else:
        public = f"{match['tag']}.post{match['distance']}"
    return (f"{public}+{'.'.join(local)}" if local else public), revision


def git_branch(root: Path = ROOT) -> str:
    """The checked-out branch, "HEAD" when detached (as Prometheus' builds say)."""
    if not (root / ".git").exists():
        return ""
    return _git(root, "rev-parse", "--abbrev-ref", "HEAD") or ""


def build_user() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def build_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    stamp = int(epoch) if epoch.isdigit() else time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(stamp))


def write_version_file() -> None:
    given = os.environ.get("DICOM_EXPORTER_VERSION")
    if given:
        found: tuple[str, str] | None = (given, os.environ.get("DICOM_EXPORTER_REVISION", ""))
        branch = os.environ.get("DICOM_EXPORTER_BRANCH", "")
    else:
        found, branch = git_version(), git_branch()
    if found is None:
        if VERSION_FILE.exists():  # an sdist: keep the version it was made with
            return
        found = ("0.0.0+unknown", "")
    version, revision = found
    text = (
        '"""Written by packaging/buildhook.py at build time from git; not in git."""\n\n'
        f'__version__ = "{version}"\n__revision__ = "{revision}"\n'
        f'__branch__ = "{branch}"\n__build_user__ = "{build_user()}"\n'
        f'__build_date__ = "{build_date()}"\n'
    )
    if not VERSION_FILE.exists() or VERSION_FILE.read_text(encoding="utf-8") != text:
        VERSION_FILE.write_text(text, encoding="utf-8")


# Every PEP 517 hook (get_requires_*, prepare_metadata_*, build_*) runs in a
# fresh process that imports this module first: writing here covers them all.
write_version_file()
