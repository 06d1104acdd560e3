"""Issue 13, HTTP half: the server stays bounded and answers cleanly whatever clients do.

Everything here runs against the real server on 127.0.0.1 (or inside a network
namespace the test creates); clients are raw sockets so they can misbehave.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gzip
import http.client as httpclient
import itertools
import logging
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import bcrypt
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from exporter import buildinfo, live, metrics, probers
from exporter.app import Exporter, ProbeLimits
from exporter.config import webconfig
from exporter.dicom.codec import Accepted, ContextResult
from exporter.dicom.failure import Deadline
from exporter.gate import Gate
from exporter.metrics import BUILD_INFO, probe_page, render_probe
from exporter.probers import session
from exporter.probers.context import ProbeContext
from exporter.probers.report import ProbeReport
from exporter.reasons import Reason
from exporter.schedule import Scheduler
from exporter.web import connections
from exporter.web import server as web_server
from exporter.web.connections import Connection, ConnectionLoop, Limits, Refusal, frame
from tests.support.configs import make_config
from tests.support.hostile import ScriptedPeer, read_pdu
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port
from tests.support.served import (  # noqa: F401 (fixtures)
    exporter_with_peer,
    served_exporter,
    silent_peer,
)
from tests.support.webauth import basic, users_yaml

ROOT = Path(__file__).parent.parent


def connect(server: web_server.Server) -> socket.socket:
    sock = socket.create_connection(server.server_address[:2], timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def get(server: web_server.Server, path: str, headers: dict[str, str] | None = None
        ) -> httpclient.HTTPResponse:
    host, port = server.server_address[:2]
    connection = httpclient.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer


def statuses(answer: bytes) -> list[bytes]:
    """The status codes of the responses in one connection's bytes."""
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)


def status_of(server: web_server.Server, path: str) -> int:
    with connect(server) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


# -- framing (pure) --------------------------------------------------------------
LIMITS = Limits(max_head=200, max_body=100)


@pytest.mark.parametrize(("data", "expected"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n", None),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next", 27),
    (b"GET / HTTP/1.1\nHost: x\n\n", 24),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc", None),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcdeGET", 43),
])
def test_framing_finds_whole_requests_and_their_bodies(data: bytes, expected: int | None) -> None:
    assert frame(data, LIMITS) == expected


@pytest.mark.parametrize(("data", "status"), [
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413),
    (b"GET /" + b"a" * 300, 414),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 50, 431),
])
def test_framing_refuses_what_it_cannot_frame_safely(data: bytes, status: int) -> None:
    refused = frame(data, LIMITS)
    assert isinstance(refused, Refusal) and refused.status == status


# -- request smuggling and bodies ---------------------------------------------------
def test_a_post_body_is_never_read_as_a_second_request(served: web_server.Server) -> None:
    smuggled = b"GET /probe?target=peer&module=tcp HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(served) as sock:
        sock.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     + str(len(smuggled)).encode() + b"\r\n\r\n" + smuggled
                     + b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_all(sock)
    assert statuses(answer) == [b"400", b"200"], answer
    assert b"no configuration file to reload" in answer
    assert served.exporter.stats.snapshot().series[("peer", "tcp")].count == 0


def test_an_oversized_body_gets_413_and_the_connection_closed(
        served: web_server.Server) -> None:
    with connect(served) as sock:
        sock.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_body_is_refused_not_misread(served: web_server.Server) -> None:
    with connect(served) as sock:
        sock.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"0\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 501 ")


def test_a_handler_bug_answers_500_and_says_the_connection_closes(
        served: web_server.Server) -> None:
    """The connection is closed after a 500; the answer must say so, or a
    keep-alive client sends its next request into a closed connection."""
    def broken(handler: object, method: str) -> None:
        raise RuntimeError("a bug")

    served.extra_endpoints["/broken"] = broken
    with connect(served) as sock:
        sock.sendall(b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_all(sock)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert statuses(answer) == [b"500"]
    assert b"\r\nconnection: close" in head


def test_pipelined_requests_are_answered_in_order(served: web_server.Server) -> None:
    with connect(served) as sock:
        sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_all(sock)
    assert statuses(answer) == [b"200", b"404", b"200"]


def test_a_large_answer_to_a_slow_reader_arrives_whole(served: web_server.Server) -> None:
    """More than the socket buffers hold: the first send is partial, the rest waits."""
    # Past the largest send buffer the kernel grows to (tcp_wmem's maximum, 4 MiB here).
    largest = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    body = bytes(range(256)) * (largest // 256 + 4096)
    served.extra_endpoints["/big"] = lambda handler, method: handler.reply(200, body)
    with connect(served) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)  # the server meets full buffers before anything is read
        answer = read_all(sock)
    head, _, received = answer.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert received == body


def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(
        peer: ScriptedPeer) -> None:
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 limits=Limits(write_timeout=0.5))
    body = b"x" * (32 * 1024 * 1024)
    server.extra_endpoints["/big"] = lambda handler, method: handler.reply(200, body)
    try:
        with connect(server) as stuck:
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            assert stuck.recv(4096).startswith(b"HTTP/1.1 200 ")  # the answer has begun
            deadline = time.monotonic() + 10
            while server.loop.open_connections and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.loop.open_connections == 0  # given up on, not waited for
            assert get(server, "/-/healthy").status == 200
    finally:
        server.shutdown()
        server.server_close()


def _closed_by_us(conn: socket.socket, closed: threading.Event) -> None:
    conn.settimeout(10)
    while conn.recv(4096):
        pass
    closed.set()


def test_a_probe_socket_is_closed_after_the_answer_is_left_to_the_caller() -> None:
    closed = threading.Event()
    with ScriptedPeer(lambda p, conn: _closed_by_us(conn, closed)) as peer:
        exporter = exporter_with_peer(peer)
        deferred: list = []
        report = exporter.probe("peer", "tcp", deferred=deferred)
        assert report.success and len(deferred) == 1
        assert not closed.wait(0.2)  # still open: the caller answers first
        for action in deferred:
            action()
        assert closed.wait(5)
        closed.clear()
        assert exporter.probe("peer", "tcp").success  # nobody to leave it to: closed at once
        assert closed.wait(5)


