"""The git revision the exporter runs from, for `dicom_exporter_build_info`.

Read live from the checkout's .git files when there is one (without running
git, which may be absent on a hospital server), so an editable install never
reports a stale revision; an installed build reports the revision that
packaging/buildhook.py recorded in exporter/_version.py; else "unknown".
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _from_git(root: Path) -> str | None:
    git = root / ".git"
    if git.is_file():  # a worktree: "gitdir: <path>"
        text = git.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir:"):
            return None
        git = (root / text.removeprefix("gitdir:").strip()).resolve()
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


def revision() -> str:
    from exporter import __revision__

    try:
        found = _from_git(_PACKAGE.parent) or __revision__
    except (OSError, UnicodeDecodeError):
        found = __revision__
    if found and len(found) == 40 and all(c in "0123456789abcdef" for c in found):
        return found[:12]
    return "unknown"


REVISION = revision()
