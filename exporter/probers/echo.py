"""Association, C-ECHO, release: does the peer's DICOM service answer."""

from __future__ import annotations

from exporter.dicom.codec import VERIFICATION, presentation_contexts
from exporter.dicom.failure import ProbeFailure
from exporter.probers.report import ProbeReport
from exporter.probers.session import association, check_status
from exporter.reasons import Reason

TRANSFER_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
CONTEXTS = presentation_contexts([VERIFICATION], TRANSFER_SYNTAXES)


def probe(report: ProbeReport) -> bool:
    with association(report, CONTEXTS) as layer:
        context = layer.accepted.context_for(VERIFICATION) if layer.accepted else None
        if context is None:
            raise ProbeFailure(
                Reason.NO_ACCEPTED_CONTEXT, "Verification was not accepted", phase="associate")
        check_status(report, layer.echo(context.context_id), "C-ECHO")
    return True