def _our_sockets_to(port: int) -> int:
    """This process's TCP sockets whose far end is `port` on loopback: the
    probes' own, not the peer's accepted ones nor anything another test left
    running in this worker (counting every descriptor of the process raced
    with those)."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                ours.add(link[8:-1])
    count = 0
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port and fields[9] in ours:
            count += 1
    return count


def test_probe_sockets_are_closed_once_the_answer_is_written() -> None:
    closed = threading.Event()
    with ScriptedPeer(lambda p, conn: _closed_by_us(conn, closed)) as peer:
        server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0))
        try:
            for _ in range(30):
                closed.clear()
                assert get(server, "/probe?target=peer&module=tcp").status == 200
                assert closed.wait(5)  # the peer read our FIN
            assert _our_sockets_to(peer.port) == 0
        finally:
            server.shutdown()
            server.server_close()


def test_pipelined_probes_close_each_socket_before_the_next_probe(
        peer: ScriptedPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer's tidying runs before the next pipelined request: a batch of
    probes on one connection never holds a socket per probe open."""
    opened: list[socket.socket] = []
    still_open: list[int] = []  # at each connect: earlier probe sockets not yet closed
    real_connect = session.connect

    def counting_connect(family: int, address: tuple, deadline: Deadline) -> socket.socket:
        still_open.append(sum(sock.fileno() >= 0 for sock in opened))
        opened.append(real_connect(family, address, deadline))
        return opened[-1]

    monkeypatch.setattr(session, "connect", counting_connect)
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0))
    try:
        batch = b"GET /probe?target=peer&module=tcp HTTP/1.1\r\nHost: x\r\n\r\n" * 40
        with connect(server) as sock:
            sock.sendall(batch + b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n"
                                 b"Connection: close\r\n\r\n")
            answer = read_all(sock)
    finally:
        server.shutdown()
        server.server_close()
    assert statuses(answer) == [b"200"] * 41
    assert answer.count(b"probe_success 1.0") == 40
    assert len(still_open) == 40 and max(still_open) == 0
    assert all(sock.fileno() == -1 for sock in opened)


# -- hostile query strings and paths ------------------------------------------------
@pytest.mark.parametrize(("path", "status"), [
    ("/?refresh=%C2%B2", 400),
    ("/?refresh=" + "9" * 5000, 400),
    ("/?refresh=0", 400),
    ("/runbooks/" + "A" * 5000, 404),
    ("/runbooks/" + "%00" * 100, 404),
    ("/probe?" + "&".join(f"a{i}=1" for i in range(200)), 400),
    ("/probe?target=peer&module=" + "x" * 5000, 400),
    ("/%ff%fe", 404),
])
def test_hostile_paths_get_a_4xx_and_no_traceback(
        served: web_server.Server, path: str, status: int,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        assert status_of(served, path) == status
    assert not [r for r in caplog.records if r.exc_info], caplog.text


@pytest.mark.parametrize(("line", "status"), [
    (b"GET /probe?a\tb HTTP/1.1", b"400"), (b"GET", b"400"), (b"\x00\x01", b"400"),
    (b"GET / HTTP/2.0", b"505"),
])
def test_a_broken_request_line_still_gets_a_status_line(
        served: web_server.Server, line: bytes, status: bytes) -> None:
    """Not an HTTP/0.9 bare body, which no client of ours can read as an answer."""
    with connect(served) as sock:
        sock.sendall(line + b"\r\nHost: x\r\n\r\n")
        response = read_all(sock)
    assert response.startswith(b"HTTP/1.1 " + status + b" "), response[:100]
    assert b"\r\nConnection: close\r\n" in response.split(b"\r\n\r\n", 1)[0] + b"\r\n"


@pytest.mark.parametrize("header", ["abc", "nan", "inf", "-1", "0", "1e999", "9" * 400])
def test_bad_scrape_timeout_headers_get_400(served: web_server.Server, header: str) -> None:
    answer = get(served, "/probe?target=peer&module=tcp",
                 {"X-Prometheus-Scrape-Timeout-Seconds": header})
    assert answer.status == 400


def test_a_request_that_never_finishes_gets_408_and_is_closed(peer: ScriptedPeer) -> None:
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 limits=Limits(read_timeout=0.5))
    try:
        with connect(server) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the blank line never comes
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert server.loop.open_connections == 0
    finally:
        server.shutdown()
        server.server_close()


def test_a_silent_connection_is_closed_after_the_read_timeout_a_kept_one_after_idle(
        peer: ScriptedPeer) -> None:
    """A client that connects and says nothing costs a file descriptor only
    until the read timeout; a kept-alive scraper's connection is given the
    longer idle timeout between its requests, then closed too."""
    read_timeout, idle_timeout = 0.3, 2.0
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 limits=Limits(read_timeout=read_timeout,
                                               idle_timeout=idle_timeout))
    request = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        with connect(server) as silent, connect(server) as kept:
            kept.sendall(request)
            assert kept.recv(65536).endswith(b"Healthy\n")
            answered = time.monotonic()
            assert read_all(silent) == b""  # closed without a word: nothing was asked
            # Past the read timeout since its answer, the kept-alive connection still serves.
            time.sleep(max(0.0, answered + read_timeout + 0.2 - time.monotonic()))
            kept.sendall(request)
            assert kept.recv(65536).endswith(b"Healthy\n")
            answered = time.monotonic()
            assert read_all(kept) == b""
            assert time.monotonic() - answered >= idle_timeout - 0.05
        assert server.loop.open_connections == 0
    finally:
        server.shutdown()
        server.server_close()


# -- headers and compression -------------------------------------------------------
def test_no_server_header_tells_the_python_version(served: web_server.Server) -> None:
    for path in ("/metrics", "/nothing", "/-/healthy"):
        answer = get(served, path)
        assert answer.getheader("Server") is None
    with connect(served) as sock:
        sock.sendall(b"BREW / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 501 ") and b"Python" not in answer


@pytest.mark.parametrize(("accept", "gzipped"), [
    ("gzip", True), ("deflate, gzip;q=0.5", True), ("*", True),
    ("gzip;q=0", False), ("identity", False), ("", False)])
def test_metrics_are_gzipped_when_the_client_accepts_it(
        served: web_server.Server, accept: str, gzipped: bool) -> None:
    host, port = served.server_address[:2]
    connection = httpclient.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/metrics", headers={"Accept-Encoding": accept})
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    assert (answer.getheader("Content-Encoding") == "gzip") is gzipped
    text = gzip.decompress(body) if gzipped else body
    assert BUILD_INFO.encode() in text


def test_build_info_carries_the_git_revision(served: web_server.Server) -> None:
    host, port = served.server_address[:2]
    connection = httpclient.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    line = next(x for x in text.splitlines() if x.startswith(BUILD_INFO + "{"))
    assert f'revision="{buildinfo.REVISION}"' in line
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                         capture_output=True, text=True)
    if git.returncode != 0:
        pytest.skip("not a git checkout (or no git): the revision is 'unknown'")
    # Read again now, not at import: a commit during the run must not fail this.
    assert buildinfo.revision() == git.stdout.strip()[:12]


