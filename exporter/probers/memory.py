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
from exporter.reasons import Reason


@dataclass(frozen=True)
class StoreKey:
    """The configured peer a store probe writes to. A reload that changes
    none of these keeps the memory."""

    host: str
    port: int
    called_ae: str
    sop_class: str
    verify: str  # a verified and an unverified store are two results


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
    at: float  # time.monotonic() of the real C-STORE
    result: StoreResult

    def age(self) -> float:
        return time.monotonic() - self.at


class StoreMemory:
    """The last real C-STORE per peer, so a partner's archive gets one per interval.

    `turn(key)` serialises probes of one peer: a probe that arrives while the
    first one is storing waits for it and then shares its result.
    """

    def __init__(self) -> None:
        self._last: dict[StoreKey, Remembered] = {}
        self._turns: dict[StoreKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: StoreKey) -> Remembered | None:
        with self._lock:
            return self._last.get(key)

    def remember(self, key: StoreKey, result: StoreResult) -> None:
        with self._lock:
            self._last[key] = Remembered(time.monotonic(), result)

    def forget(self, key: StoreKey) -> None:
        with self._lock:
            self._last.pop(key, None)

    def keep_only(self, keys: set[StoreKey]) -> None:
        """After a reload: drop peers no longer configured, keep the rest."""
        with self._lock:
            for key in set(self._last) - keys:
                del self._last[key]
            for key in set(self._turns) - keys:
                del self._turns[key]

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
