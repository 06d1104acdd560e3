"""What a prober may read: one immutable context per probe.

blackbox_exporter hands its ProbeFn the target, the module, a deadline and a
logger, and takes the findings back in a registry; here the inputs are one
ProbeContext and the findings a ProbeReport (exporter/probers/report.py). The
context is frozen, so a prober cannot change what the next reader of the
report believes was probed. Its two sinks (the notes for a log that is read,
the deferred tidy-ups of a caller that answers first) are appended to, never
replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.config import Module, Target
from exporter.dicom.failure import Deadline
from exporter.probers.memory import ProberState

# (seconds since the start, message, its %-arguments)
Note = tuple[float, str, tuple[str | int | float, ...]]


@dataclass(frozen=True)
class ProbeContext:
    target: Target
    module: Module
    timeout: float
    state: ProberState = field(repr=False)
    deadline: Deadline = field(repr=False)
    started: float  # time.perf_counter() at the start
    # Kept only for a caller that will read `log` (debug=true, the CLI's
    # --debug) and formatted only then: the notes of every probe cost a
    # fiftieth of a loopback echo.
    notes: list[Note] | None = field(default=None, repr=False)
    # Given by a caller that answers before tidying up (/probe): the probe's
    # socket is closed after the answer is written, not before (see `tidy`).
    deferred: list[Callable[[], None]] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, target: Target, module: Module, timeout: float,
              state: ProberState | None = None,
              deferred: list[Callable[[], None]] | None = None,
              log: bool = False) -> ProbeContext:
        """The context of a probe starting now; without `state`, from nothing."""
        return cls(target, module, timeout, state or ProberState(), Deadline(timeout),
                   time.perf_counter(), [] if log else None, deferred)

    def note(self, message: str, *args: str | int | float) -> None:
        """`message % args`, as logging formats: only if the log is read. Strings
        and numbers only: anything else would live as long as the context."""
        if self.notes is not None:
            self.notes.append((time.perf_counter() - self.started, message, args))

    @property
    def log(self) -> list[str]:
        return [f"{elapsed * 1000:9.3f}ms {message % args if args else message}"
                for elapsed, message, args in self.notes or ()]

    def tidy(self, action: Callable[[], None]) -> None:
        """Run `action` (closing a finished probe's socket) now, or leave it to
        the caller that gave `deferred`: on loopback a close also runs the
        peer's side of the teardown, and the answer need not wait for that."""
        if self.deferred is None:
            action()
        else:
            self.deferred.append(action)
