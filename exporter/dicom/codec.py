"""The DICOM upper-layer codec a probe needs, without any I/O.

Pure functions over bytes, in the manner of h11 and pynetdicom's pdu.py:
encode the requests, find where a PDU ends, decode the answers into small
frozen values or a classified ProbeFailure. Requests, rejections, aborts and
DIMSE messages go through pynetdicom's own PDU, primitive and DIMSE classes.
The A-ASSOCIATE-AC is parsed here (PS3.8 9.3.3), because pynetdicom both
accepts truncated ones and refuses version names that dcmtk accepts (NUL
padded, 17 characters): we validate the structure strictly and the free-text
fields as tolerantly as dcmtk does. Nothing here opens a socket, so every rule
is unit-tested on bytes alone.

Requests that are the same for every probe of a target (the A-ASSOCIATE-RQ,
a C-ECHO-RQ with message ID 1) and answers that come back byte for byte the
same (the A-ASSOCIATE-AC, the C-ECHO-RSP) are encoded or decoded once and
remembered by their bytes, so the phase clocks time the peer, not pydicom.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydicom.uid import UID
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
)
from pynetdicom.pdu_primitives import (
    A_ABORT,
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext

from exporter import __version__
from exporter.dicom.failure import ProbeFailure
from exporter.reasons import Reason

APPLICATION_CONTEXT = UID("1.2.840.10008.3.1.1.1")
VERIFICATION = "1.2.840.10008.1.1"
PDU_ASSOCIATE_AC, PDU_ASSOCIATE_RJ, PDU_P_DATA = 0x02, 0x03, 0x04
PDU_RELEASE_RQ, PDU_RELEASE_RP, PDU_ABORT = 0x05, 0x06, 0x07
_KNOWN_PDU_TYPES = frozenset(range(0x01, 0x08))
_HEADER = struct.Struct(">BxI")
# What we announce as our maximum P-DATA length, and the largest PDU of any
# kind we accept: a peer declaring more is broken or hostile, not slow.
OUR_MAX_PDU = 65536
LARGEST_ACCEPTED_PDU = 1 << 20
# The most one DIMSE response may buffer before its last fragment: every
# response a probe waits for is a command set of a few hundred bytes, so a
# peer past either bound streams fragments to take our memory (a probe
# stays within the exporter unit's MemoryMax however long its deadline).
LARGEST_RESPONSE_BYTES = 1 << 20
MOST_RESPONSE_FRAGMENTS = 1024
# A-ASSOCIATE-ACs are remembered by their bytes (a peer answers the same each
# time); only those of a real AC's size, so the cache holds at most
# AC_CACHE_ENTRIES x AC_CACHE_LARGEST bytes whatever peers send.
AC_CACHE_ENTRIES = 256
AC_CACHE_LARGEST = 4096
# A-ASSOCIATE-RJ reasons when the source is the service user (PS3.8 9.3.4).
REJECT_CALLING_AE = 3
REJECT_CALLED_AE = 7
RELEASE_RQ_BYTES = A_RELEASE_RQ().encode()
RELEASE_RP_BYTES = A_RELEASE_RP().encode()


# Who we are, in every A-ASSOCIATE-RQ, so a peer's log names us and not the
# library (PYNETDICOM_304). The class UID is a fixed UID under pydicom's root
# (generate_uid with entropy "dicom-exporter implementation class").
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.8.498.28443904513021870948420766718799973049"
IMPLEMENTATION_VERSION_NAME = f"DICOMEXP_{__version__}"[:16]
# DIMSE command fields of the responses a probe waits for (PS3.7 E.1).
C_ECHO_RSP, C_STORE_RSP = 0x8030, 0x8001
ECHO_MESSAGE_ID = STORE_MESSAGE_ID = 1
# A P-DATA-TF must hold a PDV header (4-byte length, context ID, flags) and
# one byte: a peer's maximum length below this leaves no room for any data.
SMALLEST_USABLE_MAX_PDU = 7

_P = TypeVar("_P", A_ASSOCIATE_RJ, A_ABORT_RQ, P_DATA_TF)


@dataclass(frozen=True)
class ContextResult:
    context_id: int
    abstract_syntax: str
    accepted: bool
    transfer_syntax: str  # the one the peer chose, "" when rejected
    result: int  # 0 accepted, 1 user rejection, 2 no reason, 3 abstract, 4 transfer


@dataclass(frozen=True)
class Accepted:
    """What the peer agreed to, decoded once per distinct A-ASSOCIATE-AC."""

    contexts: tuple[ContextResult, ...]
    peer_max_pdu: int
    implementation_class_uid: str
    implementation_version_name: str

    def context_for(self, abstract_syntax: str) -> ContextResult | None:
        for cx in self.contexts:
            if cx.accepted and cx.abstract_syntax == abstract_syntax:
                return cx
        return None


NO_STATUS = -1  # a command set without Status: no response at all


@dataclass(frozen=True)
class DimseResponse:
    status: int
    error_comment: str
    command_field: int = 0
    message_id_responded: int | None = None
    affected_sop_class: str = ""
    affected_sop_instance: str = ""
    context_ids: tuple[int, ...] = ()  # of every PDV that carried it


@dataclass(frozen=True)
class Expected:
    """What the response to our request must say to be an answer to it."""

    command_field: int
    message_id: int
    sop_class: str
    context_id: int
    sop_instance: str = ""


# -- encoding (cached where the bytes never change) --------------------------
ContextSpec = tuple[int, str, tuple[str, ...]]  # id, abstract syntax, transfer syntaxes


def presentation_contexts(
    abstract_syntaxes: Sequence[str], transfer_syntaxes: Sequence[str]
) -> tuple[ContextSpec, ...]:
    """Odd context IDs from 1, one per abstract syntax, as PS3.8 requires."""
    return tuple(
        (1 + 2 * index, uid, tuple(transfer_syntaxes))
        for index, uid in enumerate(abstract_syntaxes)
    )


@functools.lru_cache(maxsize=4096)
def encode_associate_rq(
    calling_ae: str, called_ae: str, contexts: tuple[ContextSpec, ...]
) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APPLICATION_CONTEXT
    primitive.calling_ae_title = calling_ae
    primitive.called_ae_title = called_ae
    definitions = []
    for context_id, abstract, transfers in contexts:
        cx = PresentationContext()
        cx.context_id = context_id
        cx.abstract_syntax = UID(abstract)
        cx.transfer_syntax = [UID(ts) for ts in transfers]
        definitions.append(cx)
    primitive.presentation_context_definition_list = definitions
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = OUR_MAX_PDU
    impl_uid = ImplementationClassUIDNotification()
    impl_uid.implementation_class_uid = UID(IMPLEMENTATION_CLASS_UID)
    impl_name = ImplementationVersionNameNotification()
    impl_name.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    primitive.user_information = [max_length, impl_uid, impl_name]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def encode_dimse(primitive: C_ECHO | C_STORE, context_id: int, peer_max_pdu: int) -> bytes:
    message: DIMSEMessage = C_ECHO_RQ() if isinstance(primitive, C_ECHO) else C_STORE_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, peer_max_pdu)


def encode_message(message: DIMSEMessage, context_id: int, peer_max_pdu: int) -> bytes:
    """A DIMSE message as the P-DATA-TF PDUs that carry it, fragmented to the peer's
    maximum PDU length."""
    out = bytearray()
    for pdata in message.encode_msg(context_id, peer_max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(pdata)
        out += pdu.encode()
    return bytes(out)


@functools.lru_cache(maxsize=64)
def encode_echo_rq(context_id: int, message_id: int, peer_max_pdu: int) -> bytes:
    primitive = C_ECHO()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = VERIFICATION
    return encode_dimse(primitive, context_id, peer_max_pdu)


def encode_abort() -> bytes:
    primitive = A_ABORT()
    primitive.abort_source = 0
    pdu = A_ABORT_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


ABORT_BYTES = encode_abort()


# -- decoding (cached by the exact bytes) ------------------------------------
def _decode(cls: type[_P], raw: bytes) -> _P:
    pdu = cls()
    try:
        pdu.decode(raw)
    except Exception as exc:  # pynetdicom raises assorted errors on bad bytes
        raise ProbeFailure(
            Reason.PROTOCOL_ERROR, f"undecodable {cls.__name__}: {exc}"
        ) from None
    return pdu


class _Items:
    """Walks the items of a variable field (type, reserved, 2-byte length, value)."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.what = data, what

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        offset = 0
        while offset < len(self.data):
            if offset + 4 > len(self.data):
                raise _bad_ac(f"{self.what} ends inside an item header")
            item_type = self.data[offset]
            (length,) = struct.unpack_from(">H", self.data, offset + 2)
            end = offset + 4 + length
            if end > len(self.data):
                raise _bad_ac(f"item 0x{item_type:02x} in {self.what} overruns it")
            yield item_type, self.data[offset + 4 : end]
            offset = end


