"""Reading YAML strictly: every problem collected with its field path.

Shared by the config sections (modules, targets, sites, routes) so that all
of them word their problems the same way: `FILE: path.to.field: problem`.

The reader is also the config's first line of defence against hostile or
broken files: it bounds the file size, the nesting depth and what YAML aliases
expand to before anything walks the document, so a bad file costs a clear
error line, never a traceback, a hang or the exporter's memory.
"""

from __future__ import annotations

import gc
import re
import reprlib
from pathlib import Path
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

# 8 MiB: a 5,000-target config is under 1 MiB, so this leaves room for about
# 45,000 targets, while reading the largest allowed file peaks at about
# 160 MiB and 8 s of CPU (benchmarks/config_scale.py): with the exporter's
# own ~50 MiB that stays inside the unit's MemoryMax=256M even when someone
# reloads a runaway file. (16 MiB peaked at 280 MiB, over it.)
MAX_FILE_BYTES = 8 * 1024 * 1024
# Linux's PATH_MAX: a longer value names no file, and is not worth a stat().
MAX_PATH = 4096
# Values in the document once aliases are expanded: ten times a 5,000-target
# config, far below what would take the exporter's memory (a "billion laughs"
# document of a few hundred bytes expands to 10^9).
MAX_NODES = 2_000_000
MAX_DEPTH = 64  # a config nests about six levels deep
MAX_PROBLEMS = 100  # more lines help nobody fix a file
_MAX_LINE = 600

if hasattr(yaml, "CSafeLoader"):  # libyaml: its event parser is about ten times faster
    _EventLoader: type = yaml.CSafeLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _EventLoader = yaml.SafeLoader

_brief = reprlib.Repr()
_brief.maxstring = 60
_brief.maxother = 60
_brief.maxlong = 30
_brief.maxlist = _brief.maxdict = _brief.maxset = 4
_brief.maxlevel = 2



def _line(event: yaml.Event) -> int:
    """The 0-based line an event starts on (libyaml always marks it; 0 if not)."""
    return event.start_mark.line if event.start_mark is not None else 0

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


_TAG = "tag:yaml.org,2002:"
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALARS: dict[str, Any] = {
    _TAG + "int": yaml.constructor.SafeConstructor.construct_yaml_int,
    _TAG + "float": yaml.constructor.SafeConstructor.construct_yaml_float,
    _TAG + "bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    _TAG + "timestamp": yaml.constructor.SafeConstructor.construct_yaml_timestamp,
}


class _Invalid(Exception):
    """A problem with the YAML itself, at a line."""

    def __init__(self, line: int, problem: str, whole: bool = False) -> None:
        super().__init__(problem)
        # `whole`: a bound on the document as a whole, named as such, not a line.
        self.line, self.problem, self.whole = line, problem, whole


# PyYAML's implicit resolvers by first character: a plain scalar whose first
# character starts none of them ("echo", "pacs.skane.invalid") is a string.
_IMPLICIT: dict[str | None, list[tuple[str, Any]]] = dict(_RESOLVER.yaml_implicit_resolvers)


def _scalar(event: yaml.ScalarEvent) -> Any:
    """The value of a scalar as PyYAML's SafeLoader reads it (YAML 1.1 tags)."""
    tag = event.tag
    if tag is None or tag == "!":
        value = event.value
        if not event.implicit[0]:  # quoted: always a string
            return value
        tag = _TAG + "str"
        for candidate, pattern in _IMPLICIT.get(value[:1] if value else "", ()):
            if pattern.match(value):
                tag = candidate
                break
    if tag == _TAG + "str":
        return event.value
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "merge":
        return _MERGE
    construct = _SCALARS.get(tag)
    if construct is None:
        raise _Invalid(_line(event), f"tag {brief(tag)} is not allowed in a config")
    try:
        return construct(_CONSTRUCTOR, yaml.ScalarNode(tag, event.value))
    except (ValueError, OverflowError) as exc:
        # Python's own advice (sys.set_int_max_str_digits) is no help here.
        why = "too many digits" if "digits" in str(exc) else str(exc)
        raise _Invalid(_line(event), f"cannot read {brief(event.value)}: {why}") from None


