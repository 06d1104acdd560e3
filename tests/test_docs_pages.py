"""The documentation's shape: a short README, one docs/ page per subject named
in the index, links and anchors that resolve, and current facts instead of a
day-by-day diary (history belongs in CHANGELOG.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = ("configuration.md", "metrics.md", "reasons.md", "alerts.md", "operations.md",
         "performance.md", "hardening.md", "interoperability.md", "architecture.md")
README_MAX_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
DIARY = re.compile(
    r"\b(?:(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|next"
    r"|previous|same|that)\s+day|\d+(?:st|nd|rd|th)\s+day|today|yesterday|tonight"
    r"|this\s+(?:morning|afternoon|evening))\b",
    re.IGNORECASE,
)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and code spans: what a reader sees as links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Every relative link of `path` whose file or anchor does not exist."""
    text = prose(path.read_text(encoding="utf-8"))
    problems = []
    for target in [*INLINE_LINK.findall(text), *REFERENCE_LINK.findall(text)]:
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path.resolve()
        where = f"{path.relative_to(root)}: {target}"
        if not linked.is_relative_to(root.resolve()):
            problems.append(f"{where}: outside the repository")
        elif not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            problems.append(f"{where}: no such anchor")
    return problems


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference text to docs/"


def test_every_subject_has_its_page_and_the_index_names_each_page() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for name in PAGES:
        assert (DOCS / name).is_file(), name
    listed = set(re.findall(r"\]\(([\w-]+\.md)\)", index))
    on_disk = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    assert listed == on_disk, f"docs/README.md lists {sorted(listed)}, docs/ has {sorted(on_disk)}"


def test_the_readme_shows_the_status_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", readme)
    assert images, "the README shows no picture"
    for image in images:
        assert (ROOT / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_day_by_day_diary(path: Path) -> None:
    found = [m.group(0) for m in DIARY.finditer(path.read_text(encoding="utf-8"))]
    assert not found, f"{path.relative_to(ROOT)}: {found}: write the current fact (with date "\
                      "and machine) or move the history to CHANGELOG.md"


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_link_check_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## The `web` config (W)\n",
                                       encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Two sites\n\n"
        "[ok](other.md) [ok](other.md#the-web-config-w) [ok](#two-sites) "
        "[ok](https://example.invalid/x) `[not a link](gone.md)`\n"
        "```\n[not a link](gone.md)\n```\n"
        "[gone](gone.md) [bad anchor](other.md#nowhere) [bad here](#three-sites)\n"
        "[ref]: missing.md\n",
        encoding="utf-8",
    )
    assert [p.split(": ", 1)[1] for p in broken_links(page, tmp_path)] == [
        "gone.md: no such file",
        "other.md#nowhere: no such anchor",
        "#three-sites: no such anchor",
        "missing.md: no such file",
    ]


def test_the_diary_check_finds_diary_phrases() -> None:
    for phrase in ("on the third day", "On the 4th day", "measured today", "yesterday's run",
                   "earlier that day"):
        assert DIARY.search(phrase), phrase
    for fact in ("Measured on 2026-11-27 on the CI machine kind", "at most 24 a day",
                 "over the day"):
        assert not DIARY.search(fact), fact


def test_the_two_commands_are_the_scripts_and_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The two commands"):]
    section = section[:section.index("\n## ", 1)]
    commands = re.findall(r"^```sh\n(.*?)\n```$", section, re.MULTILINE | re.DOTALL)
    assert commands == ["scripts/demo.sh", "scripts/test.sh"]
    for command in commands:
        assert (ROOT / command).stat().st_mode & 0o111, f"{command} is not executable"
    ci = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == ["bash scripts/test.sh"]