# -- connections: caps, shedding, threads -------------------------------------------
def test_idle_and_slowloris_connections_hold_no_threads(served: web_server.Server) -> None:
    before = threading.active_count()
    idle = [connect(served) for _ in range(150)]
    slow = [connect(served) for _ in range(150)]
    try:
        for sock in slow:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-a: ")
        assert get(served, "/metrics").status == 200
        assert get(served, "/probe?target=peer&module=tcp").status == 200
        # The pool's two threads, and a third if the second request came while the
        # first was being answered: nothing per held connection.
        assert served.loop.threads <= 3
        assert threading.active_count() - before < 10
        assert served.loop.open_connections >= 300
    finally:
        for sock in idle + slow:
            sock.close()


def test_past_the_cap_idle_connections_are_shed_and_real_requests_answered(
        peer: ScriptedPeer) -> None:
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 limits=Limits(max_connections=20))
    host, port = server.server_address[:2]
    scraper = httpclient.HTTPConnection(host, port, timeout=10)  # kept alive, as Prometheus
    scraper.request("GET", "/metrics")
    assert scraper.getresponse().read()
    idle = [connect(server) for _ in range(60)]
    try:
        for _ in range(3):
            assert get(server, "/metrics").status == 200
            assert get(server, "/probe?target=peer&module=tcp").status == 200
            scraper.request("GET", "/probe?target=peer&module=tcp")
            answer = scraper.getresponse()
            assert answer.status == 200 and answer.read()
        assert server.loop.shed >= 40
        assert server.loop.open_connections <= 20
    finally:
        scraper.close()
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()


def test_when_every_connection_is_busy_a_newcomer_gets_503() -> None:
    release = threading.Event()

    def hold(peer: ScriptedPeer, conn: socket.socket) -> None:
        read_pdu(conn)
        release.wait(20)

    with ScriptedPeer(hold) as silent:
        # Probes that outlast any pause of a loaded machine: the connections stay busy.
        exporter = Exporter(make_config(
            {"peer": {"port": silent.port, "ae_title": "PEER", "modules": ["echo"]}},
            {"echo": {"prober": "echo", "timeout": "10s"}}))
        server, _ = web_server.start(exporter, (LOOPBACK, 0), limits=Limits(max_connections=2))
        probes = [threading.Thread(target=get, args=(server, "/probe?target=peer&module=echo"))
                  for _ in range(2)]
        try:
            for thread in probes:
                thread.start()
            deadline = time.monotonic() + 10
            while exporter.stats.snapshot().in_flight < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert exporter.stats.snapshot().in_flight == 2
            with connect(server) as sock:
                answer = read_all(sock)
            assert answer.startswith(b"HTTP/1.1 503 ")
        finally:
            release.set()
            for thread in probes:
                thread.join()
            server.shutdown()
            server.server_close()


class HeldLoop:
    """A ConnectionLoop of its own bounds whose /slow answers wait for `release`."""

    def __init__(self, limits: Limits) -> None:
        self.release = threading.Event()
        self.closed = threading.Event()  # what /closing leaves for after its answer waits on it
        self.answering = threading.Semaphore(0)
        listener = socket.create_server((LOOPBACK, 0))
        self.address = listener.getsockname()[:2]
        self.loop = ConnectionLoop([listener], self.respond, lambda: None, limits)
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()

    def respond(self, request: bytes, connection: Connection) -> tuple[bytes, bool]:
        if request.startswith(b"GET /slow "):
            self.answering.release()
            self.release.wait(20)
        if request.startswith(b"GET /closing "):  # as a probe leaves its socket's close
            connection.after.append(lambda: self.closed.wait(20))
        return (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
                b"Connection: close" not in request)

    def send(self, request: bytes) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=10)
        sock.sendall(request)
        return sock

    def hold(self, count: int) -> list[socket.socket]:
        """`count` /slow requests, each being answered when this returns."""
        held = [self.send(b"GET /slow HTTP/1.1\r\n\r\n") for _ in range(count)]
        for _ in range(count):
            assert self.answering.acquire(timeout=10)
        return held

    def close(self) -> None:
        self.release.set()
        self.closed.set()
        self.loop.close()


def test_at_the_thread_bound_requests_are_still_read_timed_out_and_answered_in_turn(
        ) -> None:
    held = HeldLoop(Limits(workers=2, read_timeout=0.5))
    try:
        slow = held.hold(2)  # both answering threads busy
        assert held.loop.threads == 3  # and one more, still waiting on the epoll
        third = held.send(b"GET /slow HTTP/1.1\r\nConnection: close\r\n\r\n")
        partial = held.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        # The waiting thread keeps reading and timing out: it queued the third
        # request rather than answer it (and wait with the others).
        assert read_all(partial).startswith(b"HTTP/1.1 408 ")
        assert not held.answering.acquire(timeout=0)
        held.release.set()
        assert read_all(third).startswith(b"HTTP/1.1 200 ")  # answered once a thread was free
        for sock in [*slow, partial, third]:
            sock.close()
    finally:
        held.close()


