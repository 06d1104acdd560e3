"""YAML configuration parsed once into frozen objects.

Strict in the way blackbox_exporter is: unknown keys, wrong types and bad
values are errors, and every problem in a file is reported at once, one line
each as `FILE: path.to.field: problem`, so an administrator fixes a file in
one pass. Nothing downstream re-validates: whatever holds a Config may trust it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pydicom.uid
import yaml

PROBERS = ("tcp", "echo", "negotiate", "store")
ROLES = ("link_computer", "partner", "relay")
REQUIRED_LABELS = ("site", "role")
# Label names the exporter sets itself on /sd and its metrics.
RESERVED_LABELS = frozenset(
    {"target", "module", "prober", "job", "instance", "ae_title", "reason", "phase"}
)
DEFAULT_CALLING_AE = "DICOM_EXPORTER"
DEFAULT_TIMEOUT = 5.0
DEFAULT_TRANSFER_SYNTAXES = ("ExplicitVRLittleEndian", "ImplicitVRLittleEndian")
DEFAULT_STORE_SOP_CLASS = "SecondaryCaptureImageStorage"
# A UID root that is ours to hand out test UIDs under: the pydicom root, which
# pydicom itself uses for generated UIDs. Sites may set their own.
DEFAULT_UID_ROOT = "1.2.826.0.1.3680043.8.498."
DEFAULT_STORE_MIN_INTERVAL = 3600.0

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UID_ROOT = re.compile(r"^[0-9]+(\.[0-9]+)*\.$")

_PROBER_KEYS = {
    "tcp": {"prober", "timeout"},
    "echo": {"prober", "timeout", "calling_ae_title"},
    "negotiate": {"prober", "timeout", "calling_ae_title", "sop_classes", "transfer_syntaxes"},
    "store": {
        "prober", "timeout", "calling_ae_title", "sop_classes", "transfer_syntaxes",
        "uid_root", "min_interval",
    },
}
_MODULE_KEYS = set().union(*_PROBER_KEYS.values())
_TARGET_KEYS = {"host", "port", "ae_title", "modules", "labels"}
_TOP_KEYS = {"modules", "targets"}


class ConfigError(Exception):
    """All problems found in one file; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Module:
    name: str
    prober: str
    timeout: float
    calling_ae_title: str = DEFAULT_CALLING_AE
    # (keyword as written, UID) pairs; keywords label metrics, UIDs go on the wire.
    sop_classes: tuple[tuple[str, str], ...] = ()
    transfer_syntaxes: tuple[str, ...] = ()
    uid_root: str = DEFAULT_UID_ROOT
    min_interval: float = DEFAULT_STORE_MIN_INTERVAL


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    ae_title: str
    modules: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Config:
    source: str
    modules: Mapping[str, Module]
    targets: Mapping[str, Target]


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


def _uid_for(keyword_or_uid: str) -> str | None:
    if _UID.match(keyword_or_uid):
        return keyword_or_uid if len(keyword_or_uid) <= 64 else None
    value = getattr(pydicom.uid, keyword_or_uid, None)
    return str(value) if isinstance(value, pydicom.uid.UID) else None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; we report them."""

    duplicates: list[tuple[str, int]]


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            loader.duplicates.append((str(key), key_node.start_mark.line + 1))
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


class _Checker:
    """Collects problems with their field paths instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def error(self, path: str, problem: str) -> None:
        self.problems.append(f"{self.source}: {path}: {problem}")

    def mapping(self, value: object, path: str, allowed: set[str] | None) -> dict:
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
        self, name: str, raw: object, path: str, allowed: set[str], needs: str
    ) -> dict | None:
        """A named entry of a section (a module, a target): its body, or None."""
        if not _NAME.match(name):
            self.error(path, "name must be letters, digits, '_', '.', '-'")
        body = self.mapping(raw, path, allowed)
        if raw is None:
            self.error(path, f"must be a mapping with {needs}")
        return body if isinstance(raw, dict) else None

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.error(path, f"must be a non-empty string, got {_shown(value)}")
            return None
        return value

    def string_list(self, value: object, path: str) -> list[str]:
        if not isinstance(value, list) or not value:
            self.error(path, f"must be a non-empty list, got {_shown(value)}")
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
            self.error(path, f"must be a duration string like 5s, got {_shown(value)}")
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


