"""Reading YAML strictly: every problem collected with its field path.

Shared by the config sections (modules, targets, sites, routes) so that all
of them word their problems the same way: `FILE: path.to.field: problem`.

The reader is also the config's first line of defence against hostile or
broken files: it bounds the file size, the nesting depth and what YAML aliases
expand to before anything walks the document, so a bad file costs a clear
error line, never a traceback, a hang or the exporter's memory.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

import yaml

# Prometheus' duration format (model.ParseDuration): units from largest to
# smallest, each at most once; a year is 365 days, "0" alone is allowed.
_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?"
)
_UNIT_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)
# Prometheus keeps durations as int64 nanoseconds; nothing longer is a duration.
MAX_DURATION_MS = (2**63 - 1) // 1_000_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME_LENGTH = 128

# 16 MiB: a 5,000-target config is about 1 MiB, so this leaves room for a
# national monitor many times larger, while a hostile or runaway file is
# refused before it costs seconds of CPU and hundreds of MiB.
MAX_FILE_BYTES = 16 * 1024 * 1024
# Values in the document once aliases are expanded: ten times a 5,000-target
# config, far below what would take the exporter's memory (a "billion laughs"
# document of a few hundred bytes expands to 10^9).
MAX_NODES = 2_000_000
MAX_DEPTH = 64  # a config nests about six levels deep
MAX_PROBLEMS = 100  # more lines help nobody fix a file
_MAX_LINE = 600

if hasattr(yaml, "CSafeLoader"):  # libyaml: about ten times faster
    _BaseLoader: type = yaml.CSafeLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

_brief = reprlib.Repr()
_brief.maxstring = 60
_brief.maxother = 60
_brief.maxlong = 30
_brief.maxlist = _brief.maxdict = _brief.maxset = 4
_brief.maxlevel = 2


class ConfigError(Exception):
    """All problems found in one file; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(text: str) -> float:
    """Prometheus-style duration ("5s", "1m30s", "500ms", "1d", "2w") in seconds."""
    match = _DURATION.fullmatch(text)
    if text == "0":
        return 0.0
    if not text or match is None:
        raise ValueError(
            f"invalid duration {brief(text)} (use e.g. 5s, 500ms, 1m30s, 1h, 1d, 1w)"
        )
    total = 0
    for digits, unit in zip(match.groups(), _UNIT_MS, strict=True):
        if digits is None:
            continue
        if len(digits) > 20:  # int() of thousands of digits is itself an error
            raise ValueError(f"duration {brief(text)} is out of range")
        total += int(digits) * unit
    if total > MAX_DURATION_MS:
        raise ValueError(f"duration {brief(text)} is out of range")
    return total / 1000


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for a whole number of seconds, for messages."""
    rest = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size and rest % size == 0:
            return f"{rest // size}{unit}"
    return f"{rest}s"


def ae_title_problem(value: object) -> str | None:
    """PS3.5: 1-16 characters of the default repertoire, no backslash or controls."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value.strip():
        return "must not be empty"
    if len(value) > 16:
        return f"{brief(value)} is {len(value)} characters long, at most 16 are allowed"
    if value != value.strip():
        return f"{value!r} has leading or trailing spaces"
    if any(ch == "\\" or not (" " <= ch <= "~") for ch in value):
        return f"{value!r} has characters outside printable ASCII or a backslash"
    return None


class UniqueKeyLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """PyYAML keeps the last of two equal keys silently; we report them."""

    duplicates: list[tuple[str, int]]


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable: construct_mapping says so with its line
            continue
        if duplicate:
            loader.duplicates.append((brief(key), key_node.start_mark.line + 1))
        seen.add(key)
    return loader.construct_mapping(node)