def test_out_of_descriptors_with_nothing_to_shed_pauses_accept_and_resumes(
        caplog: pytest.LogCaptureFixture) -> None:
    """With every connection being answered there is nothing to shed: accept()
    then fails with EMFILE for as long as the limit holds. The loop must pause
    rather than spin on a listener that stays readable (the old accept loop
    burnt a core), and take the waiting clients once descriptors are free."""
    held = HeldLoop(Limits(workers=8, max_connections=1000))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    waiting = [socket.socket() for _ in range(3)]  # descriptors taken before the limit drops
    try:
        busy = held.hold(2)
        lowest_free = os.open(os.devnull, os.O_RDONLY)
        os.close(lowest_free)
        with caplog.at_level(logging.WARNING, logger="dicom_exporter.http"):
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
            try:
                started = time.process_time()
                for sock in waiting:
                    sock.settimeout(10)
                    sock.connect(held.address)  # queued in the backlog, not accepted
                time.sleep(0.5)
                burnt = time.process_time() - started
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert "out of file descriptors, pausing accept" in caplog.text
        assert burnt < 0.25, f"{burnt:.2f} s of CPU in 0.5 s out of descriptors"
        for sock in waiting:  # accepted once the pause is over and descriptors are free
            sock.sendall(b"GET /fast HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert read_all(sock).startswith(b"HTTP/1.1 200 ")
        held.release.set()
        for sock in busy:
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
            sock.close()
    finally:
        for sock in waiting:
            sock.close()
        held.close()


def test_the_next_request_is_not_held_behind_the_last_answers_tidying_up() -> None:
    """A probe's socket is closed after its answer is written; a client that
    sends its next request as soon as the answer arrives (the benchmark, a
    tight loop) is answered meanwhile, not after that close."""
    held = HeldLoop(Limits(workers=8))
    try:
        with socket.create_connection(held.address, timeout=10) as sock:
            sock.sendall(b"GET /closing HTTP/1.1\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"GET /fast HTTP/1.1\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")  # the close still waits
            assert not held.closed.is_set()
    finally:
        held.close()


def test_a_thread_slow_to_start_is_the_one_left_waiting(monkeypatch) -> None:
    """A started thread counts as waiting before it waits: on a loaded machine a
    request read in between made the pool start a second spare (12 threads for
    10 answers)."""
    start = connections.start_thread

    def slow_start(target: Callable[[], None], name: str) -> None:
        def late() -> None:
            time.sleep(0.1)
            target()
        start(late, name)

    monkeypatch.setattr(connections, "start_thread", slow_start)
    held = HeldLoop(Limits(workers=16))
    try:
        slow = held.hold(5)
        assert held.loop.threads == 6  # five answering, one waiting
        held.release.set()
        for sock in slow:
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
            sock.close()
    finally:
        held.close()


def test_a_thread_that_cannot_start_costs_no_request(monkeypatch) -> None:
    held = HeldLoop(Limits(workers=8))
    try:
        slow = held.hold(1)
        threads = held.loop.threads

        def refused(target: object, name: str) -> None:
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(connections, "start_thread", refused)
        # Read by the last waiting thread, which cannot start its replacement:
        # it goes on waiting, and the requests wait for the busy thread.
        slow.append(held.send(b"GET /slow HTTP/1.1\r\n\r\n"))
        fast = held.send(b"GET /fast HTTP/1.1\r\nConnection: close\r\n\r\n")
        held.release.set()
        assert held.answering.acquire(timeout=10)  # the second /slow, answered in turn
        assert read_all(fast).startswith(b"HTTP/1.1 200 ")
        assert held.loop.threads == threads  # no thread counted that never started
        for sock in [*slow, fast]:
            sock.close()
    finally:
        held.close()


def test_after_shutdown_the_answers_under_way_are_waited_for_before_close() -> None:
    """SIGTERM: an aborted probe has ended before its answer is written; closing
    the connections then would lose the answer that says it was interrupted."""
    held = HeldLoop(Limits(workers=8))
    try:
        slow = held.hold(2)
        held.loop.shutdown()
        assert not held.loop.wait_answered(0.2)  # both still being answered
        held.release.set()
        assert held.loop.wait_answered(10)
        held.loop.close()
        for sock in slow:
            assert read_all(sock).startswith(b"HTTP/1.1 200 ")
            sock.close()
    finally:
        held.close()


def test_shutdown_returns_at_once_while_every_thread_is_answering() -> None:
    """SIGTERM aborts the probes in flight right after shutdown(): it must not
    wait for them (the thread that ran the loop may be answering one)."""
    held = HeldLoop(Limits(workers=8))
    try:
        slow = held.hold(3)
        started = time.monotonic()
        held.loop.shutdown()
        assert time.monotonic() - started < 1.0
        for sock in slow:
            sock.close()
    finally:
        held.close()


def test_the_thread_pool_shrinks_back_when_idle() -> None:
    held = HeldLoop(Limits(workers=16))
    try:
        slow = held.hold(10)
        assert held.loop.threads == 11
        held.release.set()
        for sock in slow:
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
            sock.close()
        deadline = time.monotonic() + 10
        while held.loop.threads > connections.IDLE_THREADS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held.loop.threads == connections.IDLE_THREADS
    finally:
        held.close()


def _child_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_with_1024_fds_1100_idle_connections_do_not_stop_scrapes(tmp_path: Path) -> None:
    """The default `ulimit -n 1024` and more idle clients than descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"the test itself needs 1,400 descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400), hard))
    config = tmp_path / "c.yml"
    with ScriptedPeer(lambda p, conn: None) as peer:
        config.write_text(yaml.safe_dump({
            "modules": {"tcp": {"prober": "tcp", "timeout": "2s"}},
            "targets": {"peer": {"host": LOOPBACK, "port": peer.port, "ae_title": "PEER",
                                 "modules": ["tcp"], "labels": {"site": "vaxjo",
                                                               "role": "partner"}}}}))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "serve", "--config.file", str(config),
             "--web.listen-address", f"{LOOPBACK}:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=_child_fd_limit)
        idle: list[socket.socket] = []
        try:
            wait_for_port(port, process)
            for _ in range(1100):
                sock = socket.socket()
                sock.settimeout(10)
                sock.connect((LOOPBACK, port))
                idle.append(sock)
            for path in ("/metrics", "/probe?target=peer&module=tcp") * 3:
                connection = httpclient.HTTPConnection(LOOPBACK, port, timeout=10)
                connection.request("GET", path)
                assert connection.getresponse().status == 200, path
                connection.close()
            # Held, not spinning: the accept loop of old burnt a whole core here.
            before = _cpu_seconds(process.pid)
            time.sleep(1.0)
            burnt = _cpu_seconds(process.pid) - before
        finally:
            for sock in idle:
                sock.close()
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
    assert "Traceback" not in stderr
    assert process.returncode == 0, stderr
    assert burnt < 0.3, f"{burnt:.2f} s of CPU in 1 s while idle connections were held"


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- listen addresses ----------------------------------------------------------------
def test_ipv6_loopback_and_several_listen_addresses(peer: ScriptedPeer) -> None:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    server, _ = web_server.start(exporter_with_peer(peer),
                                 [(LOOPBACK, 0), ("::1", 0)])
    try:
        assert [url.split("://")[1].rsplit(":", 1)[0] for url in server.urls] == [
            LOOPBACK, "[::1]"]
        for family, sockname in zip((socket.AF_INET, socket.AF_INET6), server.addresses,
                                    strict=True):
            with socket.socket(family) as sock:
                sock.settimeout(10)
                sock.connect(sockname[:2])
                sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert read_all(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("text", "address"), [
    (":10104", ("", 10104)), ("[::1]:0", ("::1", 0)), ("127.0.0.1:9", ("127.0.0.1", 9)),
    ("[::]:10104", ("::", 10104))])
def test_listen_addresses_parse_as_prometheus_writes_them(text: str, address: tuple) -> None:
    assert web_server.parse_listen_address(text) == address


@pytest.mark.parametrize("text", ["10104", "::1:10104", "[::1:10104", "host:²", "host:70000"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        web_server.parse_listen_address(text)


NAMESPACE_DRIVER = """
import json, subprocess, sys, urllib.request
process = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--config.file",
                            sys.argv[1], "--web.listen-address", ":0"],
                           stderr=subprocess.PIPE, text=True)
