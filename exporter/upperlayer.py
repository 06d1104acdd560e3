"""The DICOM upper layer as a probe needs it: one blocking socket, one deadline.

pynetdicom's Association runs a reader thread and a state-machine thread per
association that poll every millisecond, and it clears the socket timeout once
connected, so a peer that stalls inside a PDU hangs it. A probe needs neither
the threads nor the generality: it sends a handful of PDUs in a fixed order.
So the probe drives the exchange itself on a plain socket whose every read and
write is bounded by the time left to the probe's deadline, and uses
pynetdicom's own PDU, primitive and DIMSE message classes for every byte it
encodes or decodes.

Encoding happens before a phase's clock starts and decoding after it stops, so
a phase duration is the peer's answer time plus the socket calls, not our
Python. Requests that are the same for every probe of a target (the
A-ASSOCIATE-RQ, a C-ECHO-RQ with message ID 1) and answers that come back byte
for byte the same (the A-ASSOCIATE-AC, the C-ECHO-RSP) are encoded or decoded
once and remembered by their bytes.

Every failure leaves this module as a ProbeFailure carrying its Reason; the
caller says which reason a timeout means at each step.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import socket
import ssl
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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

from exporter.config_tls import TargetTLS
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


@dataclass
class ProbeFailure(Exception):
    """A classified failure; `detail` is for logs, never a label value."""

    reason: Reason
    detail: str
    reject: tuple[int, int, int] | None = None  # result, source, diagnostic
    abort: tuple[int, int] | None = None  # source, reason
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


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


class Deadline:
    """Absolute end of a probe on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()


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


def _last_fragment(raw: bytes) -> bool:
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


# -- the socket ---------------------------------------------------------------
def _connect_failure(exc: OSError) -> ProbeFailure:
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(Reason.REFUSED, "connection refused")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ProbeFailure(Reason.CONNECT_TIMEOUT, "no answer to TCP connect")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return ProbeFailure(Reason.UNREACHABLE, exc.strerror or str(exc))
    return ProbeFailure(Reason.RESET, f"connect failed: {exc}")


def resolve(host: str, port: int) -> tuple[int, tuple]:
    """Resolve to one address, IPv4 first, as a DICOM peer is usually listed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ProbeFailure(Reason.DNS, f"cannot resolve {host!r}: {exc}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, address = infos[0]
    return family, address


def connect(family: int, address: tuple, deadline: Deadline) -> socket.socket:
    """TCP connect bounded by the deadline, with Nagle off.

    Without TCP_NODELAY a peer that delays its ACKs (dcmtk does) adds about
    40 ms to an exchange of small PDUs, which would drown what we measure.
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ProbeFailure(Reason.CONNECT_TIMEOUT, "no time left to connect")
        sock.settimeout(remaining)
        sock.connect(address)
    except OSError as exc:
        sock.close()
        raise _connect_failure(exc) from None
    except BaseException:
        sock.close()
        raise
    return sock


_open_layers: set[UpperLayer] = set()
_open_lock = threading.Lock()


def abort_all() -> int:
    """Abort every association in progress: for a clean shutdown on SIGTERM.

    Each peer gets an A-ABORT instead of a connection that just vanishes, and
    each waiting probe wakes at once with its socket shut down.
    """
    with _open_lock:
        layers = list(_open_layers)
    for layer in layers:
        layer.abort()
        with contextlib.suppress(OSError):
            layer.sock.shutdown(socket.SHUT_RDWR)
    return len(layers)


def start_tls(sock: socket.socket, tls: TargetTLS, deadline: Deadline) -> ssl.SSLSocket:
    """TLS handshake bounded by the deadline; every failure is reason `tls`."""
    try:
        wrapped = tls.context.wrap_socket(
            sock, server_hostname=tls.server_name, do_handshake_on_connect=False)
    except (ssl.SSLError, OSError, ValueError) as exc:
        sock.close()
        raise ProbeFailure(Reason.TLS, f"cannot start TLS: {exc}") from None
    remaining = deadline.remaining()
    try:
        if remaining <= 0:
            raise TimeoutError
        wrapped.settimeout(remaining)
        wrapped.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        wrapped.close()
        raise ProbeFailure(Reason.TLS, f"peer certificate rejected: {exc.verify_message}") from None
    except TimeoutError:
        wrapped.close()
        raise ProbeFailure(Reason.TLS, "TLS handshake timed out") from None
    except (ssl.SSLError, OSError) as exc:
        wrapped.close()
        raise ProbeFailure(Reason.TLS, f"TLS handshake failed: {exc}") from None
    return wrapped


