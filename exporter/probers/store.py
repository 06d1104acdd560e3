"""C-STORE of a synthetic test object: can the peer really receive.

Storing every scrape would fill a partner's archive, so a store probe within
the module's min_interval of the last real one to the same peer repeats that
result (with its age) instead of sending again. Probes of one peer take turns,
so concurrent first probes store once and share the result. Only a probe whose
C-STORE-RQ went out is remembered: one that never reached the peer's archive
(refused, timed out, rejected) tries again at the next scrape.
"""

from __future__ import annotations

from io import BytesIO

from pynetdicom.dimse_primitives import C_STORE

from exporter.config import Module, Target
from exporter.dicom.codec import (
    C_STORE_RSP,
    STORE_MESSAGE_ID,
    VERIFICATION,
    Expected,
    encode_dimse,
    presentation_contexts,
)
from exporter.dicom.failure import ProbeFailure
from exporter.dicom.testobject import encode_for, synthetic_instance
from exporter.probers.memory import Remembered, StoreKey
from exporter.probers.report import ProbeReport
from exporter.probers.session import association, check_status
from exporter.probers.verify import contexts_with, refused_by_abort, verify_stored
from exporter.reasons import Reason


def store_key(target: Target, module: Module) -> StoreKey:
    return (target.host, target.port, target.ae_title, module.sop_classes[0][1], module.verify)


def _repeat(report: ProbeReport, previous: Remembered) -> bool:
    old = previous.report
    for name in ("phases", "dns_lookup", "reason", "detail", "reject", "abort", "status",
                 "peer", "contexts", "tls_version", "tls_expiry"):
        setattr(report, name, getattr(old, name))
    report.result_age = previous.age()
    report.note("repeating the store result from %.0fs ago (min_interval %gs)",
                report.result_age, report.module.min_interval)
    if not old.success and old.reason is not None:
        raise ProbeFailure(old.reason, old.detail, old.reject, old.abort, old.status,
                           old.failed_phase)
    return True


def probe(report: ProbeReport) -> bool:
    memory, key = report.state.store, store_key(report.target, report.module)
    with memory.turn(key, report.deadline.remaining()) as our_turn:
        if not our_turn:
            raise ProbeFailure(
                Reason.DIMSE_TIMEOUT, "the previous store probe of this peer is still running")
        previous = memory.get(key)
        if previous is not None and previous.age() < report.module.min_interval:
            return _repeat(report, previous)
        try:
            _send(report)
        except ProbeFailure as failure:
            report.success = False
            if report.store_sent:
                memory.remember(key, report)
            raise refused_by_abort(failure) from None
        report.success = True
        memory.remember(key, report)
        return True


def _send(report: ProbeReport) -> None:
    module = report.module
    keyword, sop_class = module.sop_classes[0]
    # Verification beside the storage context, as negotiate proposes it: a peer
    # without our SOP class then accepts the association and refuses only the
    # context (no_accepted_context) instead of rejecting it with no reason.
    contexts = contexts_with(
        presentation_contexts([sop_class, VERIFICATION], module.transfer_syntaxes),
        module.verify)
    dataset = synthetic_instance(report.target.name, sop_class, module.uid_root)
    unverified: ProbeFailure | None = None
    with association(report, contexts) as layer:
        context = layer.accepted.context_for(sop_class) if layer.accepted else None
        if context is None:
            raise ProbeFailure(
                Reason.NO_ACCEPTED_CONTEXT, f"{keyword} was not accepted", phase="associate")
        syntax = context.transfer_syntax
        try:
            encoded = encode_for(dataset, syntax)
        except ValueError as exc:  # the peer chose a syntax we did not propose
            raise ProbeFailure(Reason.PROTOCOL_ERROR, str(exc), phase="associate") from None
        request = C_STORE()
        request.MessageID = STORE_MESSAGE_ID
        request.AffectedSOPClassUID = sop_class
        request.AffectedSOPInstanceUID = dataset.SOPInstanceUID
        request.Priority = 2  # low: a test must never delay a clinical transfer
        request.DataSet = BytesIO(encoded)
        peer_max = layer.accepted.peer_max_pdu if layer.accepted else 0
        report.note("C-STORE %s as %s, %d bytes", dataset.SOPInstanceUID, syntax, len(encoded))
        encoded_request = encode_dimse(request, context.context_id, peer_max)
        report.store_sent = True
        response = layer.request(encoded_request, Expected(
            C_STORE_RSP, STORE_MESSAGE_ID, sop_class, context.context_id,
            str(dataset.SOPInstanceUID)))
        check_status(report, response, "C-STORE")
        if module.verify != "none":
            unverified, note = verify_stored(layer, module.verify, dataset,
                                             report.state.commitments)
            report.note("%s", note or str(unverified))
    # Released politely first: the peer did nothing wrong at the DICOM level.
    if unverified is not None:
        raise unverified
