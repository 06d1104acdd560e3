"""Kernel-stamped phase timing: which clock is trusted, which stamp is taken, TLS in memory.

No timing assertions: these check the choice of stamp and clock (orderings
and fallbacks), against real sockets on 127.0.0.1 where a socket is needed.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exporter.dicom import timed_io
from exporter.dicom.failure import Deadline, ProbeFailure
from exporter.dicom.timed_io import (
    SO_TIMESTAMPING,
    Stamp,
    TimedIO,
    elapsed,
    handshake,
    parse_rx_stamp,
    parse_tx_stamp,
    tls_socket,
)
from exporter.reasons import Reason
from tests.support.realpeers import LOOPBACK

TIMESPEC = struct.Struct("@ll")


def timespec(seconds: float) -> bytes:
    whole = int(seconds)
    return TIMESPEC.pack(whole, round((seconds - whole) * 1e9))


# -- which clock ---------------------------------------------------------------
def test_both_kernel_stamps_inside_our_interval_give_the_kernel_figure() -> None:
    sent = Stamp(kernel=1000.0001, wall=1000.0, mono=50.0)
    received = Stamp(kernel=1000.0008, wall=1000.0100, mono=50.0100)
    seconds, clock = elapsed(sent, received)
    assert clock == "kernel"
    assert seconds == pytest.approx(0.0007)


def test_a_missing_send_stamp_starts_at_our_clock_read_before_the_send() -> None:
    sent = Stamp(kernel=None, wall=1000.0, mono=50.0)
    received = Stamp(kernel=1000.0008, wall=1000.0100, mono=50.0100)
    seconds, clock = elapsed(sent, received)
    assert clock == "kernel-rx"
    assert seconds == pytest.approx(0.0008)


def test_a_missing_receive_stamp_falls_back_to_our_clock() -> None:
    sent = Stamp(kernel=1000.0001, wall=1000.0, mono=50.0)
    received = Stamp(kernel=None, wall=1000.0100, mono=50.0100)
    assert elapsed(sent, received) == (pytest.approx(0.01), "user")


@pytest.mark.parametrize("receive_stamp", [999.0, 1003.0], ids=["stepped-back", "stepped-ahead"])
def test_a_realtime_step_between_the_stamps_falls_back_to_our_clock(receive_stamp: float
                                                                    ) -> None:
    sent = Stamp(kernel=1000.0001, wall=1000.0, mono=50.0)
    received = Stamp(kernel=receive_stamp, wall=1000.0100, mono=50.0100)
    assert elapsed(sent, received) == (pytest.approx(0.01), "user")


# -- parsing the ancillary data --------------------------------------------------
def test_the_receive_stamp_is_the_first_timespec_of_so_timestamping() -> None:
    data = timespec(1700000000.25) + timespec(0) + timespec(0)
    assert parse_rx_stamp([(socket.SOL_SOCKET, SO_TIMESTAMPING, data)]) == pytest.approx(
        1700000000.25)
    assert parse_rx_stamp([(socket.SOL_SOCKET, SO_TIMESTAMPING, timespec(0) * 3)]) is None
    assert parse_rx_stamp([]) is None


def test_a_send_stamp_is_read_with_its_byte_counter_key() -> None:
    stamp = (socket.SOL_SOCKET, SO_TIMESTAMPING, timespec(1700000000.5) + timespec(0) * 2)
    error = timed_io.SOCK_EXTENDED_ERR.pack(42, timed_io.SO_EE_ORIGIN_TIMESTAMPING, 0, 0, 0,
                                             timed_io.SCM_TSTAMP_SND, 79)
    assert parse_tx_stamp([stamp, (socket.IPPROTO_IP, timed_io.IP_RECVERR, error)]) == (
        79, pytest.approx(1700000000.5))
    acked = timed_io.SOCK_EXTENDED_ERR.pack(42, timed_io.SO_EE_ORIGIN_TIMESTAMPING, 0, 0, 0,
                                            2, 79)  # SCM_TSTAMP_ACK: not a send stamp
    assert parse_tx_stamp([stamp, (socket.IPPROTO_IP, timed_io.IP_RECVERR, acked)]) is None
    assert parse_tx_stamp([stamp]) is None


# -- real sockets on loopback ----------------------------------------------------
@contextmanager
def loopback_peer(script: Callable[[socket.socket], None]) -> Iterator[socket.socket]:
    """A TCP peer on 127.0.0.1 running `script` on its side; yields our connected socket."""
    listener = socket.create_server((LOOPBACK, 0))
    ours = socket.create_connection(listener.getsockname(), timeout=5)
    ours.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    theirs, _ = listener.accept()
    listener.close()
    theirs.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    theirs.settimeout(5)
    thread = threading.Thread(target=script, args=(theirs,), daemon=True)
    thread.start()
    try:
        yield ours
    finally:
        ours.close()
        thread.join(5)
        theirs.close()


@pytest.fixture(scope="module")
def kernel_stamping() -> Iterator[None]:
    """Receive stamping switched on machine-wide before the tests look for stamps.

    The first SO_TIMESTAMPING socket turns stamping on through deferred kernel
    work, so packets right after it may carry no stamp (our fallback handles
    that in production). Holding one stamping socket open, and waiting until a
    loopback byte arrives stamped, takes that race out of the tests.
    """
    listener = socket.create_server((LOOPBACK, 0))
    keeper = socket.create_connection(listener.getsockname(), timeout=5)
    peer, _ = listener.accept()
    listener.close()
    keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, timed_io.STAMP_FLAGS)
    stamped = False
    for _ in range(500):  # at most about 5 s
        peer.sendall(b"s")
        _, ancillary, _, _ = keeper.recvmsg(1, timed_io.ANCILLARY_SPACE)
        if parse_rx_stamp(ancillary) is not None:
            stamped = True
            break
        threading.Event().wait(0.01)
    assert stamped, "the kernel never stamped a loopback packet"
    yield
    keeper.close()
    peer.close()


@pytest.mark.usefixtures("kernel_stamping")
def test_a_request_and_answer_on_loopback_are_timed_by_the_kernel() -> None:
    def echo_back(conn: socket.socket) -> None:
        conn.sendall(conn.recv(100))

    with loopback_peer(echo_back) as sock:
        io = TimedIO(sock)
        deadline = Deadline(5)
        sent = io.send(b"x" * 80, deadline, Reason.DIMSE_TIMEOUT)
        received = b""
        while len(received) < 80:
            received += io.receive(deadline, Reason.DIMSE_TIMEOUT)
        seconds = io.since(sent)
    assert received == b"x" * 80
    assert io.last_clock == "kernel"
    assert io.last_received is not None and io.last_received.kernel is not None
    assert 0 <= seconds <= io.last_received.mono - sent.mono + timed_io.CLOCK_SLACK


@pytest.mark.usefixtures("kernel_stamping")
def test_the_phase_ends_at_the_stamp_of_the_read_that_brought_the_last_byte() -> None:
    first_read = threading.Event()

    def answer_in_two_parts(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(b"a" * 40)
        first_read.wait(5)
        conn.sendall(b"b" * 40)

    with loopback_peer(answer_in_two_parts) as sock:
        io = TimedIO(sock)
        deadline = Deadline(5)
        sent = io.send(b"request", deadline, Reason.DIMSE_TIMEOUT)
        assert io.receive(deadline, Reason.DIMSE_TIMEOUT) == b"a" * 40
        after_first = io.last_received
        first_read.set()
        assert io.receive(deadline, Reason.DIMSE_TIMEOUT) == b"b" * 40
        io.since(sent)
    assert after_first is not None and after_first.kernel is not None
    last = io.last_received
    assert last is not None and last.kernel is not None
    # The second part was sent only after our first read returned.
    assert last.kernel >= after_first.wall


def test_without_stamps_the_phase_is_timed_by_our_clock() -> None:
    def echo_back(conn: socket.socket) -> None:
        conn.sendall(conn.recv(100))

    with loopback_peer(echo_back) as sock:
        io = TimedIO(sock)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, 0)
        io.stamping = False
        deadline = Deadline(5)
        sent = io.send(b"ping", deadline, Reason.DIMSE_TIMEOUT)
        assert io.receive(deadline, Reason.DIMSE_TIMEOUT) == b"ping"
        seconds = io.since(sent)
    assert io.last_clock == "user"
    assert io.last_received is not None
    assert seconds == pytest.approx(io.last_received.mono - sent.mono)


def test_a_silent_peer_times_out_with_the_reason_given_despite_queued_send_stamps() -> None:
    done = threading.Event()

    def silent(conn: socket.socket) -> None:
        done.wait(5)

    with loopback_peer(silent) as sock:
        io = TimedIO(sock)
        deadline = Deadline(0.3)
        io.send(b"hello?", deadline, Reason.ASSOCIATION_TIMEOUT)
        with pytest.raises(ProbeFailure) as caught:
            while True:
                io.receive(deadline, Reason.ASSOCIATION_TIMEOUT)
        done.set()
    assert caught.value.reason is Reason.ASSOCIATION_TIMEOUT
    assert caught.value.detail == "peer sent nothing in time"


def test_a_peer_that_closes_is_a_reset() -> None:
    def close_at_once(conn: socket.socket) -> None:
        conn.recv(10)
        conn.close()

    with loopback_peer(close_at_once) as sock:
        io = TimedIO(sock)
        deadline = Deadline(5)
        io.send(b"hi", deadline, Reason.DIMSE_TIMEOUT)
        with pytest.raises(ProbeFailure) as caught:
            io.receive(deadline, Reason.DIMSE_TIMEOUT)
    assert caught.value.reason is Reason.RESET


@pytest.mark.slow  # the test certificates come from openssl
@pytest.mark.usefixtures("kernel_stamping")
def test_tls_in_memory_round_trips_and_keeps_the_kernel_receive_stamp(pki: Path) -> None:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(pki / "server.crt", pki / "server.key")

    def tls_echo(conn: socket.socket) -> None:
        with server_context.wrap_socket(conn, server_side=True) as tls:
            data = tls.recv(100)
            tls.sendall(data.upper())
            tls.recv(100)  # until we close

    client_context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with loopback_peer(tls_echo) as sock:
        wrapped = tls_socket(sock, client_context, "localhost")
        deadline = Deadline(5)
        handshake(wrapped, deadline)
        assert wrapped.version() in ("TLSv1.2", "TLSv1.3")
        assert wrapped.getpeercert()
        io = TimedIO(wrapped)
        sent = io.send(b"c-echo-rq", deadline, Reason.DIMSE_TIMEOUT)
        answer = b""
        while len(answer) < 9:
            answer += io.receive(deadline, Reason.DIMSE_TIMEOUT)
        io.since(sent)
        io.close()
    assert answer == b"C-ECHO-RQ"
    assert io.last_received is not None and io.last_received.kernel is not None
    assert io.last_clock in ("kernel", "kernel-rx")


def test_connect_is_timed_by_the_kernel_handshake_round_trip(monkeypatch) -> None:
    with loopback_peer(lambda conn: None) as sock:
        kernel = timed_io.connect_duration(sock, ours=60.0)
        assert 0 < kernel < 60.0
        # A kernel figure longer than our own measurement is not believed.
        monkeypatch.setattr(timed_io, "CLOCK_SLACK", 0.0)
        assert timed_io.connect_duration(sock, ours=kernel / 2) == kernel / 2


def test_connect_without_tcp_info_falls_back_to_our_clock() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert timed_io.connect_duration(left, ours=0.003) == 0.003