class _MergeKey:
    """YAML's `<<` merge key."""


_MERGE = _MergeKey()


class _Frame:
    """A mapping or sequence being built, with its expanded size and height."""

    __slots__ = ("anchor", "height", "key", "line", "merges", "size", "value")

    def __init__(self, value: dict[str, Any] | list[Any], anchor: str | None, line: int) -> None:
        self.value, self.anchor, self.line = value, anchor, line
        self.size, self.height = 1, 1
        self.key: Any = _NO_KEY
        self.merges: list[tuple[dict[str, Any], int]] = []


_NO_KEY = object()


class _Builder:
    """Builds the document from the parser's events, without PyYAML's node graph.

    Composing nodes and constructing from them costs most of PyYAML's time at
    5,000 targets; building straight from the events is several times faster
    and lets the reader bound what aliases expand to as it goes: an alias is
    a reference to an already built value whose expanded size and depth are
    known, so a "billion laughs" document is refused after a few hundred
    events, and nothing is ever expanded.
    """

    def __init__(self) -> None:
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.duplicates: list[tuple[str, int]] = []
        self.document: Any = None
        self.documents = 0

    def add(self, value: Any, size: int, height: int, line: int) -> None:
        depth = len(self.stack)
        if depth + height > MAX_DEPTH:
            raise _Invalid(line, f"nested deeper than {MAX_DEPTH} levels", whole=True)
        if not self.stack:
            self.document = value
            return
        frame = self.stack[-1]
        frame.size += size
        frame.height = max(frame.height, height + 1)
        if frame.size > MAX_NODES:
            raise _Invalid(line, f"more than {MAX_NODES:,} values (each alias counting the "
                                 "values it repeats)", whole=True)
        if isinstance(frame.value, list):
            frame.value.append(value)
        elif frame.key is _NO_KEY:
            frame.key = (value, line)
        else:
            key, key_line = frame.key
            frame.key = _NO_KEY
            self.put(frame, key, value, key_line)

    def put(self, frame: _Frame, key: Any, value: Any, line: int) -> None:
        mapping = frame.value
        assert isinstance(mapping, dict)
        if key is _MERGE:
            merged = value if isinstance(value, list) else [value]
            if not all(isinstance(each, dict) for each in merged):
                raise _Invalid(line, "a merge key (<<) needs a mapping or a list of mappings")
            frame.merges.extend((each, line) for each in merged)
            return
        try:
            if key in mapping:
                self.duplicates.append((brief(key), line + 1))
            mapping[key] = value
        except TypeError:
            raise _Invalid(line, "found unhashable key") from None

    def start(self, value: dict[str, Any] | list[Any], anchor: str | None, line: int) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _Invalid(line, f"nested deeper than {MAX_DEPTH} levels", whole=True)
        if anchor is not None:
            self.open_anchors.add(anchor)
        self.stack.append(_Frame(value, anchor, line))

    def end(self, line: int) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, dict) and frame.merges:
            for merged, _ in frame.merges:  # explicit keys win, then earlier merges
                for key, value in merged.items():
                    frame.value.setdefault(key, value)
                    frame.size += 1
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.value, frame.size, frame.height)
        self.add(frame.value, frame.size, frame.height, frame.line)

    def scalar(self, event: yaml.ScalarEvent) -> None:
        value = _scalar(event)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 1)
        self.add(value, 1, 1, _line(event))

    def event(self, event: yaml.Event) -> None:
        line = _line(event)
        if isinstance(event, yaml.MappingStartEvent):
            self.collection_tag(event, "map")
            self.start({}, event.anchor, line)
        elif isinstance(event, yaml.SequenceStartEvent):
            self.collection_tag(event, "seq")
            self.start([], event.anchor, line)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.end(line)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in self.open_anchors:
                raise _Invalid(line, "an alias refers to a value that contains it (a loop)",
                               whole=True)
            if event.anchor not in self.anchors:
                raise _Invalid(line, f"found undefined alias {brief(event.anchor)}")
            self.add(*self.anchors[event.anchor], line)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _Invalid(line, "expected a single document in the stream")

    @staticmethod
    def collection_tag(event: yaml.CollectionStartEvent, kind: str) -> None:
        if event.tag not in (None, "!", _TAG + kind):
            raise _Invalid(_line(event),
                           f"tag {brief(event.tag)} is not allowed in a config")