def _shown(value: object) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _parse_module(check: _Checker, name: str, raw: object) -> Module | None:
    path = f"modules.{name}"
    body = check.entry(name, raw, path, _MODULE_KEYS, "at least 'prober'")
    if body is None:
        return None
    prober = body.get("prober")
    if prober not in PROBERS:
        check.error(f"{path}.prober", f"must be one of {', '.join(PROBERS)}, got {_shown(prober)}")
        return None
    for key in sorted(set(body) & _MODULE_KEYS - _PROBER_KEYS[prober]):
        check.error(f"{path}.{key}", f"not used by prober {prober}")
    timeout = check.duration(body.get("timeout"), f"{path}.timeout", DEFAULT_TIMEOUT)
    calling = DEFAULT_CALLING_AE
    if "calling_ae_title" in body:
        calling = check.ae_title(body["calling_ae_title"], f"{path}.calling_ae_title") or calling
    sop_classes: list[tuple[str, str]] = []
    transfer_syntaxes: list[str] = []
    if prober in ("negotiate", "store"):
        default_sop = ["CTImageStorage"] if prober == "negotiate" else [DEFAULT_STORE_SOP_CLASS]
        names = body.get("sop_classes", default_sop)
        for index, item in enumerate(check.string_list(names, f"{path}.sop_classes")):
            uid = _uid_for(item)
            if uid is None:
                check.error(f"{path}.sop_classes[{index}]", f"unknown SOP class {item!r}")
            else:
                sop_classes.append((item, uid))
        if prober == "store" and len(sop_classes) > 1:
            check.error(f"{path}.sop_classes", "store sends one object: give one SOP class")
        names = body.get("transfer_syntaxes", list(DEFAULT_TRANSFER_SYNTAXES))
        for index, item in enumerate(check.string_list(names, f"{path}.transfer_syntaxes")):
            uid = _uid_for(item)
            if uid is None:
                check.error(
                    f"{path}.transfer_syntaxes[{index}]", f"unknown transfer syntax {item!r}"
                )
            else:
                transfer_syntaxes.append(uid)
    uid_root = DEFAULT_UID_ROOT
    if "uid_root" in body:
        root = check.string(body["uid_root"], f"{path}.uid_root")
        if root is not None and (not _UID_ROOT.match(root) or len(root) > 40):
            check.error(
                f"{path}.uid_root",
                f"{root!r} must be digits and dots ending in '.', at most 40 characters",
            )
        elif root is not None:
            uid_root = root
    min_interval = check.duration(
        body.get("min_interval"), f"{path}.min_interval", DEFAULT_STORE_MIN_INTERVAL
    )
    return Module(
        name=name,
        prober=prober,
        timeout=timeout,
        calling_ae_title=calling,
        sop_classes=tuple(sop_classes),
        transfer_syntaxes=tuple(transfer_syntaxes),
        uid_root=uid_root,
        min_interval=min_interval,
    )


def _parse_target(
    check: _Checker, name: str, raw: object, modules: Mapping[str, Module]
) -> Target | None:
    path = f"targets.{name}"
    body = check.entry(name, raw, path, _TARGET_KEYS, "host, port, ae_title and modules")
    if body is None:
        return None
    for key in ("host", "port", "ae_title", "modules"):
        if key not in body:
            check.error(f"{path}.{key}", "missing required field")
    host = check.string(body.get("host"), f"{path}.host") if "host" in body else None
    port = body.get("port")
    if "port" in body and (isinstance(port, bool) or not isinstance(port, int)):
        check.error(f"{path}.port", f"must be an integer, got {_shown(port)}")
        port = None
    elif isinstance(port, int) and not 1 <= port <= 65535:
        check.error(f"{path}.port", f"{port} is out of range 1-65535")
        port = None
    ae_title = None
    if "ae_title" in body:
        ae_title = check.ae_title(body["ae_title"], f"{path}.ae_title")
    module_names: list[str] = []
    if "modules" in body:
        module_names = check.string_list(body["modules"], f"{path}.modules")
        for index, module in enumerate(module_names):
            if module not in modules:
                check.error(f"{path}.modules[{index}]", f"unknown module {module!r}")
        if len(set(module_names)) != len(module_names):
            check.error(f"{path}.modules", "lists a module twice")
    labels: dict[str, str] = {}
    raw_labels = check.mapping(body.get("labels"), f"{path}.labels", None)
    for key, value in raw_labels.items():
        label_path = f"{path}.labels.{key}"
        if not isinstance(key, str):
            continue
        if not _LABEL_NAME.match(key) or key.startswith("__"):
            check.error(label_path, "is not a valid Prometheus label name")
        elif key in RESERVED_LABELS:
            check.error(label_path, "is set by the exporter itself; choose another name")
        elif not isinstance(value, str) or not value:
            check.error(label_path, f"must be a non-empty string, got {_shown(value)}")
        else:
            labels[key] = value
    for key in REQUIRED_LABELS:
        if key not in raw_labels:
            check.error(f"{path}.labels.{key}", "missing required label")
    role = labels.get("role")
    if role is not None and role not in ROLES:
        check.error(f"{path}.labels.role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    if host is None or port is None or ae_title is None or not module_names:
        return None
    return Target(
        name=name,
        host=host,
        port=port,
        ae_title=ae_title,
        modules=tuple(module_names),
        labels=MappingProxyType(labels),
    )


def parse(text: str, source: str) -> Config:
    """Parse a YAML document; raise ConfigError listing every problem."""
    check = _Checker(source)
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{source}: {where}: invalid YAML: {problem}"]) from None
    finally:
        loader.dispose()
    for key, line in loader.duplicates:
        check.error(f"line {line}", f"duplicate key {key!r}")
    if not isinstance(document, dict):
        raise ConfigError([f"{source}: document: must be a mapping with modules and targets"])
    top = check.mapping(document, "document", _TOP_KEYS)
    for key in sorted(_TOP_KEYS):
        if key not in top:
            check.error(key, "missing required section")
    modules: dict[str, Module] = {}
    for name, raw in check.mapping(top.get("modules"), "modules", None).items():
        module = _parse_module(check, str(name), raw)
        if module is not None:
            modules[module.name] = module
    targets: dict[str, Target] = {}
    for name, raw in check.mapping(top.get("targets"), "targets", None).items():
        target = _parse_target(check, str(name), raw, modules)
        if target is not None:
            targets[target.name] = target
    if check.problems:
        raise ConfigError(check.problems)
    return Config(source, MappingProxyType(modules), MappingProxyType(targets))


def load(path: str | Path) -> Config:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{source}: file: cannot read: {exc}"]) from None
    return parse(text, source)
