"""The Swedish runbooks, served by the exporter so `runbook_url` needs no web host.

They ship inside the package (exporter/data/runbooks links to runbooks/), and
are rendered with Python-Markdown: the runbooks carry tables and code blocks
an administrator copies from, which a hand-written renderer would get wrong.
Only names made of letters and digits are looked up, so a request can never
reach outside that folder.
"""

from __future__ import annotations

import html
import re
from importlib import resources
from importlib.resources.abc import Traversable

import markdown

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
INDEX = "README"


def _folder() -> Traversable:
    return resources.files("exporter").joinpath("data", "runbooks")


def names() -> list[str]:
    return sorted(
        entry.name.removesuffix(".md")
        for entry in _folder().iterdir()
        if entry.name.endswith(".md") and entry.name != f"{INDEX}.md"
    )


def source(name: str) -> str | None:
    """The Markdown of one runbook, or None for anything that is not one."""
    name = name.removesuffix(".md")
    if not _NAME.match(name):
        return None
    entry = _folder().joinpath(f"{name}.md")
    if not entry.is_file():
        return None
    return entry.read_text(encoding="utf-8")


def render(name: str) -> str | None:
    text = source(name)
    if text is None:
        return None
    body = markdown.markdown(text, extensions=["tables", "fenced_code"], output_format="html")
    title = text.splitlines()[0].lstrip("# ").strip() if text else name
    return f"""<!doctype html>
<html lang="sv"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 1rem auto;
       padding: 0 1rem; line-height: 1.5; color: #111; background: #fff; }}
pre, code {{ background: #f1f1f1; }} pre {{ padding: .6rem; overflow-x: auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #999; padding: .25rem .5rem;
       vertical-align: top; }}
a {{ color: #0645ad; }}
</style></head>
<body><nav><a href="/runbooks/">Alla runbooks</a> · <a href="/">Översikt</a></nav>
{body}
</body></html>
"""
