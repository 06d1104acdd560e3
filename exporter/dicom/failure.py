"""How a probe fails and when it must stop: shared by every DICOM layer.

Every failure leaves the DICOM layers as a ProbeFailure carrying its Reason;
the caller says which reason a timeout means at each step. The Deadline is
absolute, so every socket call below a probe gets only the time left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from exporter.reasons import Reason


@dataclass
class ProbeFailure(Exception):
    """A classified failure; `detail` is for logs, never a label value."""

    reason: Reason
    detail: str
    reject: tuple[int, int, int] | None = None  # result, source, diagnostic
    abort: tuple[int, int] | None = None  # source, reason
    status: int | None = None
    # Where it happened: one of prober_kinds.PHASES or "dns"; set by whoever
    # times the step, so the report can say which phase failed and how long it ran.
    phase: str | None = None

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


class Deadline:
    """Absolute end of a probe on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()


@contextmanager
def timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Add the time spent in phase `name` to `phases`, also when it fails.

    A failed phase used to be reported as 0 s; the time until it failed (a
    timeout, a reset after 2 s) is what tells a slow peer from a dead one. A
    failure leaving the block is marked with the phase unless an inner step
    already named it.
    """
    started = time.perf_counter()
    try:
        yield
    except ProbeFailure as failure:
        if failure.phase is None:
            failure.phase = name
        raise
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
