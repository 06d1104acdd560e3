"""Association proposing what we send, release, no data.

Tells "the peer is up but will not take CT images from us" apart from "the
peer is down", without putting anything in the peer's archive.
"""

from __future__ import annotations

from exporter.probers.report import ProbeReport
from exporter.probers.session import association
from exporter.reasons import Reason
from exporter.upperlayer import VERIFICATION, ProbeFailure, presentation_contexts


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
        raise ProbeFailure(Reason.NO_ACCEPTED_CONTEXT, "not accepted: " + ", ".join(refused))
    return True
