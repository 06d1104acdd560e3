"""The verification messages and the acceptor's association setup, on bytes alone."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dimse_messages import C_FIND_RSP, N_ACTION_RQ, N_EVENT_REPORT_RQ
from pynetdicom.dimse_primitives import C_FIND, N_EVENT_REPORT
from pynetdicom.pdu import A_ASSOCIATE_RJ, P_DATA_TF

from exporter.dicom.accept_codec import (
    RJ_CALLED_AE,
    decode_associate_rq,
    encode_associate_ac,
    encode_associate_rj,
)
from exporter.dicom.codec import decode_associate_ac, encode_associate_rq
from exporter.dicom.failure import ProbeFailure
from exporter.dicom.verify_codec import (
    EXPLICIT_LE,
    IMPLICIT_LE,
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    MessageAssembler,
    check_response,
    commitment_result,
    decode_dataset,
    encode_action_rq,
    encode_dataset,
    encode_event_report_rsp,
    encode_find_rq,
    find_expected,
    found_instance,
)
from exporter.reasons import Reason

INSTANCE = "1.2.826.0.1.3680043.8.498.1.2.3"


def assemble(raw: bytes) -> MessageAssembler:
    """Feed every P-DATA-TF PDU in `raw` to a fresh assembler; it must complete."""
    assembler = MessageAssembler()
    offset, done = 0, False
    while offset < len(raw):
        (length,) = struct.unpack_from(">I", raw, offset + 2)
        done = assembler.add(raw[offset:offset + 6 + length])
        offset += 6 + length
    assert done
    return assembler


def pdata(message, context_id: int = 5, max_pdu: int = 16384) -> bytes:
    out = b""
    for primitive in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        out += pdu.encode()
    return out


@pytest.mark.parametrize("syntax", [EXPLICIT_LE, IMPLICIT_LE])
def test_find_request_is_an_image_level_query_for_one_instance(syntax: str) -> None:
    message = assemble(encode_find_rq(5, syntax, 16384, "1.2.3", "1.2.3.4", INSTANCE)).message()
    assert message.command.command_field == 0x0020
    identifier = decode_dataset(message.data, syntax, "identifier")
    assert identifier.QueryRetrieveLevel == "IMAGE"
    assert (identifier.StudyInstanceUID, identifier.SeriesInstanceUID,
            identifier.SOPInstanceUID) == ("1.2.3", "1.2.3.4", INSTANCE)


def test_a_pending_find_response_names_the_instance_it_found() -> None:
    found = Dataset()
    found.SOPInstanceUID = INSTANCE
    primitive = C_FIND()
    primitive.MessageIDBeingRespondedTo = 2
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    primitive.Status = 0xFF00
    primitive.Identifier = BytesIO(encode_dataset(found, EXPLICIT_LE))
    response = C_FIND_RSP()
    response.primitive_to_message(primitive)
    message = assemble(pdata(response)).message()
    assert check_response(message, find_expected(5)).status == 0xFF00
    assert found_instance(message, EXPLICIT_LE) == INSTANCE


def test_a_response_to_another_request_is_a_protocol_error() -> None:
    primitive = C_FIND()
    primitive.MessageIDBeingRespondedTo = 9
    primitive.Status = 0x0000
    response = C_FIND_RSP()
    response.primitive_to_message(primitive)
    with pytest.raises(ProbeFailure, match="responds to message ID 9"):
        check_response(assemble(pdata(response)).message(), find_expected(5))


def test_an_undecodable_identifier_is_a_protocol_error() -> None:
    with pytest.raises(ProbeFailure) as caught:
        decode_dataset(b"\x08\x00\x18\x00SQ\x00\x00\xff\xff\xff\xff\x01\x02", EXPLICIT_LE,
                       "identifier")
    assert caught.value.reason is Reason.PROTOCOL_ERROR


def test_the_commitment_request_names_our_transaction_and_instance() -> None:
    raw = encode_action_rq(7, IMPLICIT_LE, 16384, "2.25.1", "1.2.840.10008.5.1.4.1.1.7",
                           INSTANCE)
    message = assemble(raw).message()
    assert message.command.command_field == 0x0130
    info = decode_dataset(message.data, IMPLICIT_LE, "action")
    assert info.TransactionUID == "2.25.1"
    assert info.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == INSTANCE
    assert N_ACTION_RQ  # encoded by pynetdicom's own class


def event_report(event_type: int, committed: tuple[str, ...] = (),
                 failed: tuple[str, ...] = (), transaction: str = "2.25.1") -> bytes:
    info = Dataset()
    info.TransactionUID = transaction
    if committed:
        info.ReferencedSOPSequence = Sequence([_ref(uid) for uid in committed])
    if failed:
        info.FailedSOPSequence = Sequence([_ref(uid, 0x0112) for uid in failed])
    primitive = N_EVENT_REPORT()
    primitive.MessageID = 11
    primitive.AffectedSOPClassUID = STORAGE_COMMITMENT
    primitive.AffectedSOPInstanceUID = STORAGE_COMMITMENT_INSTANCE
    primitive.EventTypeID = event_type
    primitive.EventInformation = BytesIO(encode_dataset(info, EXPLICIT_LE))
    message = N_EVENT_REPORT_RQ()
    message.primitive_to_message(primitive)
    return pdata(message)


def _ref(uid: str, reason: int | None = None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    item.ReferencedSOPInstanceUID = uid
    if reason is not None:
        item.FailureReason = reason
    return item


def test_a_commitment_report_says_what_was_committed_and_what_failed() -> None:
    message = assemble(event_report(2, committed=("1.2.3",), failed=(INSTANCE,))).message()
    result = commitment_result(message, EXPLICIT_LE)
    assert result.transaction_uid == "2.25.1"
    assert result.committed == {"1.2.3"}
    assert result.failed == ((INSTANCE, 0x0112),)
    answer = assemble(encode_event_report_rsp(message, 5, 16384)).message()
    assert answer.command.command_field == 0x8100
    assert answer.command.message_id_responded == 11 and answer.command.status == 0


@pytest.mark.parametrize("event_type", [0, 3])
def test_a_report_of_another_event_type_is_refused(event_type: int) -> None:
    message = assemble(event_report(event_type, committed=(INSTANCE,))).message()
    with pytest.raises(ProbeFailure, match="event type"):
        commitment_result(message, EXPLICIT_LE)


def test_a_message_past_its_bounds_is_refused_before_it_is_buffered() -> None:
    assembler = MessageAssembler(largest=1000, most_fragments=3)
    fragment = P_DATA_TF()
    fragment.from_primitive(_one_pdv(b"\x00" + b"x" * 100))
    raw = fragment.encode()
    for _ in range(3):
        assert assembler.add(raw) is False
    with pytest.raises(ProbeFailure, match="at most 3 PDUs"):
        assembler.add(raw)


def _one_pdv(data: bytes):
    from pynetdicom.pdu_primitives import P_DATA
    primitive = P_DATA()
    primitive.presentation_data_value_list = [[1, data]]
    return primitive


def test_garbage_in_a_p_data_pdu_is_a_protocol_error() -> None:
    with pytest.raises(ProbeFailure) as caught:
        MessageAssembler().add(b"\x04\x00\x00\x00\x00\x03\x00\x00\x00")
    assert caught.value.reason is Reason.PROTOCOL_ERROR


# -- the acceptor's side --------------------------------------------------------
CONTEXTS = ((1, STORAGE_COMMITMENT, (EXPLICIT_LE, IMPLICIT_LE)),
            (3, "1.2.840.10008.1.1", (IMPLICIT_LE,)))


def test_our_own_request_decodes_as_the_acceptor_reads_it() -> None:
    request = decode_associate_rq(encode_associate_rq("ORTHANC", "KRONOBERG_MON", CONTEXTS))
    assert (request.calling_ae, request.called_ae) == ("ORTHANC", "KRONOBERG_MON")
    assert [(cx.context_id, cx.abstract_syntax, cx.transfer_syntaxes)
            for cx in request.contexts] == [tuple(cx) for cx in CONTEXTS]
    assert request.max_pdu == 65536


def test_the_acceptance_answers_each_context_and_reads_back_as_an_ac() -> None:
    request = decode_associate_rq(encode_associate_rq("ORTHANC", "KRONOBERG_MON", CONTEXTS))
    raw = encode_associate_ac(request, {1: (0, EXPLICIT_LE), 3: (3, "")}, 16384)
    accepted = decode_associate_ac(raw, CONTEXTS)
    assert [(cx.accepted, cx.transfer_syntax, cx.result) for cx in accepted.contexts] == [
        (True, EXPLICIT_LE, 0), (False, "", 3)]
    assert accepted.peer_max_pdu == 16384


def test_the_rejection_is_pynetdicoms_own() -> None:
    rejection = A_ASSOCIATE_RJ()
    rejection.decode(encode_associate_rj(*RJ_CALLED_AE))
    assert (rejection.result, rejection.source, rejection.reason_diagnostic) == RJ_CALLED_AE


def _with_length(body: bytes) -> bytes:
    return struct.pack(">BxI", 1, len(body)) + body


@pytest.mark.parametrize("raw, problem", [
    (b"\x01\x00\x00\x00\x00\x02\x00\x01", "shorter than its fixed fields"),
    (b"\x02" + b"\x00" * 80, "not an A-ASSOCIATE-RQ"),
    (_with_length(b"\x00\x01\x00\x00" + b"A" * 32 + b"\x00" * 32), "no application context"),
    (_with_length(b"\x00\x01\x00\x00" + b"A" * 32 + b"\x00" * 32 + b"\x10\x00\xff\xff"),
     "overruns"),
    (_with_length(b"\x00\x00\x00\x00" + b"A" * 32 + b"\x00" * 32), "protocol version"),
    (_with_length(b"\x00\x01\x00\x00" + b" " * 32 + b"\x00" * 32), "AE title is empty"),
])
def test_a_malformed_request_is_a_protocol_error(raw: bytes, problem: str) -> None:
    with pytest.raises(ProbeFailure, match=problem) as caught:
        decode_associate_rq(raw)
    assert caught.value.reason is Reason.PROTOCOL_ERROR
