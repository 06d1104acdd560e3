"""Association, C-ECHO, release: does the peer's DICOM service answer."""

from __future__ import annotations

from exporter.probers import status
from exporter.probers.report import ProbeReport
from exporter.probers.session import association
from exporter.reasons import Reason
from exporter.upperlayer import VERIFICATION, ProbeFailure, presentation_contexts

TRANSFER_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")


def probe(report: ProbeReport) -> bool:
    contexts = presentation_contexts([VERIFICATION], TRANSFER_SYNTAXES)
    with association(report, contexts) as layer:
        context = layer.accepted.context_for(VERIFICATION) if layer.accepted else None
        if context is None:
            raise ProbeFailure(Reason.NO_ACCEPTED_CONTEXT, "Verification was not accepted")
        status.check(report, layer.echo(context.context_id), "C-ECHO")
    return True