def _bad_ac(problem: str) -> ProbeFailure:
    return ProbeFailure(Reason.PROTOCOL_ERROR, f"bad A-ASSOCIATE-AC: {problem}")


def _text(value: bytes) -> str:
    """A UID or name field as dcmtk reads it: trailing NULs and spaces are padding.

    Bounded and printable, since it becomes a label value.
    """
    text = value.rstrip(b"\x00 ").decode("latin-1")
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:64]


def _context_result(value: bytes, proposed: dict[int, tuple[str, ...]]) -> tuple[int, int, str]:
    if len(value) < 4:
        raise _bad_ac("presentation context item shorter than 4 bytes")
    context_id, result = value[0], value[2]
    if context_id not in proposed:
        raise _bad_ac(f"answers presentation context {context_id}, which we did not propose")
    if result > 4:
        raise _bad_ac(f"presentation context {context_id} has result {result}")
    syntaxes = [_text(sub) for kind, sub in _Items(value[4:], "presentation context")
                if kind == 0x40]
    chosen = syntaxes[0] if syntaxes else ""
    if result == 0 and chosen not in proposed[context_id]:
        raise _bad_ac(
            f"presentation context {context_id} accepted with transfer syntax {chosen!r}, "
            "which we did not propose")
    return context_id, result, chosen if result == 0 else ""


