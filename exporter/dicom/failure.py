"""How a probe fails and when it must stop: shared by every DICOM layer.

Every failure leaves the DICOM layers as a ProbeFailure carrying its Reason;
the caller says which reason a timeout means at each step. The Deadline is
absolute, so every socket call below a probe gets only the time left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

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


class timed:  # noqa: N801 - used as a context manager, like the function it replaced
    """Add the time spent in phase `name` to `phases`, also when it fails.

    A failed phase used to be reported as 0 s; the time until it failed (a
    timeout, a reset after 2 s) is what tells a slow peer from a dead one. A
    failure leaving the block is marked with the phase unless an inner step
    already named it. A class, not a generator: a third of the cost, on every
    probe.
    """

    __slots__ = ("name", "phases", "started")

    def __init__(self, phases: dict[str, float], name: str) -> None:
        self.phases = phases
        self.name = name
        self.started = time.perf_counter()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, failure: BaseException | None,
                 traceback: TracebackType | None) -> None:
        phases, name = self.phases, self.name
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - self.started
        if isinstance(failure, ProbeFailure) and failure.phase is None:
            failure.phase = name
