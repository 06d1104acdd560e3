"""The acceptor's side of association setup, as bytes, without any I/O.

The DICOM listener (`dicom.listener`) accepts associations only to receive
Storage Commitment reports. It reads the A-ASSOCIATE-RQ here, strictly on
structure (PS3.8 9.3.2) and bounded like the probe's A-ASSOCIATE-AC parser,
and answers with an A-ASSOCIATE-AC it encodes itself or an A-ASSOCIATE-RJ
from pynetdicom's classes. Nothing here opens a socket, so every rule is
unit-tested on bytes alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.pdu_primitives import A_ASSOCIATE

from exporter.dicom.codec import (
    APPLICATION_CONTEXT,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    SMALLEST_USABLE_MAX_PDU,
)
from exporter.dicom.failure import ProbeFailure
from exporter.reasons import Reason

PDU_ASSOCIATE_RQ = 0x01
MOST_PROPOSED_CONTEXTS = 128  # PS3.8 allows 128 odd IDs (1-255)
# A-ASSOCIATE-RJ (result, source, reason) we send (PS3.8 9.3.4).
RJ_NO_REASON = (1, 1, 1)
RJ_CALLING_AE = (1, 1, 3)
RJ_CALLED_AE = (1, 1, 7)
RJ_BUSY = (2, 3, 2)  # transient, provider presentation: local limit exceeded
# Presentation context results in the A-ASSOCIATE-AC.
ACCEPTANCE, ABSTRACT_NOT_SUPPORTED, TRANSFER_NOT_SUPPORTED = 0, 3, 4


@dataclass(frozen=True)
class Proposed:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class AssociateRequest:
    called_ae: str
    calling_ae: str
    contexts: tuple[Proposed, ...]
    max_pdu: int  # the requester's maximum length, 0 when unlimited
    # SOP class UID -> (SCU role, SCP role) the requester proposed for itself.
    roles: tuple[tuple[str, int, int], ...]


def _bad(problem: str) -> ProbeFailure:
    return ProbeFailure(Reason.PROTOCOL_ERROR, f"bad A-ASSOCIATE-RQ: {problem}")


def _items(data: bytes, what: str) -> list[tuple[int, bytes]]:
    out = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise _bad(f"{what} ends inside an item header")
        item_type = data[offset]
        (length,) = struct.unpack_from(">H", data, offset + 2)
        end = offset + 4 + length
        if end > len(data):
            raise _bad(f"item 0x{item_type:02x} in {what} overruns it")
        out.append((item_type, data[offset + 4:end]))
        offset = end
    return out


def _uid(value: bytes, what: str) -> str:
    text = value.rstrip(b"\x00 ").decode("latin-1")
    if not text or len(text) > 64 or any(ch not in "0123456789." for ch in text):
        raise _bad(f"{what} {text[:70]!r} is not a UID")
    return text


def _ae(value: bytes, what: str) -> str:
    text = value.decode("latin-1").strip(" \x00")
    if not text or not text.isprintable() or "\\" in text:
        raise _bad(f"{what} AE title is empty or not printable")
    return text


def decode_associate_rq(raw: bytes) -> AssociateRequest:
    """Validate and decode one whole A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)."""
    if len(raw) < 6 or raw[0] != PDU_ASSOCIATE_RQ:
        raise _bad("not an A-ASSOCIATE-RQ PDU")
    (length,) = struct.unpack_from(">I", raw, 2)
    if length != len(raw) - 6:
        raise _bad(f"declares {length} bytes but has {len(raw) - 6}")
    if length < 68:
        raise _bad(f"{length} bytes is shorter than its fixed fields (68)")
    (version,) = struct.unpack_from(">H", raw, 6)
    if not version & 1:
        raise _bad(f"protocol version 0x{version:04x} lacks version 1")
    called, calling = _ae(raw[10:26], "called"), _ae(raw[26:42], "calling")
    contexts: list[Proposed] = []
    roles: list[tuple[str, int, int]] = []
    max_pdu = 0
    application_context = user_information = False
    for item_type, value in _items(raw[74:], "A-ASSOCIATE-RQ"):
        if item_type == 0x10:
            application_context = True
        elif item_type == 0x20:
            if len(value) < 4:
                raise _bad("presentation context item shorter than 4 bytes")
            context_id = value[0]
            if not context_id & 1 or any(cx.context_id == context_id for cx in contexts):
                raise _bad(f"presentation context ID {context_id} is even or repeated")
            abstract = ""
            transfers = []
            for sub_type, sub in _items(value[4:], "presentation context"):
                if sub_type == 0x30:
                    abstract = _uid(sub, "abstract syntax")
                elif sub_type == 0x40:
                    transfers.append(_uid(sub, "transfer syntax"))
            if not abstract or not transfers:
                raise _bad(f"presentation context {context_id} lacks its syntaxes")
            contexts.append(Proposed(context_id, abstract, tuple(transfers)))
            if len(contexts) > MOST_PROPOSED_CONTEXTS:
                raise _bad(f"more than {MOST_PROPOSED_CONTEXTS} presentation contexts")
        elif item_type == 0x50:
            user_information = True
            for sub_type, sub in _items(value, "user information"):
                if sub_type == 0x51:
                    if len(sub) != 4:
                        raise _bad("maximum length sub-item is not 4 bytes")
                    (max_pdu,) = struct.unpack(">I", sub)
                elif sub_type == 0x54:
                    if len(sub) < 4:
                        raise _bad("role selection sub-item too short")
                    (uid_length,) = struct.unpack_from(">H", sub)
                    if len(sub) != 2 + uid_length + 2:
                        raise _bad("role selection sub-item has the wrong length")
                    uid = _uid(sub[2:2 + uid_length], "role selection SOP class")
                    roles.append((uid, sub[-2], sub[-1]))
    if not application_context:
        raise _bad("no application context item")
    if not user_information:
        raise _bad("no user information item")
    if not contexts:
        raise _bad("no presentation context proposed")
    if 0 < max_pdu < SMALLEST_USABLE_MAX_PDU:
        raise _bad(f"maximum PDU length {max_pdu} cannot carry any data")
    return AssociateRequest(called, calling, tuple(contexts), max_pdu, tuple(roles))


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BxH", item_type, len(value)) + value


def _ae_field(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def encode_associate_ac(request: AssociateRequest, results: dict[int, tuple[int, str]],
                        our_max_pdu: int) -> bytes:
    """A-ASSOCIATE-AC answering `request`: per proposed context (result, chosen
    syntax); the requester's proposed roles are agreed to for the SOP classes
    of accepted contexts (a PACS sends its report in the SCP role)."""
    body = struct.pack(">HH", 1, 0) + _ae_field(request.called_ae)
    body += _ae_field(request.calling_ae) + bytes(32)
    body += _item(0x10, APPLICATION_CONTEXT.encode("ascii"))
    accepted_classes = set()
    for cx in request.contexts:
        result, syntax = results.get(cx.context_id, (ABSTRACT_NOT_SUPPORTED, ""))
        if result == ACCEPTANCE:
            accepted_classes.add(cx.abstract_syntax)
        body += _item(0x21, struct.pack(">BxBx", cx.context_id, result)
                      + _item(0x40, syntax.encode("ascii") if result == ACCEPTANCE else b""))
    user = _item(0x51, struct.pack(">I", our_max_pdu))
    user += _item(0x52, IMPLEMENTATION_CLASS_UID.encode("ascii"))
    for uid, scu, scp in request.roles:
        if uid in accepted_classes:
            encoded = uid.encode("ascii")
            user += _item(0x54, struct.pack(">H", len(encoded)) + encoded + bytes((scu, scp)))
    user += _item(0x55, IMPLEMENTATION_VERSION_NAME.encode("ascii"))
    body += _item(0x50, user)
    return struct.pack(">BxI", 0x02, len(body)) + body


def encode_associate_rj(result: int, source: int, diagnostic: int) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.result = result
    primitive.result_source = source
    primitive.diagnostic = diagnostic
    pdu = A_ASSOCIATE_RJ()
    pdu.from_primitive(primitive)
    return pdu.encode()