line = process.stderr.readline()
port = line.rsplit(":", 1)[1].split()[0]
result = {"line": line}
for host in ("127.0.0.1", "[::1]"):
    with urllib.request.urlopen(f"http://{host}:{port}/-/healthy", timeout=10) as answer:
        result[host] = answer.status
process.terminate()
process.wait(10)
print(json.dumps(result))
"""


def test_an_empty_host_listens_on_ipv4_and_ipv6(tmp_path: Path) -> None:
    """`:port` is dual-stack, as in Go; run in a network namespace of the test's own."""
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    config = tmp_path / "c.yml"
    config.write_text("modules: {tcp: {prober: tcp}}\ntargets: {}\n")
    driver = tmp_path / "driver.py"
    driver.write_text(NAMESPACE_DRIVER)
    result = subprocess.run(
        ["unshare", "-rn", "sh", "-c",
         f'ip link set lo up && exec "{sys.executable}" "{driver}" "{config}"'],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert '"127.0.0.1": 200' in result.stdout and '"[::1]": 200' in result.stdout
    assert "Listening on" in result.stdout and "[::]:" in result.stdout


# -- basic auth ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auth_config(tmp_path_factory: pytest.TempPathFactory) -> webconfig.WebConfig:
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=8)).decode()
    path = tmp_path_factory.mktemp("auth") / "web.yml"
    path.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    return webconfig.load(path)


@pytest.fixture(scope="module")
def auth_gate(auth_config: webconfig.WebConfig) -> Gate:
    return Gate(auth_config)


def test_a_password_over_72_bytes_is_refused_not_a_crash(auth_gate: Gate) -> None:
    assert auth_gate.authorized(basic("prometheus", "right" + "x" * 100)) is False
    assert auth_gate.authorized(basic("nobody", "y" * 200)) is False
    assert auth_gate.authorized(basic("prometheus", "right")) is True


def test_an_unknown_user_costs_a_bcrypt_check_like_a_known_one(auth_gate: Gate) -> None:
    """CPU time of this thread, not wall time, so load on the machine cannot fail it."""

    def cpu(header: str) -> float:
        started = time.thread_time()
        assert auth_gate.authorized(header) is False
        return time.thread_time() - started

    known = min(cpu(basic("prometheus", "wrong")) for _ in range(3))
    unknown = min(cpu(basic("nobody", "wrong")) for _ in range(3))
    assert unknown > known / 4, (known, unknown)


def test_auth_is_checked_before_the_request_is_looked_at(peer: ScriptedPeer,
                                                         auth_config) -> None:
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0), web=auth_config)
    try:
        assert status_of(server, "/probe?target=peer&module=tcp") == 401
        assert status_of(server, "/?refresh=" + "9" * 5000) == 401
        assert server.exporter.stats.snapshot().series[("peer", "tcp")].count == 0
    finally:
        server.shutdown()
        server.server_close()


# -- the whole exporter-toolkit web config ----------------------------------------------
def test_rate_limit_answers_429(peer: ScriptedPeer, tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"rate_limit": {"interval": "1h", "burst": 2}}))
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(path))
    try:
        assert [status_of(server, "/-/healthy") for _ in range(3)] == [200, 200, 429]
    finally:
        server.shutdown()
        server.server_close()


def test_configured_security_headers_are_sent(peer: ScriptedPeer, tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"http_server_config": {"headers": {
        "X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}}}))
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(path))
    try:
        answer = get(server, "/metrics")
        assert answer.getheader("X-Frame-Options") == "deny"
        assert answer.getheader("X-Content-Type-Options") == "nosniff"
    finally:
        server.shutdown()
        server.server_close()


def test_http2_is_accepted_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"http_server_config": {"http2": True}}))
    web = webconfig.load(path)
    assert len(web.warnings) == 1 and "HTTP/2" in web.warnings[0]
    path.write_text(yaml.safe_dump({"http_server_config": {"http2": False}}))
    assert webconfig.load(path).warnings == ()


def test_web_config_is_reread_when_it_changes(peer: ScriptedPeer, tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    first = bcrypt.hashpw(b"first", bcrypt.gensalt(rounds=4)).decode()
    path.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": first}}))
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(path))
    stop = threading.Event()
    try:
        server.exporter.live.watch_web(stop, interval=0.05)
        assert server.exporter.live.current.gate.authorized(basic("prometheus", "first"))
        second = bcrypt.hashpw(b"second", bcrypt.gensalt(rounds=4)).decode()
        path.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": second,
                                                             "extra": second}}))
        deadline = time.monotonic() + 10
        while "extra" not in server.web.users and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.exporter.live.current.gate.authorized(basic("prometheus", "second"))
        assert not server.exporter.live.current.gate.authorized(basic("prometheus", "first"))
        path.write_text("basic_auth_users: [\n")  # broken: the running one is kept
        assert server.exporter.live.reload_web() is not None
        assert server.exporter.live.current.gate.authorized(basic("prometheus", "second"))
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def _versioned_web_config(folder: Path) -> Path:
    """web.yml, a symlink to v1/web.yml (user prometheus, password "first") as
    config management deploys it; v2/web.yml has password "second"."""
    for version, password in (("v1", "first"), ("v2", "second")):
        (folder / version).mkdir()
        (folder / version / "web.yml").write_text(users_yaml(prometheus=password))
    link = folder / "web.yml"
    link.symlink_to(folder / "v1" / "web.yml")
    return link


def _repoint(link: Path) -> None:
    """Deploy v2: the link re-pointed in one rename, as config management does it."""
    (link.parent / "next").symlink_to(link.parent / "v2" / "web.yml")
    os.replace(link.parent / "next", link)


def test_a_reload_reads_the_web_config_path_as_given_not_where_it_pointed(
        peer: ScriptedPeer, tmp_path: Path) -> None:
    """Config management re-points a symlink to a new version: a reload reads
    the new one (it read the target resolved at start, again and again)."""
    link = _versioned_web_config(tmp_path)
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(link))
    try:
        assert server.exporter.live.current.gate.authorized(basic("prometheus", "first"))
        _repoint(link)
        assert server.reload() is None  # what SIGHUP and POST /-/reload do
        assert server.exporter.live.current.gate.authorized(basic("prometheus", "second"))
    finally:
        server.shutdown()
        server.server_close()


