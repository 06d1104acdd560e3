"""The git revision the exporter runs from, for `dicom_exporter_build_info`,
and the `--version` text in the Prometheus programs' format.

Read live from the checkout's .git files when there is one (without running
git, which may be absent on a hospital server), so an editable install never
reports a stale revision; an installed build reports the revision that
packaging/buildhook.py recorded in exporter/_version.py; else "unknown".
"""

from __future__ import annotations

import platform
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _git_dir(root: Path) -> Path | None:
    git = root / ".git"
    if git.is_file():  # a worktree: "gitdir: <path>"
        text = git.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir:"):
            return None
        git = (root / text.removeprefix("gitdir:").strip()).resolve()
    return git if git.is_dir() else None


def _from_git(root: Path) -> str | None:
    git = _git_dir(root)
    if git is None:
        return None
    head = (git / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref:"):
        return head
    ref = head.removeprefix("ref:").strip()
    for folder in (git, _common_dir(git)):
        loose = folder / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip()
        packed = folder / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                sha, _, name = line.partition(" ")
                if name == ref:
                    return sha
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    if common.is_file():
        return (git / common.read_text(encoding="utf-8").strip()).resolve()
    return git


def _full_revision() -> str:
    from exporter import __revision__

    try:
        found = _from_git(_PACKAGE.parent) or __revision__
    except (OSError, UnicodeDecodeError):
        found = __revision__
    if found and len(found) == 40 and all(c in "0123456789abcdef" for c in found):
        return found
    return "unknown"


def revision() -> str:
    found = _full_revision()
    return found[:12] if found != "unknown" else found


def branch() -> str:
    """The checkout's branch when running from one, else the one built from."""
    from exporter import __branch__

    try:
        git = _git_dir(_PACKAGE.parent)
        head = (git / "HEAD").read_text(encoding="utf-8").strip() if git else ""
    except (OSError, UnicodeDecodeError):
        head = ""
    if head.startswith("ref: refs/heads/"):
        return head.removeprefix("ref: refs/heads/")
    if head:
        return "HEAD"
    return __branch__ or "unknown"


def version_text() -> str:
    """`--version` as Prometheus' programs print it, Python in Go's place."""
    from exporter import __build_date__, __build_user__, __version__

    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return (
        f"dicom-exporter, version {__version__} (branch: {branch()}, "
        f"revision: {_full_revision()})\n"
        f"  build user:       {__build_user__ or 'unknown'}\n"
        f"  build date:       {__build_date__ or 'unknown'}\n"
        f"  python version:   {platform.python_implementation()} {platform.python_version()}\n"
        f"  platform:         {platform.system().lower()}/{machine}"
    )


REVISION = revision()