@dataclass(eq=False)
class UpperLayer:
    """One association on one socket, used by one probe on one thread.

    `phases` accumulates, per phase, the time from handing the request to the
    kernel until the answer's last byte arrived.
    """

    sock: socket.socket
    deadline: Deadline
    phases: dict[str, float] = field(default_factory=dict)
    accepted: Accepted | None = None
    _buffer: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        with _open_lock:
            _open_layers.add(self)

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
            raise ProbeFailure(Reason.RESET, f"TLS error while sending: {exc}") from None
        except OSError as exc:
            raise ProbeFailure(Reason.RESET, f"send failed: {exc}") from None

    def _fill(self, size: int, on_timeout: Reason) -> None:
        while len(self._buffer) < size:
            self.sock.settimeout(self._time_left(on_timeout))
            try:
                chunk = self.sock.recv(max(65536, size - len(self._buffer)))
            except TimeoutError:
                raise ProbeFailure(on_timeout, "peer sent nothing in time") from None
            except ConnectionResetError:
                raise ProbeFailure(Reason.RESET, "connection reset by peer") from None
            except OSError as exc:
                raise ProbeFailure(Reason.RESET, f"receive failed: {exc}") from None
            if not chunk:
                raise ProbeFailure(Reason.RESET, "peer closed the connection")
            self._buffer += chunk

    def read_raw(self, on_timeout: Reason) -> tuple[int, bytes]:
        """Read one whole PDU undecoded; an A-ABORT or a non-PDU ends the probe."""
        self._fill(6, on_timeout)
        pdu_type, length = _HEADER.unpack_from(self._buffer)
        if pdu_type not in _KNOWN_PDU_TYPES:
            raise ProbeFailure(Reason.PROTOCOL_ERROR, f"unknown PDU type 0x{pdu_type:02x}")
        if length > LARGEST_ACCEPTED_PDU:
            raise ProbeFailure(Reason.PROTOCOL_ERROR, f"PDU declares {length} bytes")
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
        started = time.perf_counter()
        self.send(request, Reason.ASSOCIATION_TIMEOUT)
        pdu_type, raw = self.read_raw(Reason.ASSOCIATION_TIMEOUT)
        self.phases["associate"] = time.perf_counter() - started
        if pdu_type == PDU_ASSOCIATE_RJ:
            raise rejection(raw)
        self._expect(PDU_ASSOCIATE_AC, pdu_type, "A-ASSOCIATE-AC")
        self.accepted = decode_associate_ac(raw, contexts)
        return self.accepted

    def request(self, encoded: bytes) -> DimseResponse:
        """Send one encoded DIMSE request and wait for its whole response."""
        started = time.perf_counter()
        self.send(encoded, Reason.DIMSE_TIMEOUT)
        raws = []
        while True:
            pdu_type, raw = self.read_raw(Reason.DIMSE_TIMEOUT)
            self._expect(PDU_P_DATA, pdu_type, "P-DATA-TF")
            raws.append(raw)
            if _last_fragment(raw):
                break
        self.phases["dimse"] = self.phases.get("dimse", 0.0) + time.perf_counter() - started
        return decode_dimse_response(tuple(raws))

    def echo(self, context_id: int) -> DimseResponse:
        peer_max = self.accepted.peer_max_pdu if self.accepted else 0
        return self.request(encode_echo_rq(context_id, 1, peer_max))

    def release(self) -> None:
        started = time.perf_counter()
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
        self.phases["release"] = time.perf_counter() - started

    def abort(self) -> None:
        """Best effort: tell the peer we are gone, without waiting on it."""
        try:
            self.sock.settimeout(0.05)
            self.sock.sendall(ABORT_BYTES)
        except OSError:
            pass

    def close(self) -> None:
        with _open_lock:
            _open_layers.discard(self)
        with contextlib.suppress(OSError):
            self.sock.close()