def test_the_watcher_notices_a_symlink_re_pointed_to_a_new_file(
        peer: ScriptedPeer, tmp_path: Path) -> None:
    link = _versioned_web_config(tmp_path)
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(link))
    stop = threading.Event()
    try:
        server.exporter.live.watch_web(stop, interval=0.05)
        _repoint(link)
        deadline = time.monotonic() + 10
        while not server.exporter.live.current.gate.authorized(basic("prometheus", "second")):
            assert time.monotonic() < deadline, "the re-pointed link was never read"
            time.sleep(0.05)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_a_reload_keeps_the_rate_limit_bucket_and_the_users_hashing(
        peer: ScriptedPeer, tmp_path: Path) -> None:
    """A reload that changes neither refills nothing: POST /-/reload between
    requests got round the rate limit, and every reload made the dummy hash
    again (over a second at bcrypt cost 14)."""
    path = tmp_path / "web.yml"
    path.write_text(users_yaml(prometheus="secret").rstrip("\n")
                    + "\nrate_limit: {interval: 60s, burst: 2}\n")
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(path))
    headers = {"Authorization": basic("prometheus", "secret")}
    try:
        before = server.exporter.live.current
        assert [get(server, "/-/healthy", headers).status for _ in range(2)] == [200, 200]
        assert server.exporter.live.reload_web() is None
        after = server.exporter.live.current
        assert after.web is not before.web  # read again, but what was unchanged carried over
        assert get(server, "/-/healthy", headers).status == 429
        assert after.gate.passwords is before.gate.passwords
    finally:
        server.shutdown()
        server.server_close()


def test_web_config_reloads_run_one_at_a_time(
        peer: ScriptedPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGHUP, POST /-/reload and the watcher may reload at once: a slow read
    that began first must not replace a later one when it ends."""
    path = tmp_path / "web.yml"
    path.write_text(users_yaml(prometheus="first"))
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(path))
    load = webconfig.load
    reads = iter(["first", "second"])

    def read_in_turn(name: str) -> webconfig.WebConfig:
        password = next(reads)
        path.write_text(users_yaml(prometheus=password))
        web = load(name)
        if password == "first":
            time.sleep(0.3)  # the earlier read ends last
        return web

    monkeypatch.setattr(live, "load_web_config", read_in_turn)
    try:
        slow = threading.Thread(target=server.exporter.live.reload_web)
        slow.start()
        time.sleep(0.1)
        server.exporter.live.reload_web()
        slow.join()
        assert server.exporter.live.current.gate.authorized(basic("prometheus", "second"))
    finally:
        server.shutdown()
        server.server_close()


def test_a_web_config_that_changes_while_it_is_read_is_read_again(
        peer: ScriptedPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor or a certificate rotation that truncates, then fills the file:
    the watcher may read it in between, and must not take that read as final.
    And a change right after the watcher is started counts, however late its
    thread first runs."""
    path = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    path.write_text(yaml.safe_dump({"basic_auth_users": {"first": hashed}}))
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0),
                                 web=webconfig.load(path))
    real_load = live.load_web_config
    reads: list[str] = []

    def load_while_written(name: str) -> webconfig.WebConfig:
        loaded = real_load(name)
        reads.append(name)
        if len(reads) == 1:  # the writer finishes just after this read
            path.write_text(yaml.safe_dump({"basic_auth_users": {"final": hashed}}))
        return loaded

    real_signature = live.signature
    late: list[bool] = []

    def late_start(web: webconfig.WebConfig) -> tuple:
        if threading.current_thread().name == "web-config-watch" and not late:
            late.append(True)
            time.sleep(0.3)  # the watcher thread starts after the change below
        return real_signature(web)

    monkeypatch.setattr(live, "load_web_config", load_while_written)
    monkeypatch.setattr(live, "signature", late_start)
    stop = threading.Event()
    try:
        server.exporter.live.watch_web(stop, interval=0.05)
        path.write_text(yaml.safe_dump({"basic_auth_users": {"partial": hashed}}))
        deadline = time.monotonic() + 10
        while "final" not in server.web.users and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(server.web.users) == {"final"}
        assert len(reads) >= 2
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


# -- scheduler -----------------------------------------------------------------------------
class CountingExporter(Exporter):
    """Counts how often the scheduler reads the config: once per round."""

    reads = 0

    @property
    def config(self):  # type: ignore[override]
        self.reads += 1
        return super().config


def test_an_empty_target_list_does_not_spin_the_scheduler() -> None:
    exporter = CountingExporter(make_config({}))
    scheduler = Scheduler(exporter, 0.2)
    scheduler.start()
    time.sleep(1.0)
    scheduler.stop()
    assert 1 <= exporter.reads <= 10


def test_scheduled_probes_refused_by_the_limits_wait_for_a_slot(
        caplog: pytest.LogCaptureFixture) -> None:
    """Two targets on one silent host, one probe per host at a time: the second is
    due (1.2 s) while the first still waits out its 1.4 s timeout, is refused, and
    runs as soon as the slot is free, well before its next turn (3.6 s)."""
    with ScriptedPeer(lambda p, conn: p.hold()) as silent:
        targets = {name: {"port": silent.port, "ae_title": "SILENT", "modules": ["echo"]}
                   for name in ("first", "second")}
        modules = {"echo": {"prober": "echo", "timeout": "1400ms"}}
        exporter = Exporter(make_config(targets, modules), limits=ProbeLimits(per_target=1))
        scheduler = Scheduler(exporter, 2.4)
        with caplog.at_level(logging.WARNING):
            scheduler.start()
            deadline = time.monotonic() + 20
            series = exporter.stats.snapshot().series
            while time.monotonic() < deadline and not series[("second", "echo")].count:
                time.sleep(0.05)
                series = exporter.stats.snapshot().series
            scheduler.stop()
            exporter.abort_all()
    assert series[("first", "echo")].count >= 1 and series[("second", "echo")].count >= 1
    assert not scheduler.skipped
    assert not [r for r in caplog.records if r.exc_info]


