"""Reading YAML strictly: every problem collected with its field path.

Shared by the config sections (modules, targets, sites, routes) so that all
of them word their problems the same way: `FILE: path.to.field: problem`.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Any

import yaml

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(Exception):
    """All problems found in one file; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(text: str) -> float:
    """Prometheus-style duration ("5s", "1m30s", "500ms") in seconds."""
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"invalid duration {text!r} (use e.g. 5s, 500ms, 1m30s, 1h)")
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def ae_title_problem(value: object) -> str | None:
    """PS3.5: 1-16 characters of the default repertoire, no backslash or controls."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value.strip():
        return "must not be empty"
    if len(value) > 16:
        return f"{value!r} is {len(value)} characters long, at most 16 are allowed"
    if value != value.strip():
        return f"{value!r} has leading or trailing spaces"
    if any(ch == "\\" or not (" " <= ch <= "~") for ch in value):
        return f"{value!r} has characters outside printable ASCII or a backslash"
    return None


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; we report them."""

    duplicates: list[tuple[str, int]]


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            loader.duplicates.append((str(key), key_node.start_mark.line + 1))
        seen.add(key)
    return loader.construct_mapping(node)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


class Checker:
    """Collects problems with their field paths instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def error(self, path: str, problem: str) -> None:
        # One line per problem even when a key or value holds a newline.
        line = f"{path}: {problem}"
        line = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in line)
        self.problems.append(f"{self.source}: {line}")

    def mapping(self, value: object, path: str, allowed: AbstractSet[str] | None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if not isinstance(key, str):
                self.error(path, f"key {key!r} must be a string")
            elif allowed is not None and key not in allowed:
                names = ", ".join(sorted(allowed))
                self.error(f"{path}.{key}", f"unknown field (allowed: {names})")
        return value

    def entry(
        self, name: str, raw: object, path: str, allowed: AbstractSet[str], needs: str
    ) -> dict | None:
        """A named entry of a section (a module, a target): its body, or None."""
        if not NAME.match(name):
            self.error(path, "name must be letters, digits, '_', '.', '-'")
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

    def duration(self, value: object, path: str, default: float) -> float:
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
        return seconds

    def ae_title(self, value: object, path: str) -> str | None:
        problem = ae_title_problem(value)
        if problem:
            self.error(path, problem)
            return None
        return value  # type: ignore[return-value]


def shown(value: object) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"
