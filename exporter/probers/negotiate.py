"""Association proposing what we send, release, no data.

Tells "the peer is up but will not take CT images from us" apart from "the
peer is down", without putting anything in the peer's archive.
"""

from __future__ import annotations

from exporter.dicom.codec import VERIFICATION, presentation_contexts
from exporter.dicom.failure import ProbeFailure
from exporter.probers.context import ProbeContext
from exporter.probers.report import ProbeReport
from exporter.probers.session import association, refusal
from exporter.reasons import Reason


def probe(context: ProbeContext, report: ProbeReport) -> bool:
    module = context.module
    wanted = [uid for _, uid in module.sop_classes]
    proposed = presentation_contexts([*wanted, VERIFICATION], module.transfer_syntaxes)
    with association(context, report, proposed) as layer:
        accepted = layer.accepted
        refused = [
            (keyword, uid)
            for keyword, uid in module.sop_classes
            if accepted is None or accepted.context_for(uid) is None
        ]
    # Released politely first: the peer did nothing wrong at the DICOM level.
    if refused:
        raise ProbeFailure(Reason.NO_ACCEPTED_CONTEXT, "not accepted: " + "; ".join(
            f"{keyword}: {refusal(report, uid)}" for keyword, uid in refused), phase="associate")
    return True
