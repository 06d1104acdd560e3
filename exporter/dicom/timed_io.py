"""Timed socket I/O for the association phases: the kernel's clock, not ours.

A phase is timed from the moment the request left to the moment the answer's
last byte arrived. Read with our own clock, that interval also holds every
wait for the interpreter lock around the socket calls: while /metrics renders
a large page in another thread, a loopback echo of 0.7 ms was reported as
12-40 ms. So the times come from the kernel:

- send: the SO_TIMESTAMPING software TX stamp of the first send() call's bytes,
  read from the socket's error queue and matched by its byte counter
  (SOF_TIMESTAMPING_OPT_ID);
- receive: the software RX stamp the kernel attaches to the recvmsg() that
  brought the answer's last byte.

Stamps are CLOCK_REALTIME, which can step; a stamp that is missing, or an
interval that does not lie inside the one our own clocks measured around the
same calls, falls back to our clock (perf_counter) for that phase.

The socket is non-blocking with its own poll() loop: a socket with a Python
timeout polls before every call, and with TX stamps waiting in the error
queue that poll never blocks (busy-spins). The loop drains the error queue.
An answer we have read is acknowledged by our next request, which carries
the ACK. Only before waiting on more of the peer's data when nothing of ours
went out since the last read (the rest of a PDU, the next fragment) is the
ACK sent at once (TCP_QUICKACK): a peer that sends with Nagle on waits for
it, and Linux falls back to delayed ACKs (40 ms) on its own. Forcing it
before every read instead cost each read a loopback ACK, 6-7 µs.

TLS goes through ssl.MemoryBIO and SSLObject over the plain socket
(ssl.SSLSocket has no recvmsg, so no stamps): records are encrypted before
the clock starts and decrypted after it stops.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import threading
import time
from typing import Any, NamedTuple

from exporter.dicom.failure import Deadline, ProbeFailure
from exporter.reasons import Reason

# Linux values (asm-generic/socket.h, linux/net_tstamp.h, linux/errqueue.h);
# Python 3.11's socket module lacks the constants.
SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
STAMP_FLAGS = (SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE
               | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID
               | SOF_TIMESTAMPING_OPT_TSONLY)
SCM_TSTAMP_SND = 0
SO_EE_ORIGIN_TIMESTAMPING = 4
IP_RECVERR = 11
IPV6_RECVERR = 25
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
ERRQUEUE_READ = int(MSG_ERRQUEUE) | int(socket.MSG_DONTWAIT)  # plain int: no enum work per read
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)
TIMESPEC = struct.Struct("@ll")  # struct timespec (the _OLD stamps: time_t is a long)
TIMESPEC_SIZE = TIMESPEC.size
SOL_SOCKET = int(socket.SOL_SOCKET)  # plain ints: compared for every ancillary item
RECVERR_KINDS = frozenset({(int(socket.IPPROTO_IP), IP_RECVERR),
                           (int(socket.IPPROTO_IPV6), IPV6_RECVERR)})
SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")  # errno, origin, type, code, pad, info, data
ANCILLARY_SPACE = 512
READ_SIZE = 65536
ERRQUEUE_READS = 64  # at most this many stamps drained per wake-up
# Only the stamp of a first send() that carried a whole small request marks
# when the request left; for a bigger one the stamp is of its last byte, so
# the clock read just before the call is the start.
KERNEL_TX_MAX_BYTES = 16384
# The kernel interval must lie inside ours; this much slack for the two clocks.
CLOCK_SLACK = 0.0005
ABORT_WAIT = 0.05


class Sent(NamedTuple):
    """A request handed to the kernel: our clocks just before, and which stamp to look for."""

    key: int | None  # OPT_ID key of the send stamp that marks it, None: use our clock
    wall: float
    mono: float


class Stamp(NamedTuple):
    """One edge of a phase: the kernel's time if it gave one, and ours around it."""

    kernel: float | None  # CLOCK_REALTIME from the kernel
    wall: float  # CLOCK_REALTIME read by us (before a send, after a receive)
    mono: float  # perf_counter read at the same moment


