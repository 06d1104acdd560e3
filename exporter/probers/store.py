"""C-STORE of a synthetic test object: can the peer really receive.

Storing every scrape would fill a partner's archive, so a store probe within
the module's min_interval of the last real one for the same target repeats
that result (with its age) instead of sending again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from io import BytesIO

from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode

from exporter.probers import status
from exporter.probers.report import ProbeReport
from exporter.probers.session import association
from exporter.reasons import Reason
from exporter.testobject import synthetic_instance
from exporter.upperlayer import ProbeFailure, encode_dimse, presentation_contexts

IMPLICIT_LITTLE, EXPLICIT_BIG = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"


@dataclass(frozen=True)
class _Remembered:
    at: float
    report: ProbeReport


_last: dict[tuple[str, str], _Remembered] = {}
_lock = threading.Lock()


def _repeat(report: ProbeReport, previous: _Remembered) -> bool:
    old = previous.report
    for name in ("phases", "reason", "detail", "reject", "abort", "status", "peer", "contexts",
                 "tls_version", "tls_expiry"):
        setattr(report, name, getattr(old, name))
    report.result_age = time.monotonic() - previous.at
    report.note(
        f"repeating the store result from {report.result_age:.0f}s ago "
        f"(min_interval {report.module.min_interval:g}s)"
    )
    if not old.success and old.reason is not None:
        raise ProbeFailure(old.reason, old.detail, old.reject, old.abort, old.status)
    return True


def forget() -> None:
    """Drop remembered results, e.g. after a reload changed the modules."""
    with _lock:
        _last.clear()


def probe(report: ProbeReport) -> bool:
    key = (report.target.name, report.module.name)
    with _lock:
        previous = _last.get(key)
    if previous is not None and time.monotonic() - previous.at < report.module.min_interval:
        return _repeat(report, previous)
    try:
        _send(report)
    except ProbeFailure:
        report.success = False
        _remember(key, report)
        raise
    report.success = True
    _remember(key, report)
    return True


def _remember(key: tuple[str, str], report: ProbeReport) -> None:
    with _lock:
        _last[key] = _Remembered(time.monotonic(), report)


def _send(report: ProbeReport) -> None:
    module = report.module
    keyword, sop_class = module.sop_classes[0]
    contexts = presentation_contexts([sop_class], module.transfer_syntaxes)
    dataset = synthetic_instance(report.target.name, sop_class, module.uid_root)
    with association(report, contexts) as layer:
        context = layer.accepted.context_for(sop_class) if layer.accepted else None
        if context is None:
            raise ProbeFailure(Reason.NO_ACCEPTED_CONTEXT, f"{keyword} was not accepted")
        syntax = context.transfer_syntax
        encoded = encode(
            dataset,
            is_implicit_vr=syntax == IMPLICIT_LITTLE,
            is_little_endian=syntax != EXPLICIT_BIG,
            deflated=syntax == DEFLATED,
        )
        if encoded is None:
            raise ProbeFailure(Reason.INTERNAL_ERROR, f"cannot encode test object as {syntax}")
        request = C_STORE()
        request.MessageID = 1
        request.AffectedSOPClassUID = sop_class
        request.AffectedSOPInstanceUID = dataset.SOPInstanceUID
        request.Priority = 2  # low: a test must never delay a clinical transfer
        request.DataSet = BytesIO(encoded)
        peer_max = layer.accepted.peer_max_pdu if layer.accepted else 0
        report.note(f"C-STORE {dataset.SOPInstanceUID} as {syntax}, {len(encoded)} bytes")
        response = layer.request(encode_dimse(request, context.context_id, peer_max))
        status.check(report, response, "C-STORE")
