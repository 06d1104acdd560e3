"""A store module's `verify`: what its answers mean, after the C-STORE succeeded.

A peer can answer a C-STORE with success and keep nothing (a filter, a
routing rule, a full disk handled badly, an import that fails after the
answer). `verify: find` then asks for the instance with a C-FIND and
`verify: commit` asks the peer to commit to keeping it (Storage Commitment),
both on the store's association (`dicom.verification`). The outcome is one of
four reasons: the instance is not there (`not_found_after_store`), not
committed (`not_committed`), no commitment answer came in time
(`commitment_timeout`), or the peer will not let us ask (`query_refused`, a
permission to ask for at the partner, not an outage).
"""

from __future__ import annotations

import uuid

from pydicom.dataset import Dataset

from exporter.dicom import dimse_status
from exporter.dicom.association import UpperLayer
from exporter.dicom.codec import ContextSpec
from exporter.dicom.commitments import Commitments
from exporter.dicom.failure import ProbeFailure
from exporter.dicom.verification import find_instance, request_commitment
from exporter.dicom.verify_codec import (
    STORAGE_COMMITMENT,
    STUDY_ROOT_FIND,
    VERIFY_TRANSFER_SYNTAXES,
)
from exporter.reasons import Reason

ABSTRACT_SYNTAX = {"find": STUDY_ROOT_FIND, "commit": STORAGE_COMMITMENT}
WHAT = {"find": "Study Root C-FIND", "commit": "Storage Commitment"}
# Our Transaction UIDs: under the UUID-derived root (PS3.5 B.2), random, so a
# report can be matched to its probe and cannot be forged by guessing.
TRANSACTION_ROOT = "2.25."


def contexts_with(contexts: tuple[ContextSpec, ...], verify: str) -> tuple[ContextSpec, ...]:
    """The store's contexts plus the one `verify` needs, with our data set syntaxes."""
    if verify not in ABSTRACT_SYNTAX:
        return contexts
    next_id = max(context_id for context_id, _, _ in contexts) + 2
    return (*contexts, (next_id, ABSTRACT_SYNTAX[verify], VERIFY_TRANSFER_SYNTAXES))


def verify_stored(layer: UpperLayer, verify: str, dataset: Dataset,
                  commitments: Commitments) -> tuple[ProbeFailure | None, str]:
    """Ask the peer about the instance just stored; the failure to raise once the
    association is released (None: verified), and a note for the debug log.

    Failures of the exchange itself (a timeout, an A-ABORT, garbage) are
    raised at once; `refused_by_abort` turns an A-ABORT into `query_refused`.
    """
    uid = ABSTRACT_SYNTAX[verify]
    context = layer.accepted.context_for(uid) if layer.accepted else None
    if context is None:
        return ProbeFailure(Reason.QUERY_REFUSED,
                            f"the peer did not accept {WHAT[verify]} from us",
                            phase="associate"), ""
    instance = str(dataset.SOPInstanceUID)
    if verify == "find":
        outcome = find_instance(layer, context, str(dataset.StudyInstanceUID),
                                str(dataset.SeriesInstanceUID), instance)
        status = outcome.final.status
        if dimse_status.failure_reason(status) is not None:
            return _refused("C-FIND", outcome.final.status, outcome.final.error_comment,
                            "query"), ""
        if outcome.matches == 0:
            return ProbeFailure(
                Reason.NOT_FOUND_AFTER_STORE,
                f"C-FIND for {instance} found nothing after a successful C-STORE"
                + (f" ({outcome.others} other match(es))" if outcome.others else ""),
                phase="query"), ""
        return None, f"C-FIND found {instance}"
    transaction = f"{TRANSACTION_ROOT}{uuid.uuid4().int}"
    with commitments.expect(transaction) as waiter:
        try:
            commit = request_commitment(layer, context, transaction,
                                        str(dataset.SOPClassUID), instance, waiter)
        except ProbeFailure as failure:
            if failure.reason == Reason.COMMITMENT_TIMEOUT and not commitments.listening:
                failure.detail += ("; no DICOM listener runs (--dicom.listen-address), so a "
                                   "report sent on a new association cannot reach us")
            raise
    if commit.result is None:
        return _refused("N-ACTION", commit.action.status, commit.action.error_comment,
                        "commit"), ""
    if instance in commit.result.committed:
        via = "our listener" if commit.via_listener else "the association"
        return None, f"committed (report via {via})"
    failed = dict(commit.result.failed)
    why = (f"failure reason 0x{failed[instance]:04X}" if instance in failed
           else "the report does not list it")
    return ProbeFailure(Reason.NOT_COMMITTED, f"{instance} not committed: {why}",
                        phase="commit"), ""


def _refused(what: str, status: int, comment: str, phase: str) -> ProbeFailure:
    text = f" ({comment})" if comment else ""
    return ProbeFailure(Reason.QUERY_REFUSED, f"{what} status 0x{status:04X}{text}",
                        status=status, phase=phase)


def refused_by_abort(failure: ProbeFailure) -> ProbeFailure:
    """An A-ABORT as the answer to our query or commitment request: the peer
    will not let us ask (Orthanc does this for an AE without the permission)."""
    if failure.reason == Reason.ABORTED and failure.phase in ("query", "commit"):
        return ProbeFailure(Reason.QUERY_REFUSED, f"{failure.detail} after our "
                            f"{'C-FIND' if failure.phase == 'query' else 'N-ACTION'}",
                            abort=failure.abort, phase=failure.phase)
    return failure