def elapsed(sent: Stamp, received: Stamp) -> tuple[float, str]:
    """Seconds from `sent` to `received`, and whose clock: "kernel", "kernel-rx" or "user".

    Both kernel stamps lie between our own clock reads around the same
    calls, so a kernel interval that is negative or longer than ours means a
    clock step or a wrong stamp: then ours is the answer.
    """
    ours = received.mono - sent.mono
    if received.kernel is None:
        return ours, "user"
    start = sent.kernel if sent.kernel is not None else sent.wall
    kernel = received.kernel - start
    if 0.0 <= kernel <= ours + CLOCK_SLACK:
        return kernel, "kernel" if sent.kernel is not None else "kernel-rx"
    return ours, "user"


def parse_rx_stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The software receive stamp in a recvmsg's ancillary data, if there is one."""
    for level, kind, data in ancillary:
        if kind == SO_TIMESTAMPING and level == SOL_SOCKET and len(data) >= TIMESPEC_SIZE:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            if seconds or nanoseconds:
                return float(seconds + nanoseconds * 1e-9)
    return None


def parse_tx_stamp(ancillary: list[tuple[int, int, bytes]]) -> tuple[int, float] | None:
    """(byte counter key, time) of one error-queue message that is a send stamp."""
    stamp = key = None
    for level, kind, data in ancillary:
        if kind == SO_TIMESTAMPING and level == SOL_SOCKET and len(data) >= TIMESPEC_SIZE:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            if seconds or nanoseconds:
                stamp = seconds + nanoseconds * 1e-9
        elif (level, kind) in RECVERR_KINDS and len(data) >= SOCK_EXTENDED_ERR.size:
            _, origin, _, _, _, info, data_key = SOCK_EXTENDED_ERR.unpack_from(data)
            if origin == SO_EE_ORIGIN_TIMESTAMPING and info == SCM_TSTAMP_SND:
                key = data_key
    if stamp is None or key is None:
        return None
    return key, stamp


TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_INFO_HEAD = struct.Struct("=8B24I")  # struct tcp_info up to tcpi_total_retrans
TCP_INFO_RTT, TCP_INFO_TOTAL_RETRANS = 8 + 15, 8 + 23  # field indexes after the 8 bytes


def connect_duration(sock: socket.socket, ours: float) -> float:
    """The TCP handshake's round trip as the kernel measured it (SYN to SYN-ACK).

    Right after connect() the kernel's smoothed RTT is its one sample, taken
    on the SYN-ACK that acknowledged our SYN: the connect time without our
    wait for the interpreter. A retransmitted SYN gives no clean sample (and
    the retransmission wait is the news), so then, as when the figure is
    missing or longer than ours, our clock's `ours` is the answer.
    """
    try:
        info = TCP_INFO_HEAD.unpack(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO,
                                                    TCP_INFO_HEAD.size))
    except (OSError, struct.error):
        return ours
    rtt = float(info[TCP_INFO_RTT]) / 1e6
    if info[TCP_INFO_TOTAL_RETRANS] or not 0 < rtt <= ours + CLOCK_SLACK:
        return ours
    return rtt


class TLSSocket(socket.socket):
    """A plain socket that carries TLS through an SSLObject (MemoryBIO), so the
    timed reads can still use recvmsg and see the kernel's stamps."""

    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    tls_lock: threading.Lock

    def version(self) -> str | None:
        return self.tls.version()

    def getpeercert(self) -> dict[str, Any] | None:
        return self.tls.getpeercert()


