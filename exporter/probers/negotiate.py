"""Association proposing what we send, release, no data.

Tells "the peer is up but will not take CT images from us" apart from "the
peer is down", without putting anything in the peer's archive.
"""

from __future__ import annotations

from exporter.dicom.codec import VERIFICATION, presentation_contexts
from exporter.dicom.failure import ProbeFailure
from exporter.probers.report import ProbeReport
from exporter.probers.session import association
from exporter.reasons import Reason


def probe(report: ProbeReport) -> bool:
    module = report.module
    wanted = [uid for _, uid in module.sop_classes]
    contexts = presentation_contexts([*wanted, VERIFICATION], module.transfer_syntaxes)
    with association(report, contexts) as layer:
        accepted = layer.accepted
        refused = [
            keyword
            for keyword, uid in module.sop_classes
            if accepted is None or accepted.context_for(uid) is None
        ]
    # Released politely first: the peer did nothing wrong at the DICOM level.
    if refused:
        raise ProbeFailure(Reason.NO_ACCEPTED_CONTEXT, "not accepted: " + ", ".join(refused),
                           phase="associate")
    return True
