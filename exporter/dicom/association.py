"""One association on one blocking socket, driven by the probe itself.

pynetdicom's Association runs a reader thread and a state-machine thread per
association that poll every millisecond, and it clears the socket timeout once
connected, so a peer that stalls inside a PDU hangs it. A probe needs neither
the threads nor the generality: it sends a handful of PDUs in a fixed order.
So the probe drives the exchange itself on a plain socket whose every read and
write is bounded by the time left to the probe's deadline; the bytes come from
and go to the pure codec in `exporter.dicom.codec`.

Encoding happens before a phase's clock starts and decoding after it stops, so
a phase duration is the peer's answer time plus the socket calls, not our
Python.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field

from exporter.dicom.codec import (
    ABORT_BYTES,
    C_ECHO_RSP,
    ECHO_MESSAGE_ID,
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
from exporter.dicom.failure import Deadline, ProbeFailure, in_phase, timed
from exporter.reasons import Reason


class OpenAssociations:
    """The associations in progress, owned by the Exporter that runs the probes.

    Kept so that a clean shutdown (SIGTERM) can send every peer an A-ABORT
    instead of a connection that just vanishes.
    """

    def __init__(self) -> None:
        self._layers: set[UpperLayer] = set()
        self._lock = threading.Lock()

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
            layers = list(self._layers)
        for layer in layers:
            layer.abort()
            with contextlib.suppress(OSError):
                layer.sock.shutdown(socket.SHUT_RDWR)
        return len(layers)


def _quickack(sock: socket.socket) -> None:
    with contextlib.suppress(OSError, AttributeError):  # Linux only; gone once closed
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def receive(sock: socket.socket, size: int, on_timeout: Reason) -> bytes:
    """One bounded read, acknowledged at once; every failure classified.

    A peer with Nagle on (dcmtk and Orthanc as shipped) holds back the last
    small segment of its answer until we acknowledge the previous one, and
    Linux delays that acknowledgement by up to 40 ms: our own delayed ACK
    would be measured as the peer's latency. TCP_QUICKACK turns it off, but
    the kernel re-arms delayed ACKs on its own, so it is set around every read.

    Under TLS 1.3 the server checks our certificate after the handshake has
    completed on our side, so its refusal arrives as an alert on the first
    read: an SSL error here is reason `tls`, not a reset.
    """
    _quickack(sock)
    try:
        chunk = sock.recv(size)
    except TimeoutError:
        raise ProbeFailure(on_timeout, "peer sent nothing in time") from None
    except ssl.SSLError as exc:
        raise ProbeFailure(Reason.TLS, f"TLS error while receiving: {exc}") from None
    except ConnectionResetError:
        raise ProbeFailure(Reason.RESET, "connection reset by peer") from None
    except OSError as exc:
        raise ProbeFailure(Reason.RESET, f"receive failed: {exc}") from None
    _quickack(sock)
    return chunk


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
    _buffer: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if self.registry is not None:
            self.registry.add(self)

    def _time_left(self, on_timeout: Reason) -> float:
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise ProbeFailure(on_timeout, "probe deadline reached")
        return remaining

    def send(self, data: bytes, on_timeout: Reason) -> None:
        self.sock.settimeout(self._time_left(on_timeout))
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise ProbeFailure(on_timeout, "peer stopped reading") from None
        except ssl.SSLError as exc:
            raise ProbeFailure(Reason.TLS, f"TLS error while sending: {exc}") from None
        except OSError as exc:
            raise ProbeFailure(Reason.RESET, f"send failed: {exc}") from None

    def _fill(self, size: int, on_timeout: Reason) -> None:
        while len(self._buffer) < size:
            self.sock.settimeout(self._time_left(on_timeout))
            chunk = receive(self.sock, max(65536, size - len(self._buffer)), on_timeout)
            if not chunk:
                raise ProbeFailure(Reason.RESET, "peer closed the connection")
            self._buffer += chunk

    def read_raw(self, on_timeout: Reason) -> tuple[int, bytes]:
        """Read one whole PDU undecoded; an A-ABORT or a non-PDU ends the probe."""
        self._fill(6, on_timeout)
        pdu_type, length = pdu_header(self._buffer)
        self._fill(6 + length, on_timeout)
        raw = bytes(self._buffer[: 6 + length])
        del self._buffer[: 6 + length]
        if pdu_type == PDU_ABORT:
            raise aborted(raw)
        return pdu_type, raw

    def _expect(self, wanted: int, raw_type: int, what: str) -> None:
        if raw_type != wanted:
            raise ProbeFailure(
                Reason.PROTOCOL_ERROR, f"expected {what}, got PDU type 0x{raw_type:02x}"
            )

    # -- phases ------------------------------------------------------------
    def associate(
        self, calling_ae: str, called_ae: str, contexts: tuple[ContextSpec, ...]
    ) -> Accepted:
        request = encode_associate_rq(calling_ae, called_ae, contexts)
        with timed(self.phases, "associate"):
            self.send(request, Reason.ASSOCIATION_TIMEOUT)
            pdu_type, raw = self.read_raw(Reason.ASSOCIATION_TIMEOUT)
        with in_phase("associate"):
            if pdu_type == PDU_ASSOCIATE_RJ:
                raise rejection(raw)
            self._expect(PDU_ASSOCIATE_AC, pdu_type, "A-ASSOCIATE-AC")
            self.accepted = decode_associate_ac(raw, contexts)
        return self.accepted

    def request(self, encoded: bytes, expected: Expected) -> DimseResponse:
        """Send one encoded DIMSE request and wait for its whole response."""
        with timed(self.phases, "dimse"):
            self.send(encoded, Reason.DIMSE_TIMEOUT)
            raws = []
            while True:
                pdu_type, raw = self.read_raw(Reason.DIMSE_TIMEOUT)
                self._expect(PDU_P_DATA, pdu_type, "P-DATA-TF")
                raws.append(raw)
                if last_fragment(raw):
                    break
        with in_phase("dimse"):
            return decode_dimse_response(tuple(raws), expected)

    def echo(self, context_id: int) -> DimseResponse:
        peer_max = self.accepted.peer_max_pdu if self.accepted else 0
        return self.request(
            encode_echo_rq(context_id, ECHO_MESSAGE_ID, peer_max),
            Expected(C_ECHO_RSP, ECHO_MESSAGE_ID, VERIFICATION, context_id))

    def release(self) -> None:
        with timed(self.phases, "release"):
            self.send(RELEASE_RQ_BYTES, Reason.RELEASE_TIMEOUT)
            while True:
                pdu_type, _ = self.read_raw(Reason.RELEASE_TIMEOUT)
                if pdu_type == PDU_RELEASE_RP:
                    break
                if pdu_type == PDU_RELEASE_RQ:  # release collision, PS3.8 7.2.2
                    self.send(RELEASE_RP_BYTES, Reason.RELEASE_TIMEOUT)
                    continue
                if pdu_type != PDU_P_DATA:  # late data before the answer is harmless
                    self._expect(PDU_RELEASE_RP, pdu_type, "A-RELEASE-RP")

    def abort(self) -> None:
        """Best effort: tell the peer we are gone, without waiting on it."""
        try:
            self.sock.settimeout(0.05)
            self.sock.sendall(ABORT_BYTES)
        except OSError:
            pass

    def close(self) -> None:
        if self.registry is not None:
            self.registry.discard(self)
        with contextlib.suppress(OSError):
            self.sock.close()