def unexpected(source: str, exc: BaseException) -> str:
    """One problem line for an error the reader did not foresee (a bug of ours):
    a reload that meets one keeps the running config like any other problem."""
    why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return f"{source}: file: cannot load: {why}"


def read_file(path: str | Path) -> str:
    """A config file's text: never more than its bound into memory, and a FIFO
    refused rather than waited on forever. Problems are ConfigErrors naming the file."""
    source = str(path)
    try:
        if Path(path).exists() and not Path(path).is_file():
            raise ConfigError([f"{source}: file: is not a regular file"])
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError([f"{source}: file: larger than {MAX_FILE_BYTES // 2**20} MiB"])
        return data.decode("utf-8")
    except (OSError, ValueError) as exc:  # ValueError: UnicodeDecodeError, a NUL in the path
        raise ConfigError([f"{source}: file: cannot read: {exc}"]) from None


def existing_file(check: Checker, where: str, value: object, base: Path | None = None
                  ) -> str | None:
    """The path of a file that exists, relative to `base` if given; else a problem.

    is_file() raises rather than answers for a name too long or a folder not
    searchable, so those are problems of the field too; a value longer than
    any path is refused without asking the disk.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        check.error(where, f"must be a file path, got {shown(value)}")
        return None
    if len(value) > MAX_PATH:
        check.error(where, f"{brief(value)} is longer than any file path ({MAX_PATH})")
        return None
    path = Path(value) if base is None or Path(value).is_absolute() else base / value
    try:
        found = path.is_file()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        check.error(where, f"{path}: {getattr(exc, 'strerror', None) or exc}")
        return None
    if not found:
        check.error(where, f"{path} is not a file" if path.exists() else f"{path} does not exist")
        return None
    return str(path)


def read_yaml(text: str, check: Checker) -> object:
    """The document of one YAML text; on any problem raise ConfigError."""
    if len(text) > MAX_FILE_BYTES:
        check.error("file", f"larger than {MAX_FILE_BYTES // 2**20} MiB")
        raise check.failure()
    builder = _Builder()
    loader = _EventLoader(text)
    # Building allocates one object per value and frees none: the cyclic
    # collector would only rescan the growing document, quadratically.
    collecting = gc.isenabled()
    gc.disable()
    try:
        scalar, on_scalar, other = yaml.ScalarEvent, builder.scalar, builder.event
        while True:
            event = loader.get_event()
            if event.__class__ is scalar:  # most events: the fast path
                on_scalar(event)
            elif isinstance(event, yaml.StreamEndEvent):
                break
            else:
                other(event)
    except _Invalid as exc:
        if exc.whole:
            check.error("document", exc.problem)
        else:
            check.error(f"line {exc.line + 1}", f"invalid YAML: {exc.problem}")
        raise check.failure() from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        check.error(where, f"invalid YAML: {problem}")
        raise check.failure() from None
    finally:
        loader.dispose()
        if collecting:
            gc.enable()
    for key, line in builder.duplicates:
        check.error(f"line {line}", f"duplicate key {key}")
    return builder.document


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
                ) -> dict[str, Any]:
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
    ) -> dict[str, Any] | None:
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
