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
ECHO = codec.Expected(codec.C_ECHO_RSP, 1, codec.VERIFICATION, 1)


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
    assert codec.decode_dimse_response(raws, ECHO).status == 0xC001


def test_a_command_split_over_pdus_ends_only_at_the_last_fragment() -> None:
    raws = pdus.echo_rsp(1, max_pdu=40)
    assert len(raws) > 1
    assert [codec.last_fragment(raw) for raw in raws] == [False] * (len(raws) - 1) + [True]
    assert codec.decode_dimse_response(tuple(raws), ECHO).status == 0


def test_an_unfinished_dimse_message_is_a_protocol_error() -> None:
    raws = pdus.echo_rsp(1, max_pdu=40)
    with pytest.raises(ProbeFailure) as caught:
        codec.decode_dimse_response(tuple(raws[:-1]), ECHO)
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
    (0x0107, Reason.STATUS_WARNING),  # attribute list error: a warning (PS3.7 C.4.2)
    (0x0116, Reason.STATUS_WARNING),  # attribute value out of range: a warning
    (0xA700, Reason.STATUS_FAILURE),
    (0xC000, Reason.STATUS_FAILURE),
    (0x0122, Reason.STATUS_FAILURE),
    (0xFF00, Reason.STATUS_FAILURE),  # pending never ends a C-ECHO or C-STORE
    (0xFE00, Reason.STATUS_FAILURE),
])
def test_dimse_status_classes(status: int, reason: Reason | None) -> None:
    assert dimse_status.failure_reason(status) is reason


# -- what we announce ----------------------------------------------------------
def test_associate_rq_announces_our_own_implementation_not_the_library() -> None:
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import (
        ImplementationClassUIDNotification,
        ImplementationVersionNameNotification,
    )

    pdu = A_ASSOCIATE_RQ()
    pdu.decode(codec.encode_associate_rq("MONITOR", "PEER", contexts(codec.VERIFICATION)))
    items = pdu.to_primitive().user_information
    uid = next(i for i in items if isinstance(i, ImplementationClassUIDNotification))
    name = next(i for i in items if isinstance(i, ImplementationVersionNameNotification))
    assert uid.implementation_class_uid == codec.IMPLEMENTATION_CLASS_UID
    assert name.implementation_version_name == codec.IMPLEMENTATION_VERSION_NAME
    assert name.implementation_version_name.startswith("DICOMEXP_")
    assert "PYNETDICOM" not in name.implementation_version_name


# -- A-ASSOCIATE-AC validation --------------------------------------------------
ACCEPT_ECHO = [(1, 0, SYNTAXES[0])]


def bad_ac(raw: bytes, proposed: tuple[codec.ContextSpec, ...] | None = None) -> str:
    with pytest.raises(ProbeFailure) as caught:
        codec.decode_associate_ac(raw, proposed or contexts(codec.VERIFICATION))
    assert caught.value.reason is Reason.PROTOCOL_ERROR
    return caught.value.detail


def test_a_hand_built_ac_decodes_like_one_from_pynetdicom() -> None:
    accepted = codec.decode_associate_ac(pdus.raw_associate_ac(ACCEPT_ECHO),
                                         contexts(codec.VERIFICATION))
    assert accepted.context_for(codec.VERIFICATION) is not None
    assert accepted.peer_max_pdu == 16384
    assert accepted.implementation_version_name == "SOME_PEER_1"


@pytest.mark.parametrize("raw", [
    b"\x02\x00\x00\x00\x00\x02\x00\x01",  # declares 2 bytes: far too short
    b"\xff" * 8,
    b"\x02" + b"\x00" * 80,  # declares 0 bytes, has 75
    b"\x02\x00\x00\x00\x00\x44" + b"\x00" * 68,  # fixed fields only: no items
])
def test_truncated_or_garbage_acs_are_protocol_errors(raw: bytes) -> None:
    assert "bad A-ASSOCIATE-AC" in bad_ac(raw)


def test_an_ac_cut_anywhere_inside_its_items_is_a_protocol_error() -> None:
    whole = pdus.raw_associate_ac(ACCEPT_ECHO)
    for end in range(80, len(whole) - 1):
        cut = bytearray(whole[:end])
        cut[2:6] = (end - 6).to_bytes(4, "big")  # a consistent header over fewer bytes
        bad_ac(bytes(cut))


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"application_context": False}, "application context"),
    ({"user_information": False}, "user information"),
    ({"max_pdu": 1}, "maximum PDU length 1"),
    ({"max_pdu": 6}, "maximum PDU length 6"),
])
def test_acs_missing_required_items_or_with_unusable_max_pdu_are_refused(
    kwargs: dict, problem: str
) -> None:
    assert problem in bad_ac(pdus.raw_associate_ac(ACCEPT_ECHO, **kwargs))


@pytest.mark.parametrize("max_pdu", [0, 7, 4096])
def test_max_pdu_zero_means_unlimited_and_seven_is_usable(max_pdu: int) -> None:
    accepted = codec.decode_associate_ac(pdus.raw_associate_ac(ACCEPT_ECHO, max_pdu=max_pdu),
                                         contexts(codec.VERIFICATION))
    assert accepted.peer_max_pdu == max_pdu
    assert codec.encode_echo_rq(1, 1, max_pdu)  # and we can fragment for it


