"""Association, C-ECHO, release: does the peer's DICOM service answer."""

from __future__ import annotations

from exporter.dicom.codec import VERIFICATION, presentation_contexts
from exporter.dicom.failure import ProbeFailure
from exporter.probers.context import ProbeContext
from exporter.probers.report import ProbeReport
from exporter.probers.session import association, check_status
from exporter.reasons import Reason

TRANSFER_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
CONTEXTS = presentation_contexts([VERIFICATION], TRANSFER_SYNTAXES)


def probe(context: ProbeContext, report: ProbeReport) -> bool:
    with association(context, report, CONTEXTS) as layer:
        verification = layer.accepted.context_for(VERIFICATION) if layer.accepted else None
        if verification is None:
            raise ProbeFailure(
                Reason.NO_ACCEPTED_CONTEXT, "Verification was not accepted", phase="associate")
        response = layer.echo(verification.context_id)
        if layer.has_buffered():  # more than the one response, already here
            raise ProbeFailure(Reason.PROTOCOL_ERROR, "more than one C-ECHO-RSP: a duplicate "
                               "or unexpected DIMSE response", phase="dimse")
        layer.complete = True  # one more before the release's answer is a protocol error
        check_status(context, report, response, "C-ECHO")
    return True
