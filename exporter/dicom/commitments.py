"""Storage Commitment reports awaited by probes and delivered by the listener.

A store probe with `verify: commit` asks for commitment under a fresh,
random Transaction UID and waits for the report. A peer may send it on the
probe's own association or open a new one to our DICOM listener; the
listener hands what it receives to `deliver`, which wakes the probe waiting
for that transaction. Each waiter has an eventfd, so the probe waits on its
association's socket and on the listener's delivery in one poll(), without
a thread or a polling loop. A report for no waiting transaction (a late or
forged one: Transaction UIDs are random, so one cannot be guessed) is
dropped (the listener counts it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from exporter.dicom.verify_codec import CommitmentResult

# Transactions awaited at once: far above any probe concurrency, so only a bug
# could reach it; past it a probe fails rather than the exporter growing.
MOST_WAITERS = 4096


class Waiter:
    """One probe's wait for the report of one transaction."""

    def __init__(self, transaction_uid: str) -> None:
        self.transaction_uid = transaction_uid
        self.result: CommitmentResult | None = None
        self.from_ae = ""
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def fileno(self) -> int:
        return self._fd

    def _wake(self, result: CommitmentResult, from_ae: str) -> None:
        self.result, self.from_ae = result, from_ae
        with contextlib.suppress(OSError):
            os.eventfd_write(self._fd, 1)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


@dataclass
class Commitments:
    """The awaited transactions, owned by the Exporter's ProberState."""

    # Set while a listener runs: a probe then says whether a report could have
    # reached us on a new association.
    listening: bool = False
    _waiters: dict[str, Waiter] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def expect(self, transaction_uid: str) -> Iterator[Waiter | None]:
        """A waiter for `transaction_uid` while the block runs (None: too many)."""
        waiter = Waiter(transaction_uid)
        with self._lock:
            if len(self._waiters) >= MOST_WAITERS:
                waiter.close()
                yield None
                return
            self._waiters[transaction_uid] = waiter
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.pop(transaction_uid, None)
            waiter.close()

    def deliver(self, result: CommitmentResult, from_ae: str) -> bool:
        """Wake the probe awaiting this transaction; False if none is."""
        with self._lock:
            waiter = self._waiters.pop(result.transaction_uid, None)
            if waiter is None:
                return False
            waiter._wake(result, from_ae)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiters)
