"""One home for the words people read and for site facts (issue 25, item 4).

The words people read live in the routine package (`exporter/routine`) or the
config. This test reads the string literals (docstrings aside) of the HTTP
side (`exporter/web/`), the monitoring generators (`exporter/monitoring/`) and
`exporter/reasons.py`, and fails on a literal that reads as words (Swedish
letters, or two words in a row) unless it is listed in
`tests/words_allowlist.txt` beside this file; and it fails when a name from
the example config (a target, AE title, site, region or network) is written
in any module of the package, outside the same allowlist. The allowlist is
what is left on purpose: HTTP status phrases and log lines, the generators'
alert texts not yet moved, each with its section's reason. A literal that
moves away must leave the list too (a stale entry fails).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from exporter import config as config_module

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "exporter"
ALLOWLIST = Path(__file__).parent / "words_allowlist.txt"
WORDS_HOME = PACKAGE / "routine"
SCANNED = [*sorted((PACKAGE / "web").glob("*.py")),
           *sorted((PACKAGE / "monitoring").glob("*.py")), PACKAGE / "reasons.py"]
# Markup, templates, and PromQL's label lists "(target, site)": not words.
MARKUP = re.compile(r"<[^>]*>|\{\{.*?\}\}|\{[^{}]*\}|&[a-z]+;|\([\w\s,]*\)")
TWO_WORDS = re.compile(r"(?<![\w./-])([A-Za-z]{2,})[,:]? ([A-Za-z]{2,})(?![\w(])")
# PromQL's own words ("avg by (...)", "unless on (...)") are code, not words.
PROMQL = {"by", "on", "or", "and", "unless", "without", "ignoring", "bool", "offset"}


def literals(path: Path) -> Iterator[str]:
    """The module's string literals, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.value


def reads_as_words(text: str) -> bool:
    bare = MARKUP.sub(" ", text)
    return bool(re.search(r"[åäöÅÄÖ]", bare) or any(
        not {first.lower(), second.lower()} & PROMQL
        for first, second in TWO_WORDS.findall(bare)))


def example_names() -> set[str]:
    config = config_module.load(ROOT / "examples" / "kronoberg.yml")
    names = set()
    for target in config.targets.values():
        if target.labels.get("direction") != "receive":
            names |= {target.name, target.ae_title}
    for key, site in config.sites.items():
        names |= {key, site.name}
    for key, region in config.routine.regions.items():
        names |= {key, region}
    names.add(config.routine.wide_network)
    return {name for name in names if len(name) >= 4}


def allowlist() -> set[tuple[str, str]]:
    out = set()
    for line in ALLOWLIST.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            path, _, literal = line.partition("\t")
            out.add((path, ast.literal_eval(literal)))
    return out


def found() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(module, literal) pairs: words outside the routine package, and site names."""
    names = example_names()
    pattern = re.compile(r"(?<![\w])(" + "|".join(map(re.escape, sorted(names))) + r")s?(?!\w)")
    words, facts = set(), set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if path.is_relative_to(WORDS_HOME) or relative.endswith("_version.py"):
            continue
        for text in literals(path):
            if path in SCANNED and reads_as_words(text):
                words.add((relative, text))
            if pattern.search(text):
                facts.add((relative, text))
    return words, facts


def test_no_words_outside_the_routine_package_but_the_allowlisted() -> None:
    words, facts = found()
    allowed = allowlist()
    new = sorted((words | facts) - allowed)
    assert not new, "move these to exporter/routine or the config, or list them in " \
        f"{ALLOWLIST.name} with a reason:\n" + "\n".join(f"{p}\t{t!r}" for p, t in new)
    stale = sorted(allowed - words - facts)
    assert not stale, "no longer in the code, take them off the allowlist:\n" + "\n".join(
        f"{p}\t{t!r}" for p, t in stale)


def test_the_test_sees_a_word_and_a_name() -> None:
    assert reads_as_words('<th scope="col">Läge</th>')
    assert reads_as_words("request failed")
    assert not reads_as_words('probe_success{job="dicom_probe"} == 0')
    assert not reads_as_words("avg by (target, site) (up)")
    assert not reads_as_words("/runbooks/")
    assert {"Z97117", "Blekinge", "Skåne", "vaxjo", "Sjunet"} <= example_names()


ALERT_NAME = re.compile(
    r"\b(Dicom[A-Z]\w+|Watchdog|NoRouteAvailable|RouteOnFallback|ReceiverRejectsPartner)\b")
ALERT_NAMES_HOME = WORDS_HOME / "words.py"


def alert_names_in_code(path: Path) -> Iterator[tuple[int, str]]:
    """Alert names in a module's string literals (its docstrings may mention them)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings):
            for name in ALERT_NAME.findall(node.value):
                yield node.lineno, name


def test_alert_names_are_written_only_in_the_words_module() -> None:
    """An alert renamed in exporter/routine/words.py is renamed in the rules, the
    Alertmanager's routes and inhibitions, the status page and the CLI alike."""
    found = [f"{path.relative_to(ROOT)}:{line}: {name}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != ALERT_NAMES_HOME
             for line, name in alert_names_in_code(path)]
    assert not found, "\n".join(found)


def test_the_alert_name_finder_sees_a_name_but_not_a_docstring(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""About DicomLinkComputerDown."""\nX = \'alertname="Watchdog"\'\n',
                      encoding="utf-8")
    assert list(alert_names_in_code(module)) == [(2, "Watchdog")]
