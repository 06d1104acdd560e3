"""The DICOM codec on bytes alone: no socket is opened in this file."""

from __future__ import annotations

import struct

import pytest

from exporter.dicom import codec, dimse_status
from exporter.dicom.failure import ProbeFailure
from exporter.reasons import Reason
from tests.support import pdus

CT = "1.2.840.10008.5.1.4.1.1.2"
SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")


def contexts(*uids: str) -> tuple[codec.ContextSpec, ...]:
    return codec.presentation_contexts(list(uids), SYNTAXES)


def test_presentation_context_ids_are_odd_from_one() -> None:
    assert [cx[0] for cx in contexts(codec.VERIFICATION, CT, "1.2.3")] == [1, 3, 5]


def test_associate_rq_carries_both_ae_titles_and_our_max_pdu() -> None:
    raw = codec.encode_associate_rq("MONITOR", "PEER", contexts(codec.VERIFICATION))
    assert raw[0] == 0x01
    assert codec.pdu_header(raw) == (0x01, len(raw) - 6)
    assert raw[10:26] == b"PEER".ljust(16) and raw[26:42] == b"MONITOR".ljust(16)
    assert struct.pack(">I", codec.OUR_MAX_PDU) in raw


def test_accepted_contexts_decode_with_peer_max_pdu_and_chosen_syntax() -> None:
    proposed = contexts(codec.VERIFICATION, CT)
    answer = pdus.associate_ac(codec.encode_associate_rq("M", "P", proposed), max_pdu=32768,
                               version_name="PEER_1")
    accepted = codec.decode_associate_ac(answer, proposed)
    assert accepted.peer_max_pdu == 32768
    assert accepted.implementation_version_name == "PEER_1"
    cx = accepted.context_for(CT)
    assert cx is not None and cx.context_id == 3 and cx.transfer_syntax == SYNTAXES[0]


def test_refused_contexts_are_not_offered_as_accepted() -> None:
    proposed = contexts(CT)
    answer = pdus.associate_ac(codec.encode_associate_rq("M", "P", proposed), accept=False)
    accepted = codec.decode_associate_ac(answer, proposed)
    assert accepted.context_for(CT) is None
    assert accepted.contexts[0].result == 3


@pytest.mark.parametrize(("source", "diagnostic", "reason"), [
    (1, codec.REJECT_CALLING_AE, Reason.REJECTED_CALLING_AE),
    (1, codec.REJECT_CALLED_AE, Reason.REJECTED_CALLED_AE),
    (1, 1, Reason.REJECTED_OTHER),
    (3, 2, Reason.REJECTED_OTHER),
])
def test_rejection_reason_follows_source_and_diagnostic(
    source: int, diagnostic: int, reason: Reason
) -> None:
    failure = codec.rejection(pdus.associate_rj(1, source, diagnostic))
    assert failure.reason is reason
    assert failure.reject == (1, source, diagnostic)


def test_abort_is_classified_with_its_source() -> None:
    failure = codec.aborted(pdus.abort(source=2))
    assert failure.reason is Reason.ABORTED and failure.abort is not None
    assert failure.abort[0] == 2


def test_echo_response_decodes_to_its_status() -> None:
    raws = tuple(pdus.echo_rsp(1, status=0xC001))
    assert codec.last_fragment(raws[-1])
    assert codec.decode_dimse_response(raws).status == 0xC001


def test_a_command_split_over_pdus_ends_only_at_the_last_fragment() -> None:
    raws = pdus.echo_rsp(1, max_pdu=40)
    assert len(raws) > 1
    assert [codec.last_fragment(raw) for raw in raws] == [False] * (len(raws) - 1) + [True]
    assert codec.decode_dimse_response(tuple(raws)).status == 0


def test_an_unfinished_dimse_message_is_a_protocol_error() -> None:
    raws = pdus.echo_rsp(1, max_pdu=40)
    with pytest.raises(ProbeFailure) as caught:
        codec.decode_dimse_response(tuple(raws[:-1]))
    assert caught.value.reason is Reason.PROTOCOL_ERROR


@pytest.mark.parametrize("header", [b"\x09\x00\x00\x00\x00\x04", b"\x04\x00\xff\xff\xff\xff"])
def test_unknown_or_oversized_pdus_are_refused_from_the_header(header: bytes) -> None:
    with pytest.raises(ProbeFailure) as caught:
        codec.pdu_header(header)
    assert caught.value.reason is Reason.PROTOCOL_ERROR


@pytest.mark.parametrize("raw", [b"\x02" + b"\x00" * 80])
def test_garbage_association_answers_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(ProbeFailure) as caught:
        codec.decode_associate_ac(raw, contexts(codec.VERIFICATION))
    assert caught.value.reason is Reason.PROTOCOL_ERROR


@pytest.mark.parametrize(("status", "reason"), [
    (0x0000, None),
    (0x0001, Reason.STATUS_WARNING),
    (0xB000, Reason.STATUS_WARNING),
    (0xA700, Reason.STATUS_FAILURE),
    (0xC000, Reason.STATUS_FAILURE),
])
def test_dimse_status_classes(status: int, reason: Reason | None) -> None:
    assert dimse_status.failure_reason(status) is reason
