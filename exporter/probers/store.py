"""C-STORE of a synthetic test object: can the peer really receive.

Storing every scrape would fill a partner's archive, so a store probe within
the module's min_interval of the last real one to the same peer repeats that
result (with its age) instead of sending again. Probes of one peer take turns,
so concurrent first probes store once and share the result. Only a probe whose
C-STORE-RQ went out is remembered: one that never reached the peer's archive
(refused, timed out, rejected) tries again at the next scrape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from io import BytesIO

from pydicom.dataset import Dataset
from pynetdicom.dimse_primitives import C_STORE

from exporter.config import Module, Target
from exporter.dicom import dimse_status
from exporter.dicom.codec import (
    C_STORE_RSP,
    STORE_MESSAGE_ID,
    VERIFICATION,
    ContextSpec,
    Expected,
    encode_dimse,
    presentation_contexts,
)
from exporter.dicom.failure import ProbeFailure
from exporter.dicom.testobject import encode_for, synthetic_instance
from exporter.probers.context import ProbeContext
from exporter.probers.memory import Remembered, StoreKey, StoreResult
from exporter.probers.report import ProbeReport
from exporter.probers.session import association, check_status, refusal
from exporter.probers.verify import contexts_with, refused_by_abort, verify_stored
from exporter.reasons import Reason

# The findings a repeat within min_interval takes over from the real store.
_REPEATED = ("dns_lookup", "reason", "detail", "reject", "abort", "status",
             "peer", "contexts", "tls_version", "tls_expiry")


def store_key(target: Target, module: Module) -> StoreKey:
    """The store memory's key: every setting that changes what the store finds."""
    return StoreKey(
        host=target.host, port=target.port, called_ae=target.ae_title,
        calling_ae=target.probe_calling_ae or module.calling_ae_title,
        tls=target.tls.identity if target.tls is not None else "",
        sop_class=module.sop_classes[0][1], transfer_syntaxes=module.transfer_syntaxes,
        test_object_size=module.test_object_size, verify=module.verify)


def _result(report: ProbeReport) -> StoreResult:
    return StoreResult(
        success=report.success, reason=report.reason, failed_phase=report.failed_phase,
        detail=report.detail, reject=report.reject, abort=report.abort, status=report.status,
        phases=dict(report.phases), dns_lookup=report.dns_lookup, peer=report.peer,
        contexts=report.contexts, tls_version=report.tls_version,
        tls_expiry=report.tls_expiry)


def _failed_result(report: ProbeReport, failure: ProbeFailure) -> StoreResult:
    """The result as the report reads once `run` has recorded `failure` (ProbeReport.fail)."""
    return replace(
        _result(report), success=False, reason=failure.reason, detail=failure.detail,
        reject=failure.reject or report.reject, abort=failure.abort or report.abort,
        status=report.status if failure.status is None else failure.status,
        failed_phase=failure.phase)


def _repeat(context: ProbeContext, report: ProbeReport, previous: Remembered) -> bool:
    """This answer repeats the real store of `previous`: its findings and phases,
    marked with its age; the duration stays this request's own."""
    report.result_age = previous.age()
    old = previous.result
    context.note("repeat of the store %.0fs ago (min_interval %gs): its result and phases, "
                 "this request's duration", report.result_age, context.module.min_interval)
    if old is None:
        raise ProbeFailure(
            Reason.INTERNAL_ERROR,
            f"the exporter stopped during its store {report.result_age:.0f} s ago, so its "
            f"outcome is unknown; the next store is {context.module.min_interval:g} s after it")
    for name in _REPEATED:
        setattr(report, name, getattr(old, name))
    report.phases = dict(old.phases)
    if not old.success and old.reason is not None:
        raise ProbeFailure(old.reason, old.detail, old.reject, old.abort, old.status,
                           old.failed_phase)
    return True


def probe(context: ProbeContext, report: ProbeReport) -> bool:
    memory, key = context.state.store, store_key(context.target, context.module)
    with memory.turn(key, context.deadline.remaining()) as our_turn:
        if not our_turn:
            raise ProbeFailure(
                Reason.DIMSE_TIMEOUT, "the previous store probe of this peer is still running")
        previous = memory.get(key)
        if previous is not None and previous.age() < context.module.min_interval:
            return _repeat(context, report, previous)
        try:
            _send(context, report, lambda: memory.intend(key))
        except ProbeFailure as raised:
            failure = refused_by_abort(raised)
            report.success = False
            if report.store_sent:
                memory.remember(key, _failed_result(report, failure))
            if failure is raised:
                raise
            raise failure from None
        report.success = True
        memory.remember(key, _result(report))
        return True


def _send(context: ProbeContext, report: ProbeReport, intend: Callable[[], None]) -> None:
    """Associate and store; `intend` runs just before the C-STORE-RQ goes out."""
    module = context.module
    sop_class = module.sop_classes[0][1]
    # Verification beside the storage context, as negotiate proposes it: a peer
    # without our SOP class then accepts the association and refuses only the
    # context (no_accepted_context) instead of rejecting it with no reason.
    contexts = contexts_with(
        presentation_contexts([sop_class, VERIFICATION], module.transfer_syntaxes),
        module.verify)
    dataset = synthetic_instance(context.target.name, sop_class, module.uid_root,
                                 module.test_object_size)
    try:
        _store(context, report, intend, contexts, dataset)
    except ProbeFailure as failure:
        if (failure.phase == "release" and report.status is not None
                and dimse_status.failure_reason(report.status) is None):
            # check_status passed: a release that failed after it did not undo the store.
            failure.detail += (f"; the instance was stored before this (C-STORE status "
                               f"0x{report.status:04X})")
        raise


def _store(context: ProbeContext, report: ProbeReport, intend: Callable[[], None],
           contexts: tuple[ContextSpec, ...], dataset: Dataset) -> None:
    module = context.module
    keyword, sop_class = module.sop_classes[0]
    unverified: ProbeFailure | None = None
    with association(context, report, contexts) as layer:
        accepted = layer.accepted.context_for(sop_class) if layer.accepted else None
        if accepted is None:
            raise ProbeFailure(
                Reason.NO_ACCEPTED_CONTEXT,
                f"{keyword} was not accepted: {refusal(report, sop_class)}", phase="associate")
        syntax = accepted.transfer_syntax
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
        context.note("C-STORE %s as %s, %d bytes", dataset.SOPInstanceUID, syntax, len(encoded))
        encoded_request = encode_dimse(request, accepted.context_id, peer_max)
        intend()
        report.store_sent = True
        response = layer.request(encoded_request, Expected(
            C_STORE_RSP, STORE_MESSAGE_ID, sop_class, accepted.context_id,
            str(dataset.SOPInstanceUID)))
        check_status(context, report, response, "C-STORE")
        if module.verify != "none":
            unverified, note = verify_stored(layer, module.verify, dataset,
                                             context.state.commitments)
            context.note("%s", note or str(unverified))
    # Released politely first: the peer did nothing wrong at the DICOM level.
    if unverified is not None:
        raise unverified
