"""PDUs a peer sends, as bytes, built with pynetdicom's own classes.

Pure builders: the codec's unit tests decode them without a socket, and the
scripted peers in hostile.py send them over one.
"""

from __future__ import annotations

from pynetdicom.dimse_messages import C_ECHO_RSP
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF
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
    out = []
    for item in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(item)
        out.append(pdu.encode())
    return out


def abort(source: int = 2, reason: int = 0) -> bytes:
    primitive = A_ABORT()
    primitive.abort_source = source
    if source == 2:
        primitive.provider_reason = reason
    pdu = A_ABORT_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()
