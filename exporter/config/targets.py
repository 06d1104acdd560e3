"""YAML configuration parsed once into frozen objects.

Strict in the way blackbox_exporter is: unknown keys, wrong types and bad
values are errors, and every problem in a file is reported at once, one line
each as `FILE: path.to.field: problem`, so an administrator fixes a file in
one pass. Nothing downstream re-validates: whatever holds a Config may trust it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pydicom.uid

from exporter.config.prober_kinds import KINDS, MODULE_KEYS, VERIFY_MODES
from exporter.config.routine_model import Routine, parse_routine
from exporter.config.storable import store_sop_class_problem, store_transfer_syntax_problem
from exporter.config.strict import (
    Checker,
    brief,
    read_file,
    read_yaml,
    shown,
)
from exporter.config.target_tls import TargetTLS, parse_target_tls
from exporter.config.topology import Route, Site, parse_routes, parse_sites

ROLES = ("link_computer", "partner", "relay")
REQUIRED_LABELS = ("site", "role")
# Label names the exporter, Prometheus or the exposition format set themselves:
# a target label of the same name would overwrite dicom_exporter_target_info's
# own labels, clash with a probe metric's labels when Prometheus attaches the
# /sd labels, or (le, quantile) break the exposition. `site` and `region` are
# the target's own labels that route metrics repeat, so they are not here.
# tests/test_config.py checks this list against every label the exporter exposes.
RESERVED_LABELS = frozenset(
    {"target", "module", "prober", "job", "instance", "ae_title", "host", "port",
     "le", "quantile", "reason", "phase", "partner", "direction", "route", "path",
     "status", "state", "kind", "last_resort", "result", "source", "diagnostic",
     "sop_class", "version", "implementation_class_uid", "implementation_version_name",
     "pynetdicom_version", "pydicom_version", "python_version", "revision"}
)
DEFAULT_RESULTS_MAX_AGE = 120.0
DEFAULT_CALLING_AE = "DICOM_EXPORTER"
DEFAULT_TIMEOUT = 5.0
DEFAULT_TRANSFER_SYNTAXES = ("ExplicitVRLittleEndian", "ImplicitVRLittleEndian")
DEFAULT_STORE_SOP_CLASS = "SecondaryCaptureImageStorage"
# A UID root that is ours to hand out test UIDs under: the pydicom root, which
# pydicom itself uses for generated UIDs. Sites may set their own.
DEFAULT_UID_ROOT = "1.2.826.0.1.3680043.8.498."
DEFAULT_STORE_MIN_INTERVAL = 3600.0
# The longest value each duration may have. A probe timeout beyond any
# sensible scrape timeout is a typo (and 99999999999h would overflow the
# socket and thread timeouts); a store more rarely than monthly, or results
# trusted for over a week, is no longer monitoring.
MAX_TIMEOUT = 600.0
MAX_STORE_MIN_INTERVAL = 31 * 86400.0
MAX_RESULTS_MAX_AGE = 7 * 86400.0
MAX_LABEL_VALUE = 1024
# The store probe's test object: its pixel data is at least this many bytes.
# The default (0) is the 8x8 image, one PDU; a larger one is fragmented over
# several P-DATA PDUs. Capped: a test object must stay small in an archive.
MAX_TEST_OBJECT_SIZE = 16 * 2**20
_SIZE = re.compile(r"([0-9]+)\s*(B|KiB|MiB)?")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20}

# Matched with fullmatch: `$` would let a trailing newline through.
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_UID_ROOT = re.compile(r"[0-9]+(\.[0-9]+)*\.")
# A DNS name or an IPv4/IPv6 address: no spaces, controls or URL syntax.
_HOST = re.compile(r"[A-Za-z0-9_.:%-]{1,253}")

_TARGET_KEYS = {"host", "port", "ae_title", "modules", "labels", "calling_ae_title", "tls"}
_TOP_KEYS = {"modules", "targets", "sites", "routes", "results_max_age", "routine"}
_REQUIRED_TOP_KEYS = ("modules", "targets")


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
    test_object_size: int = 0  # bytes of pixel data at least; 0: the 8x8 image
    # tcp: the targets are known to take a bare TCP connect (check-config's note off).
    tcp_safe: bool = False
    # Probe the target once per partner, calling as that partner does: does
    # our receiver still accept partner X ("problem med att ta emot", 3)?
    as_partners: bool = False
    # Store only: how to learn that the peer kept the object (VERIFY_MODES).
    verify: str = "none"


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    ae_title: str
    modules: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # A partner's own AE title when it calls us (YAML `calling_ae_title`).
    calls_us_as: str | None = None
    # Set on the receive-side targets derived from `as_partners` modules: the
    # calling AE title to probe with instead of the module's.
    probe_calling_ae: str | None = None
    tls: TargetTLS | None = None


@dataclass(frozen=True)
class Config:
    source: str
    modules: Mapping[str, Module]
    targets: Mapping[str, Target]
    sites: Mapping[str, Site] = field(default_factory=lambda: MappingProxyType({}))
    routes: Mapping[str, Route] = field(default_factory=lambda: MappingProxyType({}))
    # Older results count as unknown when route states are computed.
    results_max_age: float = DEFAULT_RESULTS_MAX_AGE
    routine: Routine = field(default_factory=Routine)


def _uid_for(keyword_or_uid: str) -> str | None:
    if _UID.fullmatch(keyword_or_uid):
        return keyword_or_uid if len(keyword_or_uid) <= 64 else None
    value = getattr(pydicom.uid, keyword_or_uid, None)
    return str(value) if isinstance(value, pydicom.uid.UID) else None


def _parse_module(check: Checker, name: str, raw: object) -> Module | None:
    path = f"modules.{name}"
    body = check.entry(name, raw, path, MODULE_KEYS, "at least 'prober'")
    if body is None:
        return None
    prober = body.get("prober")
    if not isinstance(prober, str) or prober not in KINDS:
        check.error(f"{path}.prober", f"must be one of {', '.join(KINDS)}, got {shown(prober)}")
        return None
    for key in sorted(set(body) & MODULE_KEYS - KINDS[prober].keys):
        check.error(f"{path}.{key}", f"not used by prober {prober}")
    timeout = check.duration(body.get("timeout"), f"{path}.timeout", DEFAULT_TIMEOUT,
                             MAX_TIMEOUT)
    calling = DEFAULT_CALLING_AE
    if "calling_ae_title" in body:
        calling = check.ae_title(body["calling_ae_title"], f"{path}.calling_ae_title") or calling
    sop_classes: list[tuple[str, str]] = []
    transfer_syntaxes: list[str] = []
    syntax_names: list[tuple[str, str]] = []
    if prober in ("negotiate", "store"):
        default_sop = ["CTImageStorage"] if prober == "negotiate" else [DEFAULT_STORE_SOP_CLASS]
        names = body.get("sop_classes", default_sop)
        for index, item in enumerate(check.string_list(names, f"{path}.sop_classes")):
            uid = _uid_for(item)
            if uid is None:
                check.error(f"{path}.sop_classes[{index}]", f"unknown SOP class {brief(item)}")
            elif _listed_twice(check, uid, sop_classes, f"{path}.sop_classes[{index}]"):
                pass
            elif prober == "store" and (problem := store_sop_class_problem(item)):
                check.error(f"{path}.sop_classes[{index}]", problem)
            else:
                sop_classes.append((item, uid))
        if prober == "store" and len(sop_classes) > 1:
            check.error(f"{path}.sop_classes", "store sends one object: give one SOP class")
        names = body.get("transfer_syntaxes", list(DEFAULT_TRANSFER_SYNTAXES))
        for index, item in enumerate(check.string_list(names, f"{path}.transfer_syntaxes")):
            uid = _uid_for(item)
            if uid is None:
                check.error(
                    f"{path}.transfer_syntaxes[{index}]",
                    f"unknown transfer syntax {brief(item)}",
                )
            elif _listed_twice(check, uid, syntax_names, f"{path}.transfer_syntaxes[{index}]"):
                pass
            elif prober == "store" and (problem := store_transfer_syntax_problem(uid)):
                check.error(f"{path}.transfer_syntaxes[{index}]", problem)
            else:
                syntax_names.append((item, uid))
                transfer_syntaxes.append(uid)
    uid_root = DEFAULT_UID_ROOT
    if "uid_root" in body:
        root = check.string(body["uid_root"], f"{path}.uid_root")
        if root is not None and (not _UID_ROOT.fullmatch(root) or len(root) > 40):
            check.error(
                f"{path}.uid_root",
                f"{root!r} must be digits and dots ending in '.', at most 40 characters",
            )
        elif root is not None:
            uid_root = root
    min_interval = check.duration(
        body.get("min_interval"), f"{path}.min_interval", DEFAULT_STORE_MIN_INTERVAL,
        MAX_STORE_MIN_INTERVAL,
    )
    verify = "none"
    if "verify" in body:
        value = body["verify"]
        if not isinstance(value, str) or value not in VERIFY_MODES:
            check.error(f"{path}.verify",
                        f"must be one of {', '.join(VERIFY_MODES)}, got {shown(value)}")
        else:
            verify = value
    return Module(
        name=name,
        prober=prober,
        timeout=timeout,
        calling_ae_title=calling,
        sop_classes=tuple(sop_classes),
        transfer_syntaxes=tuple(transfer_syntaxes),
        uid_root=uid_root,
        min_interval=min_interval,
        test_object_size=_size(check, body.get("test_object_size", 0),
                               f"{path}.test_object_size"),
        tcp_safe=_flag(check, body, "tcp_safe", path),
        as_partners=_flag(check, body, "as_partners", path),
        verify=verify,
    )


def _size(check: Checker, value: object, path: str) -> int:
    """A size in bytes: 4096, "64KiB", "2MiB"."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        check.error(path, f"must be a size such as 64KiB or 2MiB, got {shown(value)}")
        return 0
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if size > MAX_TEST_OBJECT_SIZE:
        check.error(path, f"{text} is larger than the largest allowed, 16MiB")
        return 0
    return size