def tls_socket(sock: socket.socket, context: ssl.SSLContext, server_name: str | None
               ) -> TLSSocket:
    """Take over `sock` (same descriptor) as a TLSSocket; the handshake is not started."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    wrapped = TLSSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    wrapped.tls, wrapped.incoming, wrapped.outgoing = tls, incoming, outgoing
    wrapped.tls_lock = threading.Lock()
    wrapped.setblocking(False)
    return wrapped


def handshake(sock: TLSSocket, deadline: Deadline) -> None:
    """The TLS handshake within the deadline; ssl and OS errors propagate to the caller."""
    for _ in range(10000):  # each turn sends or waits for a record
        try:
            with sock.tls_lock:
                sock.tls.do_handshake()
            _flush(sock, deadline)
            return
        except ssl.SSLWantReadError:
            pass
        _flush(sock, deadline)
        if not _poll(sock, select.POLLIN, deadline):
            raise TimeoutError("TLS handshake")
        data = sock.recv(READ_SIZE)
        with sock.tls_lock:
            if data:
                sock.incoming.write(data)
            else:
                sock.incoming.write_eof()
    raise ssl.SSLError("TLS handshake did not finish")


def _poll(sock: socket.socket, events: int, deadline: Deadline) -> bool:
    """Wait for `events` until the deadline; False when it passed."""
    poller = select.poll()
    poller.register(sock, events)
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            return False
        if poller.poll(max(1, int(remaining * 1000) + 1)):
            return True


def _flush(sock: TLSSocket, deadline: Deadline) -> None:
    """Send what the SSLObject has written (handshake records, alerts)."""
    with sock.tls_lock:
        pending = sock.outgoing.read()
    view = memoryview(pending)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            sent = 0
        view = view[sent:]
        if view and not _poll(sock, select.POLLOUT, deadline):
            raise TimeoutError("TLS send")


_stamping_keeper: socket.socket | None = None
_keeper_lock = threading.Lock()


def keep_stamping_on() -> None:
    """Hold one receive-stamping socket open for the life of the process.

    The kernel stamps received packets only while some socket asks for it, and
    it switches that on and off through deferred work. With one probe socket
    at a time, each close switched it off and the next probe's answer could
    arrive before it was back on: no stamp (a quarter of the phases under
    load). One idle UDP socket that never closes keeps it on.
    """
    global _stamping_keeper
    if _stamping_keeper is not None:  # every probe asks: no lock once it is open
        return
    with _keeper_lock:
        if _stamping_keeper is not None:
            return
        keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING,
                              SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
        except OSError:
            keeper.close()
            return
        _stamping_keeper = keeper


class TimedIO:
    """The socket of one association, owned by one probe thread.

    `send` says when the request left; every read updates `last_received`,
    the Stamp of the read that brought the newest bytes; `since(sent)` is the
    phase duration. Every OS or TLS error becomes the ProbeFailure the caller
    expects.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tls = sock if isinstance(sock, TLSSocket) else None
        self.last_received: Stamp | None = None
        self.last_clock = ""  # whose clock timed the latest phase (see elapsed)
        self._sent_bytes = 0  # since stamping was switched on: the OPT_ID counter
        self._tx_stamps: dict[int, float] = {}
        sock.setblocking(False)
        keep_stamping_on()
        self.stamping = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, STAMP_FLAGS)
        except OSError:
            self.stamping = False
        self._quickack = True
        self._owe_ack = False  # data read since our last send: nothing carried its ACK yet
        self._poller = select.poll()
        self._events = select.POLLIN
        self._poller.register(sock, self._events)

    # -- sending -------------------------------------------------------------
    def send(self, data: bytes, deadline: Deadline, on_timeout: Reason) -> Sent:
        """Send all of `data` within the deadline; when it left."""
        if deadline.remaining() <= 0:
            raise ProbeFailure(on_timeout, "probe deadline reached")
        wire = self._encrypt(data) if self.tls is not None else data
        wall = time.clock_gettime(time.CLOCK_REALTIME)
        mono = time.perf_counter()
        first = self._send_some(wire)
        self._sent_bytes += first
        whole = first == len(wire)
        key = (self._sent_bytes - 1) & 0xFFFFFFFF
        view = memoryview(wire)[first:] if not whole else None
        while view:
            if not self._wait(select.POLLOUT, deadline):
                raise ProbeFailure(on_timeout, "peer stopped reading")
            sent = self._send_some(view)
            self._sent_bytes += sent
            view = view[sent:]
        self._owe_ack = False
        stamped = self.stamping and first and whole and len(wire) <= KERNEL_TX_MAX_BYTES
        if stamped:
            # Usually queued by now: taking it saves the poll() wake-up it would cause.
            self._drain_errqueue(until=key)
        return Sent(key if stamped else None, wall, mono)

    def since(self, sent: Sent) -> float:
        """From `sent` to the newest bytes read: the phase duration."""
        received = self.last_received
        if received is None:
            self.last_clock = "user"
            return time.perf_counter() - sent.mono
        kernel = None
        if sent.key is not None:
            # The stamp is queued when the request leaves the stack; by the time
            # the answer is read it is there (or was drained while waiting).
            if sent.key not in self._tx_stamps:
                self._drain_errqueue(until=sent.key)
            kernel = self._tx_stamps.get(sent.key)
        self._tx_stamps.clear()
        seconds, self.last_clock = elapsed(Stamp(kernel, sent.wall, sent.mono), received)
        return seconds

    def _send_some(self, view: bytes | memoryview) -> int:
        try:
            return self.sock.send(view)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._tls_refusal()
            raise ProbeFailure(Reason.RESET, f"send failed: {exc}") from None

    def _tls_refusal(self) -> None:
        """Under TLS 1.3 a server that refuses our certificate sends its alert
        after the handshake completed on our side, then closes: our next send
        meets the reset. The alert is then waiting unread; if it is there,
        the failure is the TLS refusal it states (reason `tls`), not a reset."""
        if self.tls is None:
            return
        pending = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(READ_SIZE, socket.MSG_DONTWAIT):
                pending += chunk
        try:
            with self.tls.tls_lock:
                if pending:
                    self.tls.incoming.write(pending)
                self.tls.tls.read(READ_SIZE)
        except ssl.SSLWantReadError:
            return
        except ssl.SSLZeroReturnError:
            return
        except ssl.SSLError as exc:
            raise ProbeFailure(Reason.TLS, f"TLS refused after the handshake: {exc}") from None

    def _encrypt(self, data: bytes) -> bytes:
        assert self.tls is not None
        try:
            with self.tls.tls_lock:
                self.tls.tls.write(data)
                return self.tls.outgoing.read()
        except ssl.SSLError as exc:
            raise ProbeFailure(Reason.TLS, f"TLS error while sending: {exc}") from None

    # -- receiving -----------------------------------------------------------
    def receive(self, deadline: Deadline, on_timeout: Reason) -> bytes:
        """At least one byte of the peer's data (decrypted), within the deadline."""
        if deadline.remaining() <= 0:
            raise ProbeFailure(on_timeout, "probe deadline reached")
        for _ in range(100000):  # each turn waits in poll() or reads a record
            if self._owe_ack:
                self._ack_now()
            if not self._wait(select.POLLIN, deadline):
                raise ProbeFailure(on_timeout, "peer sent nothing in time")
            raw = self._read()
            if raw is None:  # woken without data (a send stamp): wait again
                continue
            if self.tls is None:
                return raw
            plain = self._decrypt(raw)
            if plain:
                return plain
        raise ProbeFailure(on_timeout, "peer sent nothing usable in time")

    def _ack_now(self) -> None:
        """Acknowledge what was read, now: the kernel sends a pending ACK at once."""
        self._owe_ack = False
        if self._quickack:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
            except OSError:
                self._quickack = False

    def _read(self) -> bytes | None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(READ_SIZE, ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            return None
        except ConnectionResetError:
            raise ProbeFailure(Reason.RESET, "connection reset by peer") from None
        except OSError as exc:
            raise ProbeFailure(Reason.RESET, f"receive failed: {exc}") from None
        wall = time.clock_gettime(time.CLOCK_REALTIME)
        mono = time.perf_counter()
        if not data:
            if self.tls is not None:
                with self.tls.tls_lock:
                    self.tls.incoming.write_eof()
                return b""
            raise ProbeFailure(Reason.RESET, "peer closed the connection")
        self.last_received = Stamp(parse_rx_stamp(ancillary), wall, mono)
        self._owe_ack = True
        return data

    def _decrypt(self, raw: bytes) -> bytes:
        assert self.tls is not None
        plain = bytearray()
        try:
            with self.tls.tls_lock:
                if raw:
                    self.tls.incoming.write(raw)
                while True:
                    try:
                        chunk = self.tls.tls.read(READ_SIZE)
                    except ssl.SSLWantReadError:
                        break
                    if not chunk:
                        break
                    plain += chunk
                eof = self.tls.incoming.eof
        except ssl.SSLZeroReturnError:
            raise ProbeFailure(Reason.RESET, "peer closed the TLS connection") from None
        except ssl.SSLError as exc:
            # Under TLS 1.3 a server refuses our certificate after the handshake
            # completed on our side: its alert arrives here, and is reason `tls`.
            raise ProbeFailure(Reason.TLS, f"TLS error while receiving: {exc}") from None
        if not plain and eof:
            raise ProbeFailure(Reason.RESET, "peer closed the connection")
        return bytes(plain)

    def _wait(self, events: int, deadline: Deadline) -> bool:
        """poll() for `events` until the deadline, draining send stamps on the way."""
        if events != self._events:
            self._poller.modify(self.sock, events)
            self._events = events
        for _ in range(100000):
            remaining = deadline.remaining()
            if remaining <= 0:
                return False
            ready = self._poller.poll(max(1, int(remaining * 1000) + 1))
            if not ready:
                continue
            revents = ready[0][1]
            if revents & select.POLLERR and self._drain_errqueue() and not (
                    revents & (events | select.POLLHUP)):
                continue
            return True
        return False

    def wait_readable_or(self, other: int, deadline: Deadline) -> str | None:
        """Wait until the socket has data ("socket") or file descriptor `other`
        is readable ("other"), within the deadline (None): a probe that waits
        both for an answer on its association and for one our listener may
        deliver (Storage Commitment), in one poll()."""
        self._poller.register(other, select.POLLIN)
        try:
            for _ in range(100000):
                remaining = deadline.remaining()
                if remaining <= 0:
                    return None
                ready = dict(self._poller.poll(max(1, int(remaining * 1000) + 1)))
                if ready.get(other, 0) & select.POLLIN:
                    return "other"
                revents = ready.get(self.sock.fileno(), 0)
                if not revents:
                    continue
                if revents & select.POLLERR and self._drain_errqueue() and not (
                        revents & (self._events | select.POLLHUP)):
                    continue
                return "socket"
            return None
        finally:
            self._poller.unregister(other)

    def _drain_errqueue(self, until: int | None = None) -> int:
        """Read the send stamps waiting in the error queue, up to the one keyed `until`;
        how many messages were read."""
        count = 0
        for _ in range(ERRQUEUE_READS):
            try:
                _, ancillary, _, _ = self.sock.recvmsg(1, ANCILLARY_SPACE, ERRQUEUE_READ)
            except OSError:
                break
            count += 1
            stamp = parse_tx_stamp(ancillary)
            if stamp is not None:
                self._tx_stamps[stamp[0]] = stamp[1]
                if stamp[0] == until:
                    break
        return count

    # -- ending --------------------------------------------------------------
    def abort(self, data: bytes) -> None:
        """Best effort: send `data` (an A-ABORT) within a short wait, never raise."""
        try:
            wire = self._encrypt(data) if self.tls is not None else data
            self.send_raw_briefly(wire)
        except (OSError, ProbeFailure, ValueError):
            pass

    def send_raw_briefly(self, wire: bytes) -> None:
        deadline = Deadline(ABORT_WAIT)
        view = memoryview(wire)
        while view:
            sent = self._send_some(view)
            view = view[sent:]
            if view and not _poll(self.sock, select.POLLOUT, deadline):
                return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
