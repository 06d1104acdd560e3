"""Issue 30, item 2: clients that never read their answers cannot hold workers.
An answer the socket cannot take at once is parked on the event loop; one
client's connections and parked bytes are bounded; healthy requests keep
their latency. (The timing goal is the HTTP benchmark's non-reading row;
these bounds are loose enough for a loaded test machine.)"""

from __future__ import annotations

import http.client as httpclient
import socket
import statistics
import time

from exporter.app import Exporter
from exporter.web import server as web_server
from exporter.web.connections import Limits
from tests.support.configs import make_config
from tests.support.hostile import ScriptedPeer
from tests.support.realpeers import LOOPBACK
from tests.support.served import silent_peer  # noqa: F401 (fixture)

PIPELINED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 50


def _exporter(peer: ScriptedPeer, others: int = 0) -> Exporter:
    """`others`: more targets, for a /metrics page of some size."""
    targets = {"peer": {"port": peer.port, "ae_title": "PEER", "modules": ["tcp", "echo"]}}
    targets |= {f"other{index:03d}": {"port": peer.port, "ae_title": "PEER"}
                for index in range(others)}
    return Exporter(make_config(targets))


def non_reader(server: web_server.Server, request: bytes = PIPELINED,
               buffer: int = 1024) -> socket.socket:
    """A client with a tiny receive buffer that sends its requests and never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    sock.connect(server.server_address[:2])
    sock.sendall(request)
    return sock


def timed_get(server: web_server.Server, path: str) -> tuple[int, float]:
    host, port = server.server_address[:2]
    started = time.perf_counter()
    connection = httpclient.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        return answer.status, time.perf_counter() - started
    finally:
        connection.close()


def _served(peer: ScriptedPeer, limits: Limits | None = None, others: int = 0
            ) -> web_server.Server:
    return web_server.start(_exporter(peer, others), (LOOPBACK, 0), limits=limits)[0]


def test_300_clients_that_never_read_hold_no_worker(peer: ScriptedPeer) -> None:
    """The issue's attack: 300 connections each pipelining 50 GET /metrics with a
    tiny receive buffer, never reading. Threads went 3 -> 74 and every healthy
    request timed out for the whole write timeout."""
    # A write timeout longer than the test: parked answers stay parked throughout.
    server = _served(peer, Limits(write_timeout=120), others=20)
    stuck: list[socket.socket] = []
    try:
        for _ in range(300):
            stuck.append(non_reader(server))
        # Answering the burst takes threads while it renders (a few pages a
        # connection fit the socket); then every connection has its answer parked
        # (or was shed past the client's parked bytes) and no thread stays behind
        # a write (each did for the 10 s write timeout).
        deadline = time.monotonic() + 60
        while len(server.loop._writing) + server.loop.shed < 300 or server.loop.threads > 4:
            assert time.monotonic() < deadline, (len(server.loop._writing),
                                                 server.loop.shed, server.loop.threads)
            time.sleep(0.05)
        latencies = []
        for _ in range(20):
            status, took = timed_get(server, "/probe?target=peer&module=tcp")
            assert status == 200
            latencies.append(took)
        assert max(latencies) < 1.0, latencies
        assert statistics.median(latencies) < 0.25, latencies
        assert server.loop.threads <= 8, server.loop.threads
        assert len(server.loop._writing) >= 100  # still parked: nothing waits on them
    finally:
        for sock in stuck:
            sock.close()
        server.shutdown()
        server.server_close()


def test_one_clients_parked_answers_are_bounded_in_bytes(peer: ScriptedPeer) -> None:
    cap = 2 * 1024 * 1024
    server = _served(peer, Limits(max_queued_per_client=cap))
    body = b"x" * (3 * cap // 4)  # more than the socket takes: most of it is parked
    server.extra_endpoints["/big"] = lambda handler, method: handler.reply(200, body)
    stuck = []
    try:
        for _ in range(8):
            stuck.append(non_reader(server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"))
        deadline = time.monotonic() + 10
        while server.loop.shed < 5:
            assert time.monotonic() < deadline, server.loop.shed
            time.sleep(0.02)
        with server.loop._lock:
            assert sum(server.loop._queued.values()) <= cap
            assert len(server.loop._writing) <= 2
        assert timed_get(server, "/-/healthy")[0] == 200
    finally:
        for sock in stuck:
            sock.close()
        server.shutdown()
        server.server_close()


def test_one_client_cannot_take_every_connection(peer: ScriptedPeer) -> None:
    server = _served(peer, Limits(max_connections_per_client=10))
    idle = []
    try:
        for _ in range(30):
            idle.append(socket.create_connection(server.server_address[:2], timeout=10))
        assert timed_get(server, "/-/healthy")[0] == 200
        with server.loop._lock:
            assert server.loop.open_connections <= 10
        assert server.loop.shed >= 20
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()


def test_a_parked_answer_to_a_slow_reader_still_arrives_whole_then_the_next(
        peer: ScriptedPeer) -> None:
    """Parking is for the stuck, not a cut: a reader that comes late gets the
    whole answer and then the pipelined one behind it, in order."""
    server = _served(peer)
    body = bytes(range(256)) * 8192  # 2 MiB
    server.extra_endpoints["/big"] = lambda handler, method: handler.reply(200, body)
    try:
        sock = non_reader(server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                          buffer=65536)
        time.sleep(0.3)
        assert len(server.loop._writing) == 1
        data = b""
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            data += chunk
        first, _, rest = data.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200") and rest[:len(body)] == body
        assert rest[len(body):].startswith(b"HTTP/1.1 200") and rest.endswith(b"Healthy\n")
    finally:
        server.shutdown()
        server.server_close()


def test_an_unchanged_metrics_page_is_rendered_once(peer: ScriptedPeer) -> None:
    """300 clients asking at once rendered 300 pages of 2 MB at 500 targets: a
    page is reused while nothing changed, and a probe (or reload) changes it."""
    server = _served(peer)
    try:
        pages = server.pages
        first = pages.get()
        assert pages.get() is first and pages.get(gzipped=True) is pages.get(gzipped=True)
        assert timed_get(server, "/probe?target=peer&module=tcp")[0] == 200
        second = pages.get()
        assert second is not first and b'target="peer"' in second
        time.sleep(pages.max_age)
        assert pages.get() is not second  # the process figures in it age too
    finally:
        server.shutdown()
        server.server_close()
