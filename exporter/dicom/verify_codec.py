"""The DIMSE messages that verify a store, as bytes, without any I/O.

A store probe with `verify: find` asks for its test instance with a C-FIND
(Study Root, IMAGE level, by its Study, Series and SOP Instance UIDs); one
with `verify: commit` asks for Storage Commitment (Push Model, PS3.4 J): an
N-ACTION-RQ, answered by an N-EVENT-REPORT-RQ that the peer sends on the
same association or on one it opens to our listener. Encoding goes through
pynetdicom's DIMSE classes as in `codec`; data sets through pynetdicom's
`dsutils` (pydicom). Every peer-supplied message is bounded before it is
decoded (`MessageAssembler`) and every decoding error is a ProbeFailure, so
the probe and the listener meet garbage the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dimse_messages import (
    C_FIND_RQ,
    N_ACTION_RQ,
    N_EVENT_REPORT_RSP,
    DIMSEMessage,
)
from pynetdicom.dimse_primitives import C_FIND, N_ACTION, N_EVENT_REPORT
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import P_DATA_TF

from exporter.dicom.codec import (
    LARGEST_RESPONSE_BYTES,
    MOST_RESPONSE_FRAGMENTS,
    NO_STATUS,
    DimseResponse,
    Expected,
    encode_message,
    mismatch,
)
from exporter.dicom.failure import ProbeFailure
from exporter.reasons import Reason

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
# The well-known SOP Instance of the Storage Commitment Push Model (PS3.4 J.3.1).
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
IMPLICIT_LE, EXPLICIT_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
# What we propose for the query and commitment contexts; data sets are small.
VERIFY_TRANSFER_SYNTAXES = (EXPLICIT_LE, IMPLICIT_LE)
C_FIND_RSP, N_ACTION_RSP, N_EVENT_REPORT_RQ_FIELD = 0x8020, 0x8130, 0x0100
FIND_MESSAGE_ID, ACTION_MESSAGE_ID = 2, 3
REQUEST_COMMITMENT = 1  # N-ACTION Action Type ID (PS3.4 J.3.2)
ALL_COMMITTED, SOME_FAILED = 1, 2  # N-EVENT-REPORT Event Type IDs (PS3.4 J.3.3)
PENDING = frozenset({0xFF00, 0xFF01})
# A query for one SOP Instance UID matches one instance: a peer that streams
# more pending answers than this is broken or hostile, not thorough.
MOST_FIND_MATCHES = 16
# Referenced or failed instances read from one report: ours is one of them.
MOST_REPORTED_INSTANCES = 1000


@dataclass(frozen=True)
class Message:
    """One whole DIMSE message as received: its command and its data set's bytes."""

    command: DimseResponse
    data: bytes
    message_id: int | None  # of a request (N-EVENT-REPORT-RQ): what to answer
    event_type: int | None


@dataclass(frozen=True)
class CommitmentResult:
    """What an N-EVENT-REPORT says about the instances of one transaction."""

    transaction_uid: str
    committed: frozenset[str]  # SOP Instance UIDs
    failed: tuple[tuple[str, int], ...]  # SOP Instance UID, Failure Reason


def _syntax_flags(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of the two syntaxes we propose for data sets."""
    if transfer_syntax not in VERIFY_TRANSFER_SYNTAXES:
        raise ProbeFailure(Reason.PROTOCOL_ERROR,
                           f"transfer syntax {transfer_syntax!r} was not proposed")
    return transfer_syntax == IMPLICIT_LE, True


def encode_dataset(dataset: Dataset, transfer_syntax: str) -> bytes:
    implicit, little = _syntax_flags(transfer_syntax)
    encoded = encode(dataset, implicit, little)
    assert encoded is not None, "our own data sets always encode"
    return encoded


def decode_dataset(data: bytes, transfer_syntax: str, what: str) -> Dataset:
    """The peer's data set, parsed now (pydicom reads lazily): a bad one fails here."""
    implicit, little = _syntax_flags(transfer_syntax)
    try:
        dataset = decode(BytesIO(data), implicit, little)
        for _ in dataset.iterall():  # parses every element, nested ones too
            pass
    except Exception as exc:  # pydicom raises assorted errors on bad bytes
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"undecodable {what} data set: {exc}") from None
    return dataset