def test_a_probe_that_finds_no_slot_in_its_turn_is_logged_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedPeer(lambda p, conn: p.hold()) as silent:
        targets = {name: {"port": silent.port, "ae_title": "SILENT", "modules": ["echo"]}
                   for name in ("first", "second")}
        modules = {"echo": {"prober": "echo", "timeout": "5s"}}
        exporter = Exporter(make_config(targets, modules), limits=ProbeLimits(per_target=1))
        scheduler = Scheduler(exporter, 1.0)
        with caplog.at_level(logging.WARNING):
            scheduler.start()
            deadline = time.monotonic() + 5
            while not scheduler.skipped and time.monotonic() < deadline:
                time.sleep(0.05)
            scheduler.stop()
            exporter.abort_all()
    assert any(reason in ("overloaded", "still_running")
               for _, _, reason in scheduler.skipped)
    skips = [r for r in caplog.records if r.getMessage() == "scheduled probe skipped"]
    assert skips and not [r for r in caplog.records if r.exc_info]
    text = generate_latest(exporter.registry)
    assert b"dicom_exporter_scheduled_probes_skipped_total{" in text


# -- scrape timeout ---------------------------------------------------------------------
def test_the_scrape_timeout_budget_is_continuous_and_monotonic() -> None:
    exporter = Exporter(make_config({}))
    grid = [i / 1000 for i in range(1, 3000)]
    budgets = [exporter.timeout_for(60.0, scrape) for scrape in grid]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(budgets))
    assert max(b2 - b1 for b1, b2 in itertools.pairwise(budgets)) <= 0.001 + 1e-9
    assert exporter.timeout_for(60.0, 0.5) == pytest.approx(0.25)
    assert exporter.timeout_for(60.0, 0.5001) == pytest.approx(0.25005)
    assert exporter.timeout_for(60.0, 1.2) == pytest.approx(0.7)
    assert exporter.timeout_for(2.0, 10.0) == 2.0


# -- any request at all ----------------------------------------------------------------
# What a scanner or a broken client may send: every endpoint, any method, query
# fields known and unknown with values of any Unicode, percent-encoded or raw
# bytes, and the headers the handlers read with any value.
ENDPOINT_PATHS = st.sampled_from(["/probe", "/metrics", "/", "/sd", "/-/reload", "/-/healthy",
                                  "/-/ready", "/runbooks/", "/runbooks", "/status.json",
                                  "/runbooks/DicomExporterDown", "/nothing"])
ANY_TEXT = st.text(max_size=40)
RAW_TARGET_BYTES = st.binary(max_size=80).map(
    lambda raw: bytes(b for b in raw if b not in b" \r\n"))
QUERY_FIELDS = st.lists(st.tuples(
    st.one_of(st.sampled_from(["target", "module", "debug", "refresh"]), ANY_TEXT),
    st.one_of(st.sampled_from(["peer", "tcp", "echo", "true", "5", "0", "²"]), ANY_TEXT,
              st.integers().map(str))), max_size=6)
HEADER_VALUES = st.one_of(ANY_TEXT, st.integers().map(str),
                          st.floats(allow_nan=True, allow_infinity=True).map(repr),
                          st.text(st.characters(max_codepoint=255), max_size=40)
                          ).map(lambda v: v.replace("\r", "").replace("\n", ""))


def _target(path: str, fields: list[tuple[str, str]], raw: bytes, encoded: bool) -> bytes:
    if not encoded:  # as sent, no percent-encoding: bytes an HTTP client would never send
        return path.encode() + b"?" + raw
    query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in fields)
    return f"{path}?{query}".encode()


def test_any_request_is_answered_below_500_and_logs_no_traceback(
        peer: ScriptedPeer, caplog: pytest.LogCaptureFixture) -> None:
    """Hostile query strings and header values across every endpoint: one
    answer each, never a 500, and nothing our handlers did not expect."""
    server, _ = web_server.start(exporter_with_peer(peer), (LOOPBACK, 0))

    @settings(max_examples=250, deadline=None)
    @given(ENDPOINT_PATHS, QUERY_FIELDS, RAW_TARGET_BYTES, st.booleans(),
           st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"G\xc3\xa9T"]),
           st.dictionaries(st.sampled_from(["X-Prometheus-Scrape-Timeout-Seconds",
                                            "Accept-Encoding", "Authorization", "Connection"]),
                           HEADER_VALUES, max_size=3))
    def answer(path: str, fields: list[tuple[str, str]], raw: bytes, encoded: bool,
               method: bytes, headers: dict[str, str]) -> None:
        head = b"".join(f"{name}: {value}\r\n".encode("utf-8", "surrogatepass")
                        for name, value in headers.items() if name != "Connection")
        request = (method + b" " + _target(path, fields, raw, encoded) + b" HTTP/1.1\r\n"
                   b"Host: x\r\n" + head + b"Connection: close\r\nContent-Length: 0\r\n\r\n")
        with connect(server) as sock:
            sock.sendall(request)
            response = read_all(sock)
        status = int(response[9:12])
        # 501: a method no endpoint has (PUT, DELETE, ...), which is not a failure of ours.
        assert response.startswith(b"HTTP/1.") and (200 <= status < 500 or status == 501), (
            request, response[:200])

    try:
        with caplog.at_level(logging.DEBUG):
            answer()
    finally:
        server.shutdown()
        server.server_close()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], (
        caplog.text[-2000:])


# -- the request target, parsed as the standard library would --------------------------
QUERY_TEXT = st.text(st.sampled_from("ab=&%+#?;/ 2F41éÿ\x00"), max_size=60)


@settings(max_examples=400, deadline=None)
@given(QUERY_TEXT)
def test_the_query_is_parsed_as_parse_qs_parses_it(query: str) -> None:
    try:
        expected = parse_qs(query, max_num_fields=web_server.MAX_QUERY_FIELDS)
    except ValueError:
        with pytest.raises(ValueError):
            web_server.parse_query(query)
        return
    assert web_server.parse_query(query) == expected


def test_a_query_of_more_fields_than_allowed_is_refused_as_parse_qs_refuses_it() -> None:
    query = "&".join(f"a{i}=1" for i in range(web_server.MAX_QUERY_FIELDS + 1))
    with pytest.raises(ValueError):
        web_server.parse_query(query)
    assert web_server.parse_query(query.rsplit("&", 1)[0])["a0"] == ["1"]


@settings(max_examples=400, deadline=None)
@given(QUERY_TEXT)
def test_the_request_target_is_split_where_urlsplit_splits_it(rest: str) -> None:
    for target in ("/" + rest, "//" + rest, "http://host/" + rest, rest):
        parts = urlsplit(target)
        assert web_server.split_target(target) == (parts.path, parts.query), target