def decode_associate_ac(raw: bytes, contexts: tuple[ContextSpec, ...]) -> Accepted:
    """See _decode_associate_ac; remembered only when of a real AC's size."""
    if len(raw) <= AC_CACHE_LARGEST:
        return _cached_associate_ac(raw, contexts)
    return _decode_associate_ac(raw, contexts)


def _decode_associate_ac(raw: bytes, contexts: tuple[ContextSpec, ...]) -> Accepted:
    """Validate and decode an A-ASSOCIATE-AC answering `contexts` (PS3.8 9.3.3).

    Strict on structure (lengths, items, contexts and syntaxes we proposed, a
    usable maximum length); tolerant, like dcmtk, on padding and length of
    the implementation fields. A context the peer left out counts as refused.
    """
    if len(raw) < 6 or raw[0] != PDU_ASSOCIATE_AC:
        raise _bad_ac("not an A-ASSOCIATE-AC PDU")
    (length,) = struct.unpack_from(">I", raw, 2)
    if length != len(raw) - 6:
        raise _bad_ac(f"declares {length} bytes but has {len(raw) - 6}")
    if length < 68:
        raise _bad_ac(f"{length} bytes is shorter than its fixed fields (68)")
    proposed = {context_id: syntaxes for context_id, _, syntaxes in contexts}
    answered: dict[int, tuple[int, str]] = {}
    application_context = user_information = False
    peer_max, impl_class, impl_version = 0, "", ""
    for item_type, value in _Items(raw[74:], "A-ASSOCIATE-AC"):
        if item_type == 0x10:
            application_context = True
        elif item_type == 0x21:
            context_id, result, chosen = _context_result(value, proposed)
            if context_id in answered:
                raise _bad_ac(f"presentation context {context_id} answered twice")
            answered[context_id] = (result, chosen)
        elif item_type == 0x50:
            user_information = True
            for sub_type, sub in _Items(value, "user information"):
                if sub_type == 0x51:
                    if len(sub) != 4:
                        raise _bad_ac("maximum length sub-item is not 4 bytes")
                    (peer_max,) = struct.unpack(">I", sub)
                elif sub_type == 0x52:
                    impl_class = _text(sub)
                elif sub_type == 0x55:
                    impl_version = _text(sub)
    if not application_context:
        raise _bad_ac("no application context item")
    if not user_information:
        raise _bad_ac("no user information item")
    if not answered:
        raise _bad_ac("no presentation context answered")
    if 0 < peer_max < SMALLEST_USABLE_MAX_PDU:
        raise _bad_ac(f"maximum PDU length {peer_max} cannot carry any data")
    decoded = []
    for context_id, abstract, _ in contexts:
        result, chosen = answered.get(context_id, (2, ""))
        decoded.append(ContextResult(context_id, abstract, result == 0, chosen, result))
    return Accepted(tuple(decoded), peer_max, impl_class, impl_version)


def rejection(raw: bytes) -> ProbeFailure:
    rj = _decode(A_ASSOCIATE_RJ, raw)
    result, source, diag = (int(v or 0) for v in (rj.result, rj.source, rj.reason_diagnostic))
    if source == 1 and diag == REJECT_CALLING_AE:
        reason = Reason.REJECTED_CALLING_AE
    elif source == 1 and diag == REJECT_CALLED_AE:
        reason = Reason.REJECTED_CALLED_AE
    else:
        reason = Reason.REJECTED_OTHER
    try:
        text = rj.reason_str
    except Exception:  # an out-of-range code has no text
        text = "unknown reason"
    return ProbeFailure(
        reason,
        f"A-ASSOCIATE-RJ result {result} source {source} reason {diag}: {text}",
        reject=(result, source, diag),
    )


