"""PDUs a peer sends, as bytes, built with pynetdicom's own classes.

Pure builders: the codec's unit tests decode them without a socket, and the
scripted peers in hostile.py send them over one.
"""

from __future__ import annotations

import struct

from pynetdicom.dimse_messages import C_ECHO_RSP, C_STORE_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    P_DATA_TF,
)
from pynetdicom.pdu_primitives import (
    A_ABORT,
    A_ASSOCIATE,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)

VERIFICATION = "1.2.840.10008.1.1"


def associate_ac(request_raw: bytes, max_pdu: int = 16384, accept: bool = True,
                 version_name: str | None = None) -> bytes:
    """An A-ASSOCIATE-AC answering `request_raw`: every context with its first syntax."""
    request = A_ASSOCIATE_RQ()
    request.decode(request_raw)
    primitive = request.to_primitive()
    results = []
    for cx in primitive.presentation_context_definition_list:
        cx.result = 0 if accept else 3
        cx.transfer_syntax = [cx.transfer_syntax[0]]
        results.append(cx)
    answer = A_ASSOCIATE()
    answer.application_context_name = primitive.application_context_name
    answer.calling_ae_title = primitive.calling_ae_title
    answer.called_ae_title = primitive.called_ae_title
    answer.result = 0
    answer.presentation_context_definition_results_list = results
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = max_pdu
    answer.user_information = [max_length]
    if version_name is not None:
        name = ImplementationVersionNameNotification()
        name.implementation_version_name = version_name
        answer.user_information.append(name)
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(answer)
    return pdu.encode()


def associate_rj(result: int, source: int, reason: int) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.result = result
    primitive.result_source = source
    primitive.diagnostic = reason
    pdu = A_ASSOCIATE_RJ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def echo_rsp(context_id: int, status: int = 0x0000, max_pdu: int = 16384,
             message_id: int = 1) -> list[bytes]:
    """A C-ECHO-RSP as P-DATA-TF PDUs (one unless `max_pdu` splits it)."""
    response = C_ECHO()
    response.MessageIDBeingRespondedTo = message_id
    response.AffectedSOPClassUID = VERIFICATION
    response.Status = status
    message = C_ECHO_RSP()
    message.primitive_to_message(response)
    return _pdata(message, context_id, max_pdu)


def store_rsp(context_id: int, status: int = 0x0000, message_id: int = 1,
              sop_class: str = "1.2.840.10008.5.1.4.1.1.7", sop_instance: str = "1.2.3"
              ) -> list[bytes]:
    """A C-STORE-RSP as P-DATA-TF PDUs."""
    response = C_STORE()
    response.MessageIDBeingRespondedTo = message_id
    response.AffectedSOPClassUID = sop_class
    response.AffectedSOPInstanceUID = sop_instance
    response.Status = status
    message = C_STORE_RSP()
    message.primitive_to_message(response)
    return _pdata(message, context_id, 16384)


def _pdata(message: DIMSEMessage, context_id: int, max_pdu: int) -> list[bytes]:
    out = []
    for item in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(item)
        out.append(pdu.encode())
    return out


def item(kind: int, value: bytes) -> bytes:
    """One item or sub-item of a variable field: type, reserved, 2-byte length, value."""
    return struct.pack(">BxH", kind, len(value)) + value


def raw_associate_ac(
    contexts: list[tuple[int, int, str]],
    max_pdu: int | None = 16384,
    class_uid: bytes = b"1.2.826.0.1.3680043.2.1143.107.104.103.115",
    version_name: bytes | None = b"SOME_PEER_1",
    application_context: bool = True,
    user_information: bool = True,
) -> bytes:
    """An A-ASSOCIATE-AC built byte by byte (PS3.8 9.3.3), to break any field on purpose.

    `contexts` holds (context ID, result, chosen transfer syntax or "").
    """
    body = struct.pack(">HH", 1, 0) + b"PEER".ljust(16) + b"MONITOR".ljust(16) + bytes(32)
    if application_context:
        body += item(0x10, b"1.2.840.10008.3.1.1.1")
    for context_id, result, syntax in contexts:
        body += item(0x21, bytes([context_id, 0, result, 0])
                     + (item(0x40, syntax.encode()) if syntax else b""))
    if user_information:
        sub = b""
        if max_pdu is not None:
            sub += item(0x51, struct.pack(">I", max_pdu))
        sub += item(0x52, class_uid)
        if version_name is not None:
            sub += item(0x55, version_name)
        body += item(0x50, sub)
    return struct.pack(">BxI", 0x02, len(body)) + body


def raw_p_data(payload: bytes, flags: int, context_id: int = 1) -> bytes:
    """A P-DATA-TF PDU with one PDV built byte by byte (PS3.8 9.3.5), for fragments
    pynetdicom would never send (flags: bit 0 command, bit 1 last fragment)."""
    pdv = struct.pack(">IBB", len(payload) + 2, context_id, flags) + payload
    return struct.pack(">BxI", 0x04, len(pdv)) + pdv


def abort(source: int = 2, reason: int = 0) -> bytes:
    primitive = A_ABORT()
    primitive.abort_source = source
    if source == 2:
        primitive.provider_reason = reason  # type: ignore[attr-defined]
    pdu = A_ABORT_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def release_rp() -> bytes:
    return A_RELEASE_RP().encode()
