"""What probes keep between them, owned by one Exporter and handed to each probe.

blackbox_exporter passes everything a prober may touch through its ProbeFn
arguments; here that is a ProberState. Nothing is module-global, so a reload,
a test or a second Exporter in the same process starts from what it owns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exporter.dicom.association import OpenAssociations
from exporter.dicom.commitments import Commitments

if TYPE_CHECKING:
    from exporter.probers.report import ProbeReport

# The configured peer a store probe writes to: host, port, called AE title,
# SOP class and how the store is verified. A reload that changes none of them
# keeps the memory.
StoreKey = tuple[str, int, str, str, str]


@dataclass(frozen=True)
class Remembered:
    at: float  # time.monotonic() of the real C-STORE
    report: ProbeReport

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

    def remember(self, key: StoreKey, report: ProbeReport) -> None:
        with self._lock:
            self._last[key] = Remembered(time.monotonic(), report)

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
