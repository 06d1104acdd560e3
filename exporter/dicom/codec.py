"""The DICOM upper-layer codec a probe needs, without any I/O.

Pure functions over bytes, in the manner of h11 and pynetdicom's pdu.py:
encode the requests, find where a PDU ends, decode the answers into small
frozen values or a classified ProbeFailure. Every byte is encoded or decoded
by pynetdicom's own PDU, primitive and DIMSE message classes; nothing here
opens a socket, so every rule is unit-tested on bytes alone.

Requests that are the same for every probe of a target (the A-ASSOCIATE-RQ,
a C-ECHO-RQ with message ID 1) and answers that come back byte for byte the
same (the A-ASSOCIATE-AC, the C-ECHO-RSP) are encoded or decoded once and
remembered by their bytes, so the phase clocks time the peer, not pydicom.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydicom.uid import UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
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
# A-ASSOCIATE-RJ reasons when the source is the service user (PS3.8 9.3.4).
REJECT_CALLING_AE = 3
REJECT_CALLED_AE = 7
RELEASE_RQ_BYTES = A_RELEASE_RQ().encode()
RELEASE_RP_BYTES = A_RELEASE_RP().encode()


_P = TypeVar("_P", A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ABORT_RQ, P_DATA_TF)


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


@dataclass(frozen=True)
class DimseResponse:
    status: int
    error_comment: str


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
    impl_uid.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
    impl_name = ImplementationVersionNameNotification()
    impl_name.implementation_version_name = PYNETDICOM_IMPLEMENTATION_VERSION
    primitive.user_information = [max_length, impl_uid, impl_name]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def encode_dimse(primitive: C_ECHO | C_STORE, context_id: int, peer_max_pdu: int) -> bytes:
    message: DIMSEMessage = C_ECHO_RQ() if isinstance(primitive, C_ECHO) else C_STORE_RQ()
    message.primitive_to_message(primitive)
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


@functools.lru_cache(maxsize=4096)
def decode_associate_ac(raw: bytes, contexts: tuple[ContextSpec, ...]) -> Accepted:
    pdu = _decode(A_ASSOCIATE_AC, raw)
    try:
        primitive = pdu.to_primitive()
        results = primitive.presentation_context_definition_results_list
    except Exception as exc:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"bad A-ASSOCIATE-AC: {exc}") from None
    answered = {cx.context_id: cx for cx in results}
    decoded = []
    for context_id, abstract, _ in contexts:
        cx = answered.get(context_id)
        result = int(cx.result) if cx is not None and cx.result is not None else 2
        chosen = str(cx.transfer_syntax[0]) if cx is not None and cx.transfer_syntax else ""
        decoded.append(
            ContextResult(context_id, abstract, result == 0, chosen, result)
        )
    peer_max, impl_class, impl_version = 0, "", ""
    for item in primitive.user_information:
        if isinstance(item, MaximumLengthNotification):
            peer_max = int(item.maximum_length_received or 0)
        elif isinstance(item, ImplementationClassUIDNotification):
            impl_class = str(item.implementation_class_uid or "")
        elif isinstance(item, ImplementationVersionNameNotification):
            impl_version = str(item.implementation_version_name or "")
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
    try:
        for raw in raws:
            pdu = _decode(P_DATA_TF, raw)
            if message.decode_msg(pdu.to_primitive()):
                break
        else:
            raise ProbeFailure(Reason.PROTOCOL_ERROR, "DIMSE message never completed")
        command = message.command_set
        status = command.get("Status")  # keyword access gives the value
        if status is None:
            raise ProbeFailure(Reason.PROTOCOL_ERROR, "DIMSE response without Status")
        comment = command.get("ErrorComment")
        return DimseResponse(int(status), str(comment) if comment else "")
    except ProbeFailure:
        raise
    except Exception as exc:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"undecodable DIMSE message: {exc}") from None


_cached_dimse_response = functools.lru_cache(maxsize=4096)(_decode_dimse_response)


def decode_dimse_response(raws: tuple[bytes, ...]) -> DimseResponse:
    """Single-PDU answers repeat byte for byte (C-ECHO-RSP), so remember them."""
    if len(raws) == 1 and len(raws[0]) < 512:
        return _cached_dimse_response(raws)
    return _decode_dimse_response(raws)


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
