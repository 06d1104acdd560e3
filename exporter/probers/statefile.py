"""The store memory on disk: one small JSON file, replaced atomically.

A restart must not store again within min_interval, or a crash-looping
exporter (Restart=on-failure) writes a test instance into a partner's archive
every few seconds. So the last real store per key, and the intent record
written just before each C-STORE-RQ goes out, live in this file. It is
written whole to a temporary file beside it, flushed to disk and renamed over
the old one: a reader sees the old file or the new one, never half of one.
A missing, unreadable or corrupt file is one warning line and an empty
memory; a file that cannot be written is one warning line per failed write.
The exporter never stops over it.

Format (version 1): {"version": 1, "stores": [{"key": {field: value},
"at": Unix time, "result": {field: value} or null}]}; null is an intent
whose outcome nobody saw.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from exporter.dicom.codec import Accepted, ContextResult
from exporter.reasons import Reason

VERSION = 1
FILE_NAME = "store-memory.json"
logger = logging.getLogger("dicom_exporter")

K = TypeVar("K")
R = TypeVar("R")


def default_path() -> str | None:
    """The file in the service's state directory: systemd's StateDirectory=
    sets STATE_DIRECTORY. Outside systemd there is no default."""
    directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return str(Path(directory) / FILE_NAME) if directory else None


def _plain(value: object) -> object:
    if isinstance(value, Reason):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _tuples(value: object) -> object:
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def _key(cls: type[K], raw: dict[str, Any]) -> K:
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: _tuples(value) for name, value in raw.items() if name in known})


def _context(raw: dict[str, Any]) -> ContextResult:
    return ContextResult(int(raw["context_id"]), str(raw["abstract_syntax"]),
                         bool(raw["accepted"]), str(raw["transfer_syntax"]), int(raw["result"]))


def _result(cls: type[R], raw: dict[str, Any]) -> R:
    peer = raw["peer"]
    return cls(
        success=bool(raw["success"]),
        reason=Reason(raw["reason"]) if raw["reason"] is not None else None,
        failed_phase=raw["failed_phase"],
        detail=str(raw["detail"]),
        reject=_tuples(raw["reject"]),
        abort=_tuples(raw["abort"]),
        status=raw["status"],
        phases={str(k): float(v) for k, v in raw["phases"].items()},
        dns_lookup=float(raw["dns_lookup"]),
        peer=None if peer is None else Accepted(
            tuple(_context(cx) for cx in peer["contexts"]), int(peer["peer_max_pdu"]),
            str(peer["implementation_class_uid"]), str(peer["implementation_version_name"])),
        contexts=tuple(_context(cx) for cx in raw["contexts"]),
        tls_version=str(raw["tls_version"]),
        tls_expiry=raw["tls_expiry"],
    )  # type: ignore[call-arg]


class StateFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def load(self, key_class: type[K], result_class: type[R]
             ) -> list[tuple[K, float, R | None]]:
        """Every entry of the file; nothing (and one warning) if it is not there
        or not readable as a whole."""
        try:
            with open(self.path, encoding="utf-8") as file:
                document = json.load(file)
            if not isinstance(document, dict) or document.get("version") != VERSION:
                raise ValueError(f"not a version {VERSION} store memory")
            return [(_key(key_class, entry["key"]), float(entry["at"]),
                     None if entry["result"] is None else _result(result_class, entry["result"]))
                    for entry in document["stores"]]
        except FileNotFoundError:
            logger.warning("no store memory yet, starting empty", extra={"fields": {
                "file": self.path}})
        except Exception as exc:  # corrupt in any way: start empty, never crash
            logger.warning("store memory unreadable, starting empty; stores may repeat "
                           "once", extra={"fields": {"file": self.path,
                                                     "problem": f"{type(exc).__name__}: {exc}"}})
        return []

    def save(self, entries: Iterable[tuple[object, float, object | None]]) -> None:
        document = {"version": VERSION, "stores": [
            {"key": _plain(key), "at": at, "result": _plain(result)}
            for key, at, result in entries]}
        text = json.dumps(document, indent=1, sort_keys=True)
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            handle, temporary = tempfile.mkstemp(prefix=".store-memory.", dir=directory)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(text)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
            folder = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(folder)  # the rename itself survives a power cut
            finally:
                os.close(folder)
        except OSError as exc:
            logger.warning("store memory not written; a restart may store again before "
                           "min_interval", extra={"fields": {
                               "file": self.path, "problem": f"{type(exc).__name__}: {exc}"}})
