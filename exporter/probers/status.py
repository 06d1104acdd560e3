"""DIMSE status codes sorted the way PS3.7 Annex C sorts them."""

from __future__ import annotations

from exporter.probers.report import ProbeReport
from exporter.reasons import Reason
from exporter.upperlayer import DimseResponse, ProbeFailure


def is_warning(status: int) -> bool:
    return status == 0x0001 or 0xB000 <= status <= 0xBFFF


def check(report: ProbeReport, response: DimseResponse, what: str) -> None:
    """Record the status; anything but success ends the probe with its class."""
    report.status = response.status
    comment = f" ({response.error_comment})" if response.error_comment else ""
    report.note(f"{what} status 0x{response.status:04X}{comment}")
    if response.status == 0x0000:
        return
    reason = Reason.STATUS_WARNING if is_warning(response.status) else Reason.STATUS_FAILURE
    raise ProbeFailure(
        reason, f"{what} status 0x{response.status:04X}{comment}", status=response.status
    )