def aborted(raw: bytes) -> ProbeFailure:
    pdu = _decode(A_ABORT_RQ, raw)
    source, reason = int(pdu.source or 0), int(pdu.reason_diagnostic or 0)
    return ProbeFailure(
        Reason.ABORTED,
        f"A-ABORT from peer (source {source}, reason {reason})",
        abort=(source, reason),
    )


def _decode_dimse_response(raws: tuple[bytes, ...]) -> DimseResponse:
    message = DIMSEMessage()
    context_ids = []
    try:
        for raw in raws:
            pdu = _decode(P_DATA_TF, raw)
            context_ids += [int(pdv.presentation_context_id or 0)
                            for pdv in pdu.presentation_data_value_items]
            if message.decode_msg(pdu.to_primitive()):
                break
        else:
            raise ProbeFailure(Reason.PROTOCOL_ERROR, "DIMSE message never completed")
        command = message.command_set
        status = command.get("Status")  # keyword access gives the value
        comment = command.get("ErrorComment")
        responded = command.get("MessageIDBeingRespondedTo")
        return DimseResponse(
            NO_STATUS if status is None else int(status),
            str(comment) if comment else "",
            int(command.get("CommandField") or 0),
            None if responded is None else int(responded),
            str(command.get("AffectedSOPClassUID") or ""),
            str(command.get("AffectedSOPInstanceUID") or ""),
            tuple(context_ids),
        )
    except ProbeFailure:
        raise
    except Exception as exc:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"undecodable DIMSE message: {exc}") from None


_cached_associate_ac = functools.lru_cache(maxsize=AC_CACHE_ENTRIES)(_decode_associate_ac)
_cached_dimse_response = functools.lru_cache(maxsize=4096)(_decode_dimse_response)


def decode_dimse_response(raws: tuple[bytes, ...], expected: Expected) -> DimseResponse:
    """The response, checked to answer our request; single-PDU ones are remembered."""
    if len(raws) == 1 and len(raws[0]) < 512:
        response = _cached_dimse_response(raws)
    else:
        response = _decode_dimse_response(raws)
    problem = mismatch(response, expected)
    if problem:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"not an answer to our request: {problem}")
    if response.status == NO_STATUS:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, "DIMSE response without Status")
    return response


def mismatch(response: DimseResponse, expected: Expected) -> str:
    """Why `response` does not answer `expected`, or "" when it does (PS3.7 9.3)."""
    if response.command_field != expected.command_field:
        return (f"command field 0x{response.command_field:04X}, "
                f"expected 0x{expected.command_field:04X}")
    if response.message_id_responded != expected.message_id:
        return (f"responds to message ID {response.message_id_responded}, "
                f"ours was {expected.message_id}")
    if any(cid != expected.context_id for cid in response.context_ids):
        return f"on presentation context(s) {response.context_ids}, ours {expected.context_id}"
    # Optional in responses (U(=)): checked only when present.
    if response.affected_sop_class and response.affected_sop_class != expected.sop_class:
        return f"SOP class {response.affected_sop_class}, ours was {expected.sop_class}"
    if (expected.sop_instance and response.affected_sop_instance
            and response.affected_sop_instance != expected.sop_instance):
        return f"SOP instance {response.affected_sop_instance}, ours was {expected.sop_instance}"
    return ""


def last_fragment(raw: bytes) -> bool:
    """True when a P-DATA-TF PDU ends a DIMSE message (PS3.8 E.2).

    The responses a probe waits for (C-ECHO-RSP, C-STORE-RSP) carry no data
    set, so the last fragment of either kind ends them; a data set a peer adds
    anyway is skipped while waiting for the A-RELEASE-RP. Only the PDV headers
    are read here, not the data.
    """
    offset = 6
    last_flags = 0
    while offset + 6 <= len(raw):
        (length,) = struct.unpack_from(">I", raw, offset)
        last_flags = raw[offset + 5] if offset + 5 < len(raw) else 0
        offset += 4 + length
    return bool(last_flags & 0x02)




def pdu_header(buffer: bytes | bytearray) -> tuple[int, int]:
    """Type and length of the PDU at the start of `buffer` (6 bytes or more).

    An unknown type or a length beyond what we accept ends the probe as a
    protocol error before a single byte of the body is buffered.
    """
    pdu_type, length = _HEADER.unpack_from(buffer)
    if pdu_type not in _KNOWN_PDU_TYPES:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"unknown PDU type 0x{pdu_type:02x}")
    if length > LARGEST_ACCEPTED_PDU:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"PDU declares {length} bytes")
    return pdu_type, length
