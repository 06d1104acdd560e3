"""DIMSE status codes sorted the way PS3.7 Annex C sorts them.

The classes come from pynetdicom's table of the standard's codes rather than
from ranges of our own: 0x0107 (attribute list error) and 0x0116 (attribute
value out of range) are warnings although they lie outside 0xB000-0xBFFF.
"""

from __future__ import annotations

from pynetdicom.status import code_to_category

from exporter.reasons import Reason

SUCCESS = 0x0000


def category(status: int) -> str:
    """"Success", "Warning", "Failure", "Cancel", "Pending" or "Unknown"."""
    return str(code_to_category(status))


def is_warning(status: int) -> bool:
    return category(status) == "Warning"


def failure_reason(status: int) -> Reason | None:
    """None for success, else the reason a probe that got this status fails with.

    Pending and Cancel never end a C-ECHO or C-STORE (PS3.7 9.1), and an
    unknown code promises nothing: all of them fail like a failure status.
    """
    kind = category(status)
    if kind == "Success":
        return None
    return Reason.STATUS_WARNING if kind == "Warning" else Reason.STATUS_FAILURE
