"""After a C-STORE: does the peer really hold the instance? Query or commitment.

Both run on the store's own association, after its C-STORE-RSP, each as a
phase of its own (`query`, `commit`) timed like the others: from the request
leaving to the answer's last byte, by the kernel's stamps when the answer
came on the association, by our clock when it came through our listener.
What the answers mean (found, committed, refused) is the store prober's to
say; here every failure of the exchange itself is a ProbeFailure naming the
phase, as in `dicom.association`.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.dicom.association import Phase, UpperLayer
from exporter.dicom.codec import ContextResult, DimseResponse
from exporter.dicom.commitments import Waiter
from exporter.dicom.failure import ProbeFailure
from exporter.dicom.verify_codec import (
    MOST_FIND_MATCHES,
    N_EVENT_REPORT_RQ_FIELD,
    PENDING,
    CommitmentResult,
    MessageAssembler,
    action_expected,
    check_response,
    commitment_result,
    encode_action_rq,
    encode_event_report_rsp,
    encode_find_rq,
    find_expected,
    found_instance,
)
from exporter.reasons import Reason


@dataclass(frozen=True)
class FindOutcome:
    final: DimseResponse  # the last, non-pending response
    matches: int  # pending responses naming our instance
    others: int  # pending responses naming something else


def find_instance(layer: UpperLayer, context: ContextResult, study: str, series: str,
                  instance: str) -> FindOutcome:
    """C-FIND (Study Root, IMAGE) for `instance`, every response read to the final one."""
    peer_max = layer.accepted.peer_max_pdu if layer.accepted else 0
    request = encode_find_rq(context.context_id, context.transfer_syntax, peer_max,
                             study, series, instance)
    expected = find_expected(context.context_id)
    matches = others = 0
    with Phase(layer, "query"):
        sent = layer.send(request, Reason.DIMSE_TIMEOUT)
        for _ in range(MOST_FIND_MATCHES + 1):
            message = layer.read_message("query", sent, Reason.DIMSE_TIMEOUT,
                                         MessageAssembler())
            response = check_response(message, expected)
            if response.status not in PENDING:
                layer.answer_came("query", sent)
                return FindOutcome(response, matches, others)
            if found_instance(message, context.transfer_syntax) == instance:
                matches += 1
            else:
                others += 1
        layer.answer_came("query", sent)
        raise ProbeFailure(Reason.PROTOCOL_ERROR,
                           f"more than {MOST_FIND_MATCHES} C-FIND matches for one SOP "
                           "Instance UID")


@dataclass(frozen=True)
class CommitOutcome:
    action: DimseResponse  # the N-ACTION-RSP
    result: CommitmentResult | None  # None: the N-ACTION failed, nothing to wait for
    via_listener: bool


def request_commitment(layer: UpperLayer, context: ContextResult, transaction_uid: str,
                       sop_class: str, instance: str, waiter: Waiter | None) -> CommitOutcome:
    """N-ACTION-RQ for `instance`, then the N-EVENT-REPORT for our transaction,
    on this association or from the listener (`waiter`), whichever comes first.

    A report may arrive before the N-ACTION-RSP (a peer that reports from
    inside its handler): both are awaited before the phase ends. A report for
    another transaction on our association is answered and ignored. Running
    out of time is reason `commitment_timeout`.
    """
    peer_max = layer.accepted.peer_max_pdu if layer.accepted else 0
    request = encode_action_rq(context.context_id, context.transfer_syntax, peer_max,
                               transaction_uid, sop_class, instance)
    expected = action_expected(context.context_id)
    action: DimseResponse | None = None
    result: CommitmentResult | None = None
    via_listener = False
    with Phase(layer, "commit"):
        sent = layer.send(request, Reason.COMMITMENT_TIMEOUT)
        while action is None or result is None:
            source = "socket"
            if not layer.has_buffered() and waiter is not None:
                source = layer.io.wait_readable_or(waiter.fileno(), layer.deadline) or ""
            if not source:
                raise ProbeFailure(Reason.COMMITMENT_TIMEOUT, _waited_for(action))
            if source == "other" and waiter is not None:
                result, via_listener = waiter.result, True
                layer.answer_came_elsewhere("commit", sent)
                waiter = None
                continue
            try:
                message = layer.read_message("commit", sent, Reason.COMMITMENT_TIMEOUT,
                                             MessageAssembler())
            except ProbeFailure as failure:
                if failure.reason == Reason.COMMITMENT_TIMEOUT:
                    failure.detail = _waited_for(action)
                raise
            if message.command.command_field == N_EVENT_REPORT_RQ_FIELD:
                report = commitment_result(message, context.transfer_syntax)
                layer.send(encode_event_report_rsp(message, context.context_id, peer_max),
                           Reason.COMMITMENT_TIMEOUT)
                if report.transaction_uid == transaction_uid and result is None:
                    result = report
                    layer.answer_came("commit", sent)
                continue
            action = check_response(message, expected)
            if action.status != 0x0000:
                layer.answer_came("commit", sent)
                return CommitOutcome(action, None, False)
    return CommitOutcome(action, result, via_listener)


def _waited_for(action: DimseResponse | None) -> str:
    if action is None:
        return "no N-ACTION-RSP to our Storage Commitment request in time"
    return "the peer accepted the commitment request but sent no N-EVENT-REPORT in time"