def _marked(construct: Any) -> Any:
    """A scalar constructor whose ValueError (a 5,000-digit int, month 13) names its line."""

    def guarded(loader: UniqueKeyLoader, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as exc:
            # Python's own advice (sys.set_int_max_str_digits) is no help here.
            why = "too many digits" if "digits" in str(exc) else str(exc)
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {brief(node.value)}: {why}", node.start_mark
            ) from None

    return guarded


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
for _tag, _construct in (
    ("tag:yaml.org,2002:int", yaml.constructor.SafeConstructor.construct_yaml_int),
    ("tag:yaml.org,2002:float", yaml.constructor.SafeConstructor.construct_yaml_float),
    ("tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_timestamp),
):
    UniqueKeyLoader.add_constructor(_tag, _marked(_construct))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def graph_problem(root: yaml.Node) -> str | None:
    """Why the node graph is too big or deep once aliases are expanded, if it is.

    Aliases make the composed document a graph; its expanded size is counted
    once per distinct node (memoised), so a billion-laughs document is
    measured in microseconds and refused before anything expands it.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path = {id(root)}
    root_children = _children(root)
    stack = [(root, root_children, iter(root_children))]
    while stack:
        node, children, pending = stack[-1]
        child = next(pending, None)
        if child is not None:
            if id(child) in on_path:
                return "an alias refers to a value that contains it (a loop)"
            if id(child) not in size:
                on_path.add(id(child))
                grandchildren = _children(child)
                stack.append((child, grandchildren, iter(grandchildren)))
            continue
        stack.pop()
        on_path.discard(id(node))
        total, deepest = 1, 0
        for each in children:
            total += size[id(each)]
            deepest = max(deepest, height[id(each)])
        size[id(node)], height[id(node)] = total, deepest + 1
        if total > MAX_NODES:
            return f"more than {MAX_NODES:,} values once aliases are expanded"
        if deepest >= MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
    return None


def read_yaml(text: str, check: Checker) -> object:
    """The document of one YAML text; on any problem raise ConfigError."""
    if len(text) > MAX_FILE_BYTES:
        check.error("file", f"larger than {MAX_FILE_BYTES // 2**20} MiB")
        raise check.failure()
    loader = UniqueKeyLoader(text)  # the reader already rejects control characters
    loader.duplicates = []
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # Without a '*' there is no alias: the document is a tree no larger
        # than the file, and libyaml bounds its depth (RecursionError below).
        problem = graph_problem(node) if "*" in text else None
        if problem is not None:
            check.error("document", problem)
            raise check.failure()
        document = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        check.error(where, f"invalid YAML: {problem}")
        raise check.failure() from None
    except RecursionError:  # hundreds of levels: PyYAML's constructor recurses
        check.error("document", "nested too deeply (a config needs about six levels)")
        raise check.failure() from None
    finally:
        loader.dispose()
    for key, line in loader.duplicates:
        check.error(f"line {line}", f"duplicate key {key}")
    return document


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class Checker:
    """Collects problems with their field paths instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.dropped = 0

    def error(self, path: str, problem: str) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        # One short line per problem even when a key or value holds a newline
        # or a megabyte: the head names the field, the tail says what is wrong.
        line = _printable(f"{path}: {problem}")
        if len(line) > _MAX_LINE:
            line = f"{line[:_MAX_LINE // 2]}…{line[-_MAX_LINE // 2:]}"
        self.problems.append(f"{self.source}: {line}")

    def failure(self) -> ConfigError:
        """The ConfigError for every problem so far (with a count of those left out)."""
        problems = list(self.problems)
        if self.dropped:
            problems.append(f"{self.source}: document: {self.dropped} more problems not shown")
        return ConfigError(problems)

    def mapping(self, value: object, path: str, allowed: set[str] | frozenset[str] | None
                ) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if not isinstance(key, str):
                self.error(path, f"key {brief(key)} must be a string")
            elif allowed is not None and key not in allowed:
                names = ", ".join(sorted(allowed))
                self.error(f"{path}.{key}", f"unknown field (allowed: {names})")
        return value

    def name(self, name: str, path: str) -> bool:
        """Whether `name` may name an entry: it becomes a label value and a URL part."""
        if len(name) > MAX_NAME_LENGTH:
            self.error(path, f"name is {len(name)} characters long, at most "
                             f"{MAX_NAME_LENGTH} are allowed")
            return False
        if not NAME.fullmatch(name):
            self.error(path, "name must be letters, digits, '_', '.', '-'")
            return False
        return True

    def entry(
        self, name: str, raw: object, path: str, allowed: set[str] | frozenset[str], needs: str
    ) -> dict | None:
        """A named entry of a section (a module, a target): its body, or None."""
        self.name(name, path)
        body = self.mapping(raw, path, allowed)
        if raw is None:
            self.error(path, f"must be a mapping with {needs}")
        return body if isinstance(raw, dict) else None

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.error(path, f"must be a non-empty string, got {shown(value)}")
            return None
        return value

    def string_list(self, value: object, path: str) -> list[str]:
        if not isinstance(value, list) or not value:
            self.error(path, f"must be a non-empty list, got {shown(value)}")
            return []
        out = []
        for index, item in enumerate(value):
            text = self.string(item, f"{path}[{index}]")
            if text is not None:
                out.append(text)
        return out

    def duration(self, value: object, path: str, default: float, maximum: float) -> float:
        """A duration in (0, maximum]: every field has a longest sensible value."""
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(path, f"must be a duration string like 5s, got {shown(value)}")
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return default
        if seconds <= 0:
            self.error(path, "must be greater than zero")
            return default
        if seconds > maximum:
            self.error(path, f"{brief(value)} is longer than the longest allowed, "
                             f"{format_duration(maximum)}")
            return default
        return seconds

    def ae_title(self, value: object, path: str) -> str | None:
        problem = ae_title_problem(value)
        if problem:
            self.error(path, problem)
            return None
        return value  # type: ignore[return-value]


def brief(value: object) -> str:
    """repr() cut short: never expands a whole (aliased) tree into a message."""
    return _brief.repr(value)


def shown(value: object) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {brief(value)}"
