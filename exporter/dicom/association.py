"""One association on one blocking socket, driven by the probe itself.

pynetdicom's Association runs a reader thread and a state-machine thread per
association that poll every millisecond, and it clears the socket timeout once
connected, so a peer that stalls inside a PDU hangs it. A probe needs neither
the threads nor the generality: it sends a handful of PDUs in a fixed order.
So the probe drives the exchange itself on a socket whose every read and
write is bounded by the time left to the probe's deadline (`timed_io`); the
bytes come from and go to the pure codec in `exporter.dicom.codec`.

A phase's duration is the kernel's: from the send stamp of its request to the
receive stamp of its answer's last byte (`TimedIO.since`), so neither our
encoding nor a thread waiting for the interpreter is counted. That holds for
a phase that fails on what came back too (a rejection, an A-ABORT, a PDU or
message that does not answer it); one that fails before anything came (a
timeout, a reset) reports the time until it failed, on our own clock. Either
way the failure names the phase.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from exporter.dicom.codec import (
    ABORT_BYTES,
    C_ECHO_RSP,
    ECHO_MESSAGE_ID,
    LARGEST_RESPONSE_BYTES,
    MOST_RESPONSE_FRAGMENTS,
    PDU_ABORT,
    PDU_ASSOCIATE_AC,
    PDU_ASSOCIATE_RJ,
    PDU_P_DATA,
    PDU_RELEASE_RP,
    PDU_RELEASE_RQ,
    RELEASE_RP_BYTES,
    RELEASE_RQ_BYTES,
    VERIFICATION,
    Accepted,
    ContextSpec,
    DimseResponse,
    Expected,
    aborted,
    decode_associate_ac,
    decode_dimse_response,
    encode_associate_rq,
    encode_echo_rq,
    last_fragment,
    pdu_header,
    rejection,
)
from exporter.dicom.failure import Deadline, ProbeFailure, timed
from exporter.dicom.timed_io import Sent, TimedIO
from exporter.dicom.verify_codec import Message, MessageAssembler
from exporter.reasons import Reason


class OpenAssociations:
    """The associations in progress, owned by the Exporter that runs the probes.

    Kept so that a clean shutdown (SIGTERM) can send every peer an A-ABORT
    instead of a connection that just vanishes.
    """

    def __init__(self) -> None:
        self._layers: set[UpperLayer] = set()
        self._lock = threading.Lock()
        # Set by abort_all: what the probes then see is our doing, not the peer's reset.
        self.shutting_down = False

    def add(self, layer: UpperLayer) -> None:
        with self._lock:
            self._layers.add(layer)

    def discard(self, layer: UpperLayer) -> None:
        with self._lock:
            self._layers.discard(layer)

    def __len__(self) -> int:
        with self._lock:
            return len(self._layers)

    def abort_all(self) -> int:
        """Abort every association in progress; each waiting probe wakes at once."""
        with self._lock:
            self.shutting_down = True
            layers = list(self._layers)
        for layer in layers:
            layer.abort()
            with contextlib.suppress(OSError):
                layer.sock.shutdown(socket.SHUT_RDWR)
        return len(layers)


class Phase(timed):
    """`timed` for the phases of an association, counted only when one fails
    before its answer came (a phase whose answer came is timed by the kernel,
    also when the answer is a refusal), telling our own shutdown (SIGTERM
    aborted the association) from the peer's doing."""

    __slots__ = ("answers", "layer")

    def __init__(self, layer: UpperLayer, name: str) -> None:
        super().__init__(layer.phases, name)
        self.layer = layer
        self.answers = layer.answers.get(name, 0)

    def __exit__(self, kind: type[BaseException] | None, failure: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if not isinstance(failure, ProbeFailure):
            return
        if self.layer.answers.get(self.name, 0) > self.answers:  # its answer came
            if failure.phase is None:
                failure.phase = self.name
        else:
            super().__exit__(kind, failure, traceback)
        registry = self.layer.registry
        if registry is not None and registry.shutting_down:
            raise ProbeFailure(Reason.SHUTDOWN, "interrupted: the exporter is shutting down",
                               phase=self.name) from None


@dataclass(eq=False)
class UpperLayer:
    """One association on one socket, used by one probe on one thread.

    `phases` accumulates, per phase, the time from handing the request to the
    kernel until the answer's last byte arrived.
    """

    sock: socket.socket
    deadline: Deadline
    phases: dict[str, float] = field(default_factory=dict)
    registry: OpenAssociations | None = None
    accepted: Accepted | None = None
    answers: dict[str, int] = field(default_factory=dict)  # per phase, how many answers came
    # Every answer the probe asked for has come: any P-DATA-TF before the
    # release's answer is a duplicate or unasked-for message (a protocol error).
    complete: bool = False
    _buffer: bytearray = field(default_factory=bytearray)
    io: TimedIO = field(init=False)

    def __post_init__(self) -> None:
        self.io = TimedIO(self.sock)
        if self.registry is not None:
            self.registry.add(self)

    def send(self, data: bytes, on_timeout: Reason) -> Sent:
        return self.io.send(data, self.deadline, on_timeout)

    def _answer_came(self, name: str, sent: Sent) -> None:
        """Phase `name` has its whole answer: its time is the kernel's, from
        `sent` to now; a phase of several requests adds up."""
        self.phases[name] = self.phases.get(name, 0.0) + self.io.since(sent)
        self.answers[name] = self.answers.get(name, 0) + 1

    def _fill(self, size: int, on_timeout: Reason) -> None:
        while len(self._buffer) < size:
            self._buffer += self.io.receive(self.deadline, on_timeout)

    def read_raw(self, on_timeout: Reason) -> tuple[int, bytes]:
        """Read one whole PDU undecoded; a non-PDU ends the probe."""
        if not self._buffer:
            chunk = self.io.receive(self.deadline, on_timeout)
            if len(chunk) >= 6:
                pdu_type, length = pdu_header(chunk)
                if len(chunk) == 6 + length:  # one read, one whole PDU: most answers
                    return pdu_type, chunk
            self._buffer += chunk
        self._fill(6, on_timeout)
        pdu_type, length = pdu_header(self._buffer)
        self._fill(6 + length, on_timeout)
        with memoryview(self._buffer) as view:  # one copy of a PDU of up to 1 MiB, not two
            raw = bytes(view[: 6 + length])
        del self._buffer[: 6 + length]
        return pdu_type, raw

    def _not_the_answer(self, name: str, sent: Sent, pdu_type: int, raw: bytes,
                        what: str) -> ProbeFailure:
        """A PDU that ends phase `name` without answering it: timed to its
        arrival like an answer; the failure to raise (the A-ABORT, or a protocol error)."""
        self._answer_came(name, sent)
        if pdu_type == PDU_ABORT:
            return aborted(raw)
        return ProbeFailure(Reason.PROTOCOL_ERROR,
                            f"expected {what}, got PDU type 0x{pdu_type:02x}")

    # -- phases ------------------------------------------------------------
    def associate(
        self, calling_ae: str, called_ae: str, contexts: tuple[ContextSpec, ...]
    ) -> Accepted:
        request = encode_associate_rq(calling_ae, called_ae, contexts)
        with Phase(self, "associate"):
            sent = self.send(request, Reason.ASSOCIATION_TIMEOUT)
            pdu_type, raw = self.read_raw(Reason.ASSOCIATION_TIMEOUT)
            if pdu_type not in (PDU_ASSOCIATE_AC, PDU_ASSOCIATE_RJ):
                raise self._not_the_answer("associate", sent, pdu_type, raw, "A-ASSOCIATE-AC")
            self._answer_came("associate", sent)
            if pdu_type == PDU_ASSOCIATE_RJ:
                raise rejection(raw)
            self.accepted = decode_associate_ac(raw, contexts)
        return self.accepted

    def request(self, encoded: bytes, expected: Expected) -> DimseResponse:
        """Send one encoded DIMSE request and wait for its whole, matching response."""
        with Phase(self, "dimse"):
            sent = self.send(encoded, Reason.DIMSE_TIMEOUT)
            raws: list[bytes] = []
            buffered = 0
            while True:
                pdu_type, raw = self.read_raw(Reason.DIMSE_TIMEOUT)
                if pdu_type != PDU_P_DATA:
                    raise self._not_the_answer("dimse", sent, pdu_type, raw, "P-DATA-TF")
                buffered += len(raw)
                if buffered > LARGEST_RESPONSE_BYTES or len(raws) >= MOST_RESPONSE_FRAGMENTS:
                    raise ProbeFailure(
                        Reason.PROTOCOL_ERROR,
                        f"response not finished after {len(raws) + 1} P-DATA-TF PDUs and "
                        f"{buffered} bytes (at most {MOST_RESPONSE_FRAGMENTS} PDUs and "
                        f"{LARGEST_RESPONSE_BYTES} bytes are buffered)")
                raws.append(raw)
                if last_fragment(raw):
                    break
            self._answer_came("dimse", sent)
            return decode_dimse_response(tuple(raws), expected)

    def echo(self, context_id: int) -> DimseResponse:
        peer_max = self.accepted.peer_max_pdu if self.accepted else 0
        return self.request(
            encode_echo_rq(context_id, ECHO_MESSAGE_ID, peer_max),
            Expected(C_ECHO_RSP, ECHO_MESSAGE_ID, VERIFICATION, context_id))

    def read_message(self, name: str, sent: Sent, on_timeout: Reason,
                     assembler: MessageAssembler) -> Message:
        """Read the PDUs of one whole DIMSE message, command and data set, as
        an answer in phase `name` (anything but P-DATA-TF ends the phase)."""
        while True:
            pdu_type, raw = self.read_raw(on_timeout)
            if pdu_type != PDU_P_DATA:
                raise self._not_the_answer(name, sent, pdu_type, raw, "P-DATA-TF")
            if assembler.add(raw):
                return assembler.message()

    def has_buffered(self) -> bool:
        """Bytes of the peer's next PDU already read (a poll() would not see them)."""
        return bool(self._buffer)

    def answer_came(self, name: str, sent: Sent) -> None:
        """Phase `name`'s whole answer came on this association (the kernel's time)."""
        self._answer_came(name, sent)

    def answer_came_elsewhere(self, name: str, sent: Sent) -> None:
        """Phase `name`'s answer came another way (our listener): our clock times it."""
        self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - sent.mono
        self.answers[name] = self.answers.get(name, 0) + 1

    def release(self) -> None:
        with Phase(self, "release"):
            sent = self.send(RELEASE_RQ_BYTES, Reason.RELEASE_TIMEOUT)
            while True:
                pdu_type, raw = self.read_raw(Reason.RELEASE_TIMEOUT)
                if pdu_type == PDU_RELEASE_RP:
                    break
                if pdu_type == PDU_RELEASE_RQ:  # release collision, PS3.8 7.2.2
                    self.send(RELEASE_RP_BYTES, Reason.RELEASE_TIMEOUT)
                    continue
                if pdu_type != PDU_P_DATA:  # late data before the answer is harmless
                    raise self._not_the_answer("release", sent, pdu_type, raw, "A-RELEASE-RP")
                if self.complete:  # ...unless nothing more was asked for
                    raise ProbeFailure(
                        Reason.PROTOCOL_ERROR, "a DIMSE message after the last response: "
                        "duplicate or not asked for (P-DATA-TF before the A-RELEASE-RP)")
            self._answer_came("release", sent)

    def abort(self) -> None:
        """Best effort: tell the peer we are gone, without waiting on it."""
        self.io.abort(ABORT_BYTES)

    def forget(self) -> None:
        """Finished: nothing left for a shutdown to abort (the socket may close later)."""
        if self.registry is not None:
            self.registry.discard(self)
