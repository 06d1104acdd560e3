"""What one probe found out, filled in by the prober and read by everything else.

The report is the only thing a prober hands back besides its bool, so the
/probe registry, the exporter's counters, the CLI and the logs all describe a
probe from the same facts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.config import Module, Target
from exporter.dicom.codec import Accepted, ContextResult
from exporter.dicom.failure import Deadline, ProbeFailure
from exporter.probers.memory import ProberState
from exporter.reasons import Reason


@dataclass
class ProbeReport:
    target: Target
    module: Module
    timeout: float
    state: ProberState = field(repr=False)
    deadline: Deadline = field(init=False)
    started: float = field(init=False)
    success: bool = False
    duration: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    dns_lookup: float = 0.0  # seconds resolving the host name (0 for an address)
    reason: Reason | None = None
    # The phase the probe failed in (prober_kinds.PHASES or "dns"), None when
    # it succeeded or failed outside any phase; its time is in `phases`.
    failed_phase: str | None = None
    detail: str = ""
    reject: tuple[int, int, int] | None = None
    abort: tuple[int, int] | None = None
    status: int | None = None
    peer: Accepted | None = None
    contexts: tuple[ContextResult, ...] = ()
    tls_version: str = ""  # "TLSv1.3" when the target speaks TLS
    tls_expiry: float | None = None  # the verified peer certificate's notAfter, Unix time
    # Store probes within the module's min_interval repeat the last result.
    result_age: float | None = None
    store_sent: bool = False  # a C-STORE-RQ went out: the peer may have stored it
    # (seconds since the start, message, its %-arguments), kept only for a
    # caller that will read `log` (debug=true, the CLI's --debug) and formatted
    # only then: the notes of every probe cost a fiftieth of a loopback echo.
    notes: list[tuple[float, str, tuple[str | int | float, ...]]] | None = field(
        default=None, repr=False)
    # Given by a caller that answers before tidying up (/probe): the probe's
    # socket is closed after the answer is written, not before (see `tidy`).
    deferred: list[Callable[[], None]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.deadline = Deadline(self.timeout)
        self.started = time.perf_counter()

    def note(self, message: str, *args: str | int | float) -> None:
        """`message % args`, as logging formats: only if the log is read. Strings
        and numbers only: anything else would live as long as the report."""
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

    def fail(self, failure: ProbeFailure) -> bool:
        self.reason = failure.reason
        self.detail = failure.detail
        self.reject = failure.reject or self.reject
        self.abort = failure.abort or self.abort
        if failure.status is not None:
            self.status = failure.status
        self.failed_phase = failure.phase
        self.note("failed: %s", str(failure))  # not the exception: its traceback holds frames
        return False