# -- the fast /probe exposition ---------------------------------------------------------
def test_probe_exposition_is_byte_for_byte_what_client_python_writes(peer: ScriptedPeer) -> None:
    config = make_config({
        "up": {"port": peer.port, "ae_title": 'QUOTE"A', "modules": ["tcp", "echo"]},
        "closed": {"port": free_port(), "ae_title": "CLOSED", "modules": ["echo"]}})
    reports = [probers.run(config.targets["up"], config.modules["tcp"], 2.0),
               probers.run(config.targets["up"], config.modules["echo"], 2.0),
               probers.run(config.targets["closed"], config.modules["echo"], 2.0)]
    for report in reports:
        assert probe_page(report) == render_probe(report)
        assert probe_page(report) == render_probe(report)  # again, from the caches


def test_probe_exposition_matches_client_python_for_every_family_and_value(
        peer: ScriptedPeer) -> None:
    """Every optional family, label values a peer chooses (quotes, backslashes,
    newlines), and numbers Go spells in exponent form (a certificate's expiry)."""
    config = make_config({"up": {"port": peer.port, "ae_title": "PEER"}})
    report = probers.run(config.targets["up"], config.modules["store"], 2.0)
    report.tls_version = "TLSv1.3"
    report.tls_expiry = 1_893_456_000.25
    report.reject = (1, 1, 3)
    report.abort = (2, 6)
    report.status = 0xC000
    report.result_age = 3_600_000.5
    report.contexts = (ContextResult(1, "1.2.840.10008.1.1", True, "1.2.840.10008.1.2", 0),
                       ContextResult(3, "1.2.3.4", False, "", 3))
    report.peer = Accepted(report.contexts, 0, '1.2."3\\', 'A\nB"\\')
    report.phases["dimse"] = float("nan")
    text = probe_page(report)
    assert text == render_probe(report)
    for expiry in (0, -0.0, 0.0, False):  # equal as keys, written apart
        report.tls_expiry = expiry
        assert probe_page(report) == render_probe(report), expiry
    report.tls_expiry = 1_893_456_000.25
    for name in ("probe_ssl_earliest_cert_expiry 1.89345600025e+09",
                 "probe_dicom_tls_version_info", "probe_dicom_association_reject_info",
                 "probe_dicom_abort_info", "probe_dicom_result_age_seconds 3.6000005e+06",
                 'sop_class="1.2.3.4"', 'phase="dimse"} NaN'):
        assert name.encode() in text, name


def test_the_probe_line_cache_is_bounded_when_peers_choose_label_values(
        peer: ScriptedPeer) -> None:
    config = make_config({"up": {"port": peer.port, "ae_title": "PEER"}})
    report = probers.run(config.targets["up"], config.modules["echo"], 2.0)
    for index in range(metrics.PROBE_PREFIX_CACHE + 50):
        report.peer = Accepted((), 0, f"1.2.{index}", "HOSTILE")
        assert f'implementation_class_uid="1.2.{index}"'.encode() in probe_page(report)
    assert len(metrics._PROBE_PREFIXES) <= metrics.PROBE_PREFIX_CACHE
    assert len(metrics._TEMPLATES) <= metrics.PROBE_TEMPLATES


def test_a_probe_answer_past_the_template_size_is_written_whole_and_not_kept(
        peer: ScriptedPeer) -> None:
    config = make_config({"up": {"port": peer.port, "ae_title": "PEER"}})
    report = probers.run(config.targets["up"], config.modules["echo"], 2.0)
    report.peer = Accepted((), 0, "1.2.3", "V" * metrics.PROBE_TEMPLATE_LARGEST)
    text = probe_page(report)
    assert text == render_probe(report)
    assert len(text) > metrics.PROBE_TEMPLATE_LARGEST
    assert not any(template.held[1] is report.peer for template in metrics._TEMPLATES.values())


def test_probe_answers_from_a_template_follow_every_field_of_the_report(
        peer: ScriptedPeer) -> None:
    """A /probe answer is the template of its report's shape with the durations
    filled in. A field that changes the text but not the shape would make
    answers repeat an earlier probe's: every field of the report is changed
    here, one at a time, after the template of the first report is kept."""
    config = make_config({"up": {"port": peer.port, "ae_title": "PEER"}})
    base = probers.run(config.targets["up"], config.modules["store"], 2.0)
    contexts = (ContextResult(1, "1.2.840.10008.1.1", True, "1.2.840.10008.1.2", 0),)
    base.success, base.reason, base.failed_phase, base.detail = True, None, None, ""
    base.peer, base.contexts = Accepted(contexts, 16384, "1.2.3", "PEER_1"), contexts
    base.phases = {"connect": 0.001, "associate": 0.002, "dimse": 0.003, "release": 0.004}
    base.status, base.result_age, base.dns_lookup = 0, 1.5, 0.25
    other = (ContextResult(1, "1.2.840.10008.1.1", False, "", 3),)
    context = base.context
    in_context: dict[str, object] = {
        "target": dataclasses.replace(context.target, name="other", host="localhost",
                                      labels={"site": "x"}, ae_title="OTHER"),
        "module": config.modules["echo"],
        "timeout": 7.25,
        "state": context.state.__class__(),
        "deadline": Deadline(1.0),
        "started": 0.0,
        "notes": [(0.0, "a note", ())],
        "deferred": [],
    }
    changed: dict[str, object] = {
        "success": False,
        "duration": 0.125,
        "phases": {**base.phases, "dimse": 0.0105},
        "dns_lookup": 0.5,
        "reason": Reason.REFUSED,
        "failed_phase": "dimse",
        "detail": "another detail",
        "reject": (1, 1, 3),
        "abort": (2, 6),
        "status": 0xC000,
        "peer": Accepted(contexts, 16384, "1.2.3", "PEER_2"),
        "contexts": other,
        "tls_version": "TLSv1.3",
        "tls_expiry": 1_893_456_000.25,
        "result_age": None,
        "store_sent": True,
    }
    assert set(in_context) == {field.name for field in dataclasses.fields(ProbeContext)}
    assert set(changed) | {"context"} == {
        field.name for field in dataclasses.fields(ProbeReport)}
    assert probe_page(base) == render_probe(base)
    assert probe_page(base) == render_probe(base)  # from its template
    variants = [*((name, value, True) for name, value in in_context.items()),
                ("target", dataclasses.replace(context.target, tls=object()), True),
                *((name, value, False) for name, value in changed.items()),
                ("phases", {**base.phases, "tls": 0.5}, False),
                ("phases", {"connect": 0.001}, False),
                ("result_age", -0.0, False)]
    for name, value, of_context in variants:
        report = copy.copy(base)
        if of_context:
            report.context = dataclasses.replace(context, **{name: value})
        else:
            setattr(report, name, value)
        assert probe_page(report) == render_probe(report), name
        assert probe_page(report) == render_probe(report), name  # from its own template