# -- C-FIND ------------------------------------------------------------------
def encode_find_rq(context_id: int, transfer_syntax: str, peer_max_pdu: int,
                   study: str, series: str, instance: str) -> bytes:
    """C-FIND-RQ at IMAGE level for one instance, with the unique keys of each level
    above it (a hierarchical query, PS3.4 C.4.1.3.1), asking only for its UID."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID = study
    identifier.SeriesInstanceUID = series
    identifier.SOPInstanceUID = instance
    primitive = C_FIND()
    primitive.MessageID = FIND_MESSAGE_ID
    primitive.AffectedSOPClassUID = STUDY_ROOT_FIND
    primitive.Priority = 2  # low
    primitive.Identifier = BytesIO(encode_dataset(identifier, transfer_syntax))
    message = C_FIND_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, peer_max_pdu)


def find_expected(context_id: int) -> Expected:
    return Expected(C_FIND_RSP, FIND_MESSAGE_ID, STUDY_ROOT_FIND, context_id)


def found_instance(message: Message, transfer_syntax: str) -> str:
    """The SOP Instance UID a pending C-FIND-RSP names ("" without an identifier)."""
    if not message.data:
        return ""
    identifier = decode_dataset(message.data, transfer_syntax, "C-FIND-RSP identifier")
    return str(identifier.get("SOPInstanceUID", "") or "").rstrip("\x00 ")


# -- Storage Commitment ------------------------------------------------------
def encode_action_rq(context_id: int, transfer_syntax: str, peer_max_pdu: int,
                     transaction_uid: str, sop_class: str, instance: str) -> bytes:
    """N-ACTION-RQ asking the peer to commit to keeping one instance."""
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = instance
    information = Dataset()
    information.TransactionUID = transaction_uid
    information.ReferencedSOPSequence = Sequence([item])
    primitive = N_ACTION()
    primitive.MessageID = ACTION_MESSAGE_ID
    primitive.RequestedSOPClassUID = STORAGE_COMMITMENT
    primitive.RequestedSOPInstanceUID = STORAGE_COMMITMENT_INSTANCE
    primitive.ActionTypeID = REQUEST_COMMITMENT
    primitive.ActionInformation = BytesIO(encode_dataset(information, transfer_syntax))
    message = N_ACTION_RQ()
    message.primitive_to_message(primitive)
    return encode_message(message, context_id, peer_max_pdu)


def action_expected(context_id: int) -> Expected:
    return Expected(N_ACTION_RSP, ACTION_MESSAGE_ID, STORAGE_COMMITMENT, context_id,
                    STORAGE_COMMITMENT_INSTANCE)


def event_report_problem(message: Message) -> str:
    """Why `message` is not a Storage Commitment N-EVENT-REPORT-RQ, "" when it is."""
    command = message.command
    if command.command_field != N_EVENT_REPORT_RQ_FIELD:
        return f"command field 0x{command.command_field:04X} is not an N-EVENT-REPORT-RQ"
    if command.affected_sop_class != STORAGE_COMMITMENT:
        return f"SOP class {command.affected_sop_class!r} is not Storage Commitment"
    if message.message_id is None:
        return "no message ID"
    if message.event_type not in (ALL_COMMITTED, SOME_FAILED):
        return f"event type {message.event_type} is not a commitment result"
    if not message.data:
        return "no event information"
    return ""


def commitment_result(message: Message, transfer_syntax: str) -> CommitmentResult:
    """The transaction and instances an N-EVENT-REPORT-RQ reports (PS3.4 J.3.3)."""
    problem = event_report_problem(message)
    if problem:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"bad N-EVENT-REPORT: {problem}")
    info = decode_dataset(message.data, transfer_syntax, "N-EVENT-REPORT")
    try:
        transaction = str(info.get("TransactionUID", "") or "").rstrip("\x00 ")
        committed = frozenset(
            str(item.get("ReferencedSOPInstanceUID", "") or "").rstrip("\x00 ")
            for item in list(info.get("ReferencedSOPSequence") or [])[:MOST_REPORTED_INSTANCES])
        failed = tuple(
            (str(item.get("ReferencedSOPInstanceUID", "") or "").rstrip("\x00 "),
             int(item.get("FailureReason", 0) or 0))
            for item in list(info.get("FailedSOPSequence") or [])[:MOST_REPORTED_INSTANCES])
    except (TypeError, ValueError, AttributeError) as exc:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"bad N-EVENT-REPORT: {exc}") from None
    if not transaction:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, "bad N-EVENT-REPORT: no Transaction UID")
    return CommitmentResult(transaction, committed, failed)


def encode_event_report_rsp(message: Message, context_id: int, peer_max_pdu: int,
                            status: int = 0x0000) -> bytes:
    """The N-EVENT-REPORT-RSP to a report we received."""
    primitive = N_EVENT_REPORT()
    primitive.MessageIDBeingRespondedTo = message.message_id or 0
    primitive.AffectedSOPClassUID = STORAGE_COMMITMENT
    primitive.AffectedSOPInstanceUID = (message.command.affected_sop_instance
                                        or STORAGE_COMMITMENT_INSTANCE)
    if message.event_type is not None:
        primitive.EventTypeID = message.event_type
    primitive.Status = status
    reply = N_EVENT_REPORT_RSP()
    reply.primitive_to_message(primitive)
    return encode_message(reply, context_id, peer_max_pdu)


# -- receiving whole messages ------------------------------------------------
class MessageAssembler:
    """Collects the P-DATA-TF PDUs of one DIMSE message, command and data set.

    Bounded like every response a probe reads (LARGEST_RESPONSE_BYTES,
    MOST_RESPONSE_FRAGMENTS): a peer that streams fragments cannot take our
    memory. `add` returns True once the message is whole.
    """

    def __init__(self, largest: int = LARGEST_RESPONSE_BYTES,
                 most_fragments: int = MOST_RESPONSE_FRAGMENTS) -> None:
        self.largest, self.most_fragments = largest, most_fragments
        self._message = DIMSEMessage()
        self._bytes = self._fragments = 0
        self._context_ids: list[int] = []

    def add(self, raw: bytes) -> bool:
        self._bytes += len(raw)
        self._fragments += 1
        if self._bytes > self.largest or self._fragments > self.most_fragments:
            raise ProbeFailure(
                Reason.PROTOCOL_ERROR,
                f"message not finished after {self._fragments} P-DATA-TF PDUs and "
                f"{self._bytes} bytes (at most {self.most_fragments} PDUs and "
                f"{self.largest} bytes are buffered)")
        pdu = P_DATA_TF()
        try:
            pdu.decode(raw)
            self._context_ids += [int(pdv.presentation_context_id or 0)
                                  for pdv in pdu.presentation_data_value_items]
            return bool(self._message.decode_msg(pdu.to_primitive()))
        except Exception as exc:  # pynetdicom raises assorted errors on bad bytes
            raise ProbeFailure(Reason.PROTOCOL_ERROR,
                               f"undecodable DIMSE message: {exc}") from None

    def message(self) -> Message:
        try:
            command = self._message.command_set
            status = command.get("Status")
            comment = command.get("ErrorComment")
            responded = command.get("MessageIDBeingRespondedTo")
            message_id = command.get("MessageID")
            event_type = command.get("EventTypeID")
            data_set = getattr(self._message, "data_set", None)
            data = data_set.getvalue() if isinstance(data_set, BytesIO) else b""
            return Message(
                DimseResponse(
                    NO_STATUS if status is None else int(status),
                    str(comment) if comment else "",
                    int(command.get("CommandField") or 0),
                    None if responded is None else int(responded),
                    str(command.get("AffectedSOPClassUID") or ""),
                    str(command.get("AffectedSOPInstanceUID") or ""),
                    tuple(self._context_ids)),
                data,
                None if message_id is None else int(message_id),
                None if event_type is None else int(event_type))
        except Exception as exc:
            raise ProbeFailure(Reason.PROTOCOL_ERROR,
                               f"undecodable DIMSE command: {exc}") from None


def check_response(message: Message, expected: Expected) -> DimseResponse:
    """The message's command, checked to answer `expected`, with a status."""
    problem = mismatch(message.command, expected)
    if problem:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, f"not an answer to our request: {problem}")
    if message.command.status == NO_STATUS:
        raise ProbeFailure(Reason.PROTOCOL_ERROR, "DIMSE response without Status")
    return message.command
