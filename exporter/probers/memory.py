"""What probes keep between them, owned by one Exporter and handed to each probe.

blackbox_exporter passes everything a prober may touch through its ProbeFn
arguments; here that is a ProberState, reached through the probe's context.
Nothing is module-global, so a reload, a test or a second Exporter in the same
process starts from what it owns. This module knows nothing of contexts or
reports: the store memory keeps its own frozen `StoreResult`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from exporter.dicom.association import OpenAssociations
from exporter.dicom.codec import Accepted, ContextResult
from exporter.dicom.commitments import Commitments
from exporter.probers.statefile import StateFile
from exporter.reasons import Reason


@dataclass(frozen=True)
class StoreKey:
    """Everything that can change what a C-STORE to a peer finds: two store
    probes share a result only when all of it is the same. A reload that
    changes none of it keeps the memory.

    A new setting that changes the result (store verification, say) is one
    more field here with a default, filled in by `store.store_key`; the state
    file writes fields by name, so a file from before it still loads.
    """

    host: str
    port: int
    called_ae: str
    calling_ae: str
    tls: str  # who we are and whom we trust over TLS (TargetTLS.identity), "" without TLS
    sop_class: str
    transfer_syntaxes: tuple[str, ...]  # proposed, in order
    test_object_size: int = 0  # a larger object can fail where a small one passes
    verify: str = ""  # a verified and an unverified store are two results


@dataclass(frozen=True)
class StoreResult:
    """What a real C-STORE found, as a repeat within min_interval reports it."""

    success: bool
    reason: Reason | None
    failed_phase: str | None
    detail: str
    reject: tuple[int, int, int] | None
    abort: tuple[int, int] | None
    status: int | None
    phases: dict[str, float]
    dns_lookup: float
    peer: Accepted | None
    contexts: tuple[ContextResult, ...]
    tls_version: str
    tls_expiry: float | None


@dataclass(frozen=True)
class Remembered:
    at: float  # time.monotonic() of the real C-STORE (or of its intent)
    # None: the C-STORE-RQ was about to go out when the exporter stopped (the
    # intent record of the state file), so nobody knows what the peer did.
    result: StoreResult | None

    def age(self) -> float:
        return time.monotonic() - self.at


class StoreMemory:
    """The last real C-STORE per key, so a partner's archive gets one per interval.

    `turn(key)` serialises probes of one key: a probe that arrives while the
    first one is storing waits for it and then shares its result. With a
    `path`, every change is written to that state file (exporter/probers/statefile.py), so a
    restart, even a crash loop, stores at most once per min_interval.
    """

    def __init__(self, path: str | None = None) -> None:
        self._last: dict[StoreKey, Remembered] = {}
        self._turns: dict[StoreKey, threading.Lock] = {}
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # one write at a time, in the order of changes
        self._file = StateFile(path) if path else None
        if self._file is not None:
            now_wall, now = time.time(), time.monotonic()
            for raw_key, wall, result in self._file.load(StoreKey, StoreResult):
                # Wall clock on disk, monotonic in memory; a clock set back
                # makes a store look new, never older than it is.
                self._last[raw_key] = Remembered(now - max(0.0, now_wall - wall), result)

    @property
    def path(self) -> str | None:
        return self._file.path if self._file is not None else None

    def get(self, key: StoreKey) -> Remembered | None:
        with self._lock:
            return self._last.get(key)

    def intend(self, key: StoreKey) -> None:
        """Record, on disk first, that a C-STORE-RQ is about to go out: a kill
        during the store still counts as a store."""
        self._set(key, Remembered(time.monotonic(), None))

    def remember(self, key: StoreKey, result: StoreResult) -> None:
        self._set(key, Remembered(time.monotonic(), result))

    def _set(self, key: StoreKey, remembered: Remembered) -> None:
        with self._lock:
            self._last[key] = remembered
        self._save()

    def keep_only(self, keys: set[StoreKey]) -> None:
        """After a reload (and at the start): drop keys no longer configured."""
        with self._lock:
            gone = set(self._last) - keys
            for key in gone:
                del self._last[key]
            for key in set(self._turns) - keys:
                del self._turns[key]
        if gone:
            self._save()

    def _save(self) -> None:
        if self._file is None:
            return
        with self._save_lock:
            now_wall, now = time.time(), time.monotonic()
            with self._lock:
                entries = [(key, now_wall - (now - kept.at), kept.result)
                           for key, kept in self._last.items()]
            self._file.save(entries)

    @contextmanager
    def turn(self, key: StoreKey, timeout: float) -> Iterator[bool]:
        """Yields True once this probe may store (or read the memory) for `key`."""
        with self._lock:
            lock = self._turns.setdefault(key, threading.Lock())
        got = lock.acquire(timeout=max(timeout, 0.0))
        try:
            yield got
        finally:
            if got:
                lock.release()


@dataclass
class ProberState:
    associations: OpenAssociations = field(default_factory=OpenAssociations)
    store: StoreMemory = field(default_factory=StoreMemory)
    # Storage Commitment reports awaited by store probes, delivered by the listener.
    commitments: Commitments = field(default_factory=Commitments)