@pytest.mark.parametrize(("answer", "problem"), [
    ([(3, 0, SYNTAXES[0])], "did not propose"),  # a context ID we never sent
    ([(1, 0, "1.2.840.10008.1.2.4.50")], "did not propose"),  # JPEG, never offered
    ([(1, 0, "")], "did not propose"),  # accepted without a transfer syntax
    ([(1, 9, "")], "result 9"),
    ([(1, 0, SYNTAXES[0]), (1, 0, SYNTAXES[0])], "twice"),
    ([], "no presentation context"),
])
def test_acs_that_do_not_answer_our_proposal_are_refused(answer: list, problem: str) -> None:
    assert problem in bad_ac(pdus.raw_associate_ac(answer))


def test_a_context_the_peer_left_out_counts_as_refused() -> None:
    proposed = contexts(CT, codec.VERIFICATION)
    accepted = codec.decode_associate_ac(pdus.raw_associate_ac([(3, 0, SYNTAXES[1])]), proposed)
    assert accepted.context_for(CT) is None
    assert accepted.context_for(codec.VERIFICATION) is not None


@pytest.mark.parametrize(("name", "shown"), [
    (b"OFFIS_DCMTK_368\x00", "OFFIS_DCMTK_368"),  # NUL padded to even length
    (b"ABCDEFGHIJKLMNOPQ", "ABCDEFGHIJKLMNOPQ"),  # 17 characters
    (b"PEER ", "PEER"),
    (b"BAD\x01NAME", "BAD?NAME"),  # kept printable: it becomes a label value
])
def test_implementation_names_are_read_as_tolerantly_as_dcmtk(name: bytes, shown: str) -> None:
    accepted = codec.decode_associate_ac(
        pdus.raw_associate_ac(ACCEPT_ECHO, version_name=name, class_uid=b"1.2.3\x00"),
        contexts(codec.VERIFICATION))
    assert accepted.implementation_version_name == shown
    assert accepted.implementation_class_uid == "1.2.3"


# -- DIMSE responses must answer our request ------------------------------------
@pytest.mark.parametrize(("raws", "problem"), [
    (pdus.echo_rsp(1, message_id=2), "message ID 2"),
    (pdus.store_rsp(1), "command field 0x8001"),
    ([codec.encode_echo_rq(1, 1, 0)], "command field 0x0030"),  # our own request, echoed
    (pdus.echo_rsp(3), "presentation context"),
])
def test_responses_that_do_not_answer_our_echo_are_protocol_errors(
    raws: list[bytes], problem: str
) -> None:
    with pytest.raises(ProbeFailure) as caught:
        codec.decode_dimse_response(tuple(raws), ECHO)
    assert caught.value.reason is Reason.PROTOCOL_ERROR
    assert problem in caught.value.detail


def test_a_store_response_must_name_our_instance_when_it_names_one() -> None:
    ours = codec.Expected(codec.C_STORE_RSP, 1, "1.2.840.10008.5.1.4.1.1.7", 1, "1.2.3")
    assert codec.decode_dimse_response(tuple(pdus.store_rsp(1)), ours).status == 0
    with pytest.raises(ProbeFailure) as caught:
        codec.decode_dimse_response(tuple(pdus.store_rsp(1, sop_instance="1.2.4")), ours)
    assert "SOP instance" in caught.value.detail


def test_the_ac_cache_keeps_only_acs_of_a_real_size_and_a_bounded_number() -> None:
    """A peer answering with a different large A-ASSOCIATE-AC each time grew an
    entry-bounded cache by up to 1 MiB a probe; now it holds at most
    AC_CACHE_ENTRIES x AC_CACHE_LARGEST bytes, and still serves repeats."""
    cache = codec._cached_associate_ac
    cache.cache_clear()
    proposal = contexts(codec.VERIFICATION)
    for index in range(50):
        large = pdus.raw_associate_ac(ACCEPT_ECHO,
                                      class_uid=f"1.2.{index}.".encode() + b"9" * 20000)
        assert len(large) > codec.AC_CACHE_LARGEST
        accepted = codec.decode_associate_ac(large, proposal)
        assert accepted.implementation_class_uid.startswith(f"1.2.{index}.")
    assert cache.cache_info().currsize == 0
    for index in range(codec.AC_CACHE_ENTRIES + 100):
        codec.decode_associate_ac(
            pdus.raw_associate_ac(ACCEPT_ECHO, class_uid=f"1.2.{index}".encode()), proposal)
    assert cache.cache_info().currsize == codec.AC_CACHE_ENTRIES
    usual = pdus.raw_associate_ac(ACCEPT_ECHO)
    codec.decode_associate_ac(usual, proposal)
    hits = cache.cache_info().hits
    assert codec.decode_associate_ac(usual, proposal).peer_max_pdu == 16384
    assert cache.cache_info().hits == hits + 1
