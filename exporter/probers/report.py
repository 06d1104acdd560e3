"""What one probe found out, filled in by the prober and read by everything else.

The report is the only thing a prober hands back besides its bool, so the
/probe registry, the exporter's counters, the CLI and the logs all describe a
probe from the same facts. What was probed (target, module, timeout, the
probe's log) is its `context`, which the report carries for its readers but
never changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.dicom.codec import Accepted, ContextResult
from exporter.dicom.failure import ProbeFailure
from exporter.probers.context import ProbeContext
from exporter.reasons import Reason


@dataclass
class ProbeReport:
    context: ProbeContext = field(repr=False)
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

    def fail(self, failure: ProbeFailure) -> bool:
        self.reason = failure.reason
        self.detail = failure.detail
        self.reject = failure.reject or self.reject
        self.abort = failure.abort or self.abort
        if failure.status is not None:
            self.status = failure.status
        self.failed_phase = failure.phase
        # not the exception: its traceback holds frames
        self.context.note("failed: %s", str(failure))
        return False