def _listed_twice(check: Checker, uid: str, earlier: list[tuple[str, str]], path: str) -> bool:
    """A UID given twice (as keyword or number) would duplicate contexts and series."""
    for keyword, seen in earlier:
        if seen == uid:
            check.error(path, f"lists {uid} twice (already as {keyword!r})")
            return True
    return False


def _host(check: Checker, value: object, path: str) -> str | None:
    host = check.string(value, path)
    if host is not None and not _HOST.fullmatch(host):
        check.error(path, f"{brief(host)} is not a host name or IP address")
        return None
    return host


def _label_value_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"must be a non-empty string, got {shown(value)}"
    if len(value) > MAX_LABEL_VALUE:
        return f"is {len(value)} characters long, at most {MAX_LABEL_VALUE} are allowed"
    if not value.isprintable():
        return f"{brief(value)} has control characters or line breaks"
    return None


def _flag(check: Checker, body: dict[str, Any], key: str, path: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        check.error(f"{path}.{key}", f"must be true or false, got {shown(value)}")
        return False
    return value


def _parse_target(
    check: Checker, name: str, raw: object, modules: Mapping[str, Module]
) -> Target | None:
    path = f"targets.{name}"
    body = check.entry(name, raw, path, _TARGET_KEYS, "host, port, ae_title and modules")
    if body is None:
        return None
    for key in ("host", "port", "ae_title", "modules"):
        if key not in body:
            check.error(f"{path}.{key}", "missing required field")
    host = _host(check, body.get("host"), f"{path}.host") if "host" in body else None
    port = body.get("port")
    if "port" in body and (isinstance(port, bool) or not isinstance(port, int)):
        check.error(f"{path}.port", f"must be an integer, got {shown(port)}")
        port = None
    elif isinstance(port, int) and not 1 <= port <= 65535:
        check.error(f"{path}.port", f"{brief(port)} is out of range 1-65535")
        port = None
    ae_title = None
    if "ae_title" in body:
        ae_title = check.ae_title(body["ae_title"], f"{path}.ae_title")
    module_names: list[str] = []
    if "modules" in body:
        module_names = check.string_list(body["modules"], f"{path}.modules")
        for index, module in enumerate(module_names):
            if module not in modules:
                check.error(f"{path}.modules[{index}]", f"unknown module {brief(module)}")
        if len(set(module_names)) != len(module_names):
            check.error(f"{path}.modules", "lists a module twice")
    labels: dict[str, str] = {}
    raw_labels = check.mapping(body.get("labels"), f"{path}.labels", None)
    for key, value in raw_labels.items():
        label_path = f"{path}.labels.{key}"
        if not isinstance(key, str):
            continue
        if not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
            check.error(label_path, "is not a valid Prometheus label name")
        elif key in RESERVED_LABELS:
            check.error(label_path, "is set by the exporter itself; choose another name")
        elif (problem := _label_value_problem(value)) is not None:
            check.error(label_path, problem)
        else:
            labels[key] = value
    for key in REQUIRED_LABELS:
        if key not in raw_labels:
            check.error(f"{path}.labels.{key}", "missing required label")
    role = labels.get("role")
    if role is not None and role not in ROLES:
        check.error(f"{path}.labels.role",
                    f"must be one of {', '.join(ROLES)}, got {brief(role)}")
    calls_us_as = None
    if "calling_ae_title" in body:
        calls_us_as = check.ae_title(body["calling_ae_title"], f"{path}.calling_ae_title")
        if role == "link_computer":
            check.error(f"{path}.calling_ae_title", "is for partners: how they call us")
            calls_us_as = None
    tls = parse_target_tls(check, body["tls"], f"{path}.tls", host) if "tls" in body else None
    if host is None or port is None or ae_title is None or not module_names:
        return None
    return Target(
        name=name,
        host=host,
        port=port,
        ae_title=ae_title,
        modules=tuple(module_names),
        labels=MappingProxyType(labels),
        calls_us_as=calls_us_as,
        tls=tls,
    )


def _receive_targets(
    check: Checker, targets: dict[str, Target], modules: Mapping[str, Module]
) -> dict[str, Target]:
    """Expand `as_partners` modules: one receive-side target per calling partner.

    `z97117` with module `receive_echo` and partner `skane` calling as
    SKANE_PACS becomes `z97117.from.skane`: the host, port and called AE title
    of Z97117, probed with SKANE_PACS as calling AE title.
    """
    callers = [t for t in targets.values() if t.calls_us_as]
    out: dict[str, Target] = {}
    for target in targets.values():
        per_partner = [m for m in target.modules if m in modules and modules[m].as_partners]
        if not per_partner:
            out[target.name] = target
            continue
        if not callers:
            check.error(f"targets.{target.name}.modules",
                        f"{per_partner[0]!r} probes as partners, but no target has "
                        "calling_ae_title")
        kept = tuple(m for m in target.modules if m not in per_partner)
        if kept:
            out[target.name] = replace(target, modules=kept)
        for partner in callers:
            name = f"{target.name}.from.{partner.name}"
            if name in targets or name in out:
                # Never a silent replacement: one of the two would vanish.
                check.error(f"targets.{name}",
                            f"clashes with the receive-side target generated for "
                            f"{target.name} called as {partner.name} ({per_partner[0]!r} "
                            "has as_partners): rename it")
                continue
            labels = {**target.labels, "partner": partner.name, "direction": "receive"}
            out[name] = replace(
                target, name=name, modules=tuple(per_partner),
                labels=MappingProxyType(labels), probe_calling_ae=partner.calls_us_as,
            )
    return out


def parse(text: str, source: str) -> Config:
    """Parse a YAML document; raise ConfigError listing every problem."""
    check = Checker(source)
    return from_document(read_yaml(text, check), check)


def from_document(document: object, check: Checker) -> Config:
    """Validate a read document into a Config, in time linear in its size."""
    source = check.source
    if not isinstance(document, dict):
        check.error("document", "must be a mapping with modules and targets")
        raise check.failure()
    top = check.mapping(document, "document", _TOP_KEYS)
    for key in _REQUIRED_TOP_KEYS:
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
    sites = parse_sites(check, top.get("sites"))
    if sites:
        for target in targets.values():
            if target.labels.get("site") not in sites:
                check.error(f"targets.{target.name}.labels.site",
                            f"unknown site {target.labels.get('site')!r} "
                            f"(sites: {', '.join(sites)})")
    routes = parse_routes(check, top.get("routes"), sites, targets)
    max_age = check.duration(top.get("results_max_age"), "results_max_age",
                             DEFAULT_RESULTS_MAX_AGE, MAX_RESULTS_MAX_AGE)
    routine = parse_routine(check, top.get("routine"), targets, routes, sites, modules)
    targets = _receive_targets(check, targets, modules)
    if check.problems:
        raise check.failure()
    return Config(source, MappingProxyType(modules), MappingProxyType(targets),
                  MappingProxyType(sites), MappingProxyType(routes), max_age, routine)


def notes(config: Config) -> list[str]:
    """Advice that is no error: check-config prints it, the exporter runs anyway.

    A `tcp` probe connects and closes before any A-ASSOCIATE-RQ; at least one
    DICOM server shipped in Debian exits on that, so a tcp probe every few
    seconds would cause the outage it reports. Every target is a DICOM peer
    (it has an AE title), so each tcp module in use gets the note unless it
    says its peers are known to take it (`tcp_safe: true`).
    """
    found = []
    for module in config.modules.values():
        if module.prober != "tcp" or module.tcp_safe:
            continue
        names = [t.name for t in config.targets.values() if module.name in t.modules]
        if names:
            found.append(
                f"{config.source}: modules.{module.name}: note: a tcp probe of a DICOM peer "
                f"({', '.join(names)}) closes the connection before any association; some "
                "DICOM servers exit on that. Use echo for DICOM peers, or set tcp_safe: true "
                "on the module when its peers are known to take it")
    return found


def load(path: str | Path) -> Config:
    return parse(read_file(path), str(path))
