"""DIMSE status codes sorted the way PS3.7 Annex C sorts them."""

from __future__ import annotations

from exporter.reasons import Reason

SUCCESS = 0x0000


def is_warning(status: int) -> bool:
    return status == 0x0001 or 0xB000 <= status <= 0xBFFF


def failure_reason(status: int) -> Reason | None:
    """None for success, else the reason a probe that got this status fails with."""
    if status == SUCCESS:
        return None
    return Reason.STATUS_WARNING if is_warning(status) else Reason.STATUS_FAILURE
