"""What the store prober can send, known to the config reader before any probe runs.

The test objects (exporter.dicom.testobject) exist for these SOP classes only,
and their native pixels can only travel in uncompressed transfer syntaxes; the
config refuses anything else for `store` with a FILE: field: problem message,
rather than letting a peer abort on an object we mislabelled.
"""

from __future__ import annotations

import re

from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)

# keyword (as in pydicom's UID dictionary / pynetdicom.sop_class) -> SOP Class UID
SUPPORTED_STORE_CLASSES: dict[str, str] = {
    "CTImageStorage": str(CTImageStorage),
    "MRImageStorage": str(MRImageStorage),
    "SecondaryCaptureImageStorage": str(SecondaryCaptureImageStorage),
}

# The transfer syntaxes the object can be sent in: the native (uncompressed) ones.
STORE_TRANSFER_SYNTAXES: tuple[str, ...] = (
    str(ImplicitVRLittleEndian),
    str(ExplicitVRLittleEndian),
    str(ExplicitVRBigEndian),
    str(DeflatedExplicitVRLittleEndian),
)

_UID_FORMAT = re.compile(r"^[0-9]+(\.[0-9]+)*$")

def store_sop_class_problem(sop_class: str) -> str | None:
    """None if `sop_class` (keyword or UID) can be stored, else why not."""
    if sop_class in SUPPORTED_STORE_CLASSES or sop_class in SUPPORTED_STORE_CLASSES.values():
        return None
    return (
        f"the store prober has no test object for SOP class {sop_class!r}; "
        f"supported: {', '.join(SUPPORTED_STORE_CLASSES)}"
    )


def store_transfer_syntax_problem(uid: str) -> str | None:
    """None if the test object can be sent in transfer syntax `uid`, else why not."""
    if uid in STORE_TRANSFER_SYNTAXES:
        return None
    if not _UID_FORMAT.match(uid):  # UID() would warn about it
        return f"{uid!r} is not a known transfer syntax"
    ts = UID(uid)
    name = f"{ts.name} ({ts})" if ts.name != ts else repr(str(ts))
    try:
        is_ts = ts.is_transfer_syntax
    except ValueError:
        is_ts = False
    if not is_ts:
        return f"{name} is not a known transfer syntax"
    if ts.is_compressed:
        return (
            f"{name} is compressed/encapsulated, but the store test object has native pixels; "
            f"use one of: {', '.join(UID(u).keyword for u in STORE_TRANSFER_SYNTAXES)}"
        )
    return f"{name} cannot be used to store the test object"  # pragma: no cover
