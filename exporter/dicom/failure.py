"""How a probe fails and when it must stop: shared by every DICOM layer.

Every failure leaves the DICOM layers as a ProbeFailure carrying its Reason;
the caller says which reason a timeout means at each step. The Deadline is
absolute, so every socket call below a probe gets only the time left.
"""

from __future__ import annotations

import time
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

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"



class Deadline:
    """Absolute end of a probe on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()
