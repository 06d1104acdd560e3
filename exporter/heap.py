"""Freed heap memory back to the system after a burst: glibc's `malloc_trim`.

A flood of TLS handshakes (or of requests) leaves the RSS at its high-water
mark: OpenSSL's buffers and the answers are freed, but glibc keeps freed
memory inside its arenas (one per thread that allocated, up to eight per
core) and gives back only a free block at the very top of a heap.
`malloc_trim(0)` returns every whole free page of every arena to the system
(`madvise(MADV_DONTNEED)`); what is still in use stays where it is.

When: serve's main loop, which wakes twice a second anyway, asks `tick()`.
A trim runs once connections have closed since the last one, none closed
since the tick before (the burst is over: trimming during it would only hand
back pages the next connection faults in again), and at least
`TRIM_INTERVAL` after the last one; so at most one every 10 s, and none while
idle or while a flood goes on. A trim walks the arenas' free lists under
their locks: some milliseconds after a flood, microseconds otherwise.

Where the C library has no `malloc_trim` (musl, not Linux) this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable

logger = logging.getLogger("dicom_exporter.heap")

TRIM_INTERVAL = 10.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim from the process's own C library, or None."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # no C library to open, or not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class Trimmer:
    """Trims once a burst of `closed()` (a count that only grows) is over."""

    def __init__(self, closed: Callable[[], int], interval: float = TRIM_INTERVAL,
                 trim: Callable[[int], int] | None = None) -> None:
        self._closed = closed
        self._trim = trim if trim is not None else _malloc_trim()
        self.interval = interval
        self._trimmed_at = self._last = closed()
        self._next = 0.0
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def tick(self, now: float | None = None) -> bool:
        """Trim if a burst has ended since the last trim; whether it did."""
        closed = self._closed()
        moving, self._last = closed != self._last, closed
        now = time.monotonic() if now is None else now
        if self._trim is None or moving or closed == self._trimmed_at or now < self._next:
            return False
        self._trimmed_at, self._next = closed, now + self.interval
        started = time.perf_counter()
        self._trim(0)
        self.trims += 1
        logger.debug("heap trimmed", extra={"fields": {
            "connections_closed": closed, "ms": round((time.perf_counter() - started) * 1000, 2)}})
        return True
