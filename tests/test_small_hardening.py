"""Issue 30, item 6: the smaller defects, each as an attack that must not work:
Expect: 100-continue answered, a duplicated or unasked-for C-ECHO-RSP is a
protocol error, repeated query parameters are a 400, and every answer says
nosniff."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time

import pytest
from pynetdicom.pdu import P_DATA_TF

from exporter import probers
from exporter.reasons import Reason
from exporter.web import server as web_server
from tests.support import pdus
from tests.support.configs import make_config
from tests.support.hostile import (
    ScriptedPeer,
    accept_association,
    answer_release,
    read_pdu,
)
from tests.support.realpeers import LOOPBACK
from tests.support.served import served_exporter, silent_peer  # noqa: F401 (fixtures)


def _exchange(server: web_server.Server, request: bytes) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_expect_100_continue_is_answered_at_once(served: web_server.Server) -> None:
    """curl's POST /-/reload waited a second for the 100 Continue that never came."""
    with socket.create_connection(served.server_address[:2], timeout=10) as sock:
        sock.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        started = time.monotonic()
        interim = sock.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert time.monotonic() - started < 0.5
        sock.sendall(b"{}")
        final = b""
        while chunk := sock.recv(65536):
            final += chunk
    assert final.startswith(b"HTTP/1.1 400 ")  # built-in config: nothing to reload


@pytest.mark.parametrize("query", ["target=peer&target=other&module=tcp",
                                   "target=peer&module=tcp&module=echo",
                                   "target=peer&module=tcp&debug=true&debug=false"])
def test_a_repeated_query_parameter_is_a_400(served: web_server.Server, query: str) -> None:
    """target=a&target=b silently probed b."""
    answer = _exchange(served, f"GET /probe?{query} HTTP/1.1\r\nHost: x\r\n"
                               f"Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400 ") and b"more than once" in answer
    assert served.exporter.stats.snapshot().series[("peer", "tcp")].count == 0


@pytest.mark.parametrize("request_bytes", [
    b"GET /status.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /runbooks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"PUT /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"BROKEN\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
])
def test_every_answer_says_nosniff(served: web_server.Server, request_bytes: bytes) -> None:
    """/status.json carries label values chosen by configs."""
    head = _exchange(served, request_bytes).partition(b"\r\n\r\n")[0]
    assert b"\r\nX-Content-Type-Options: nosniff" in head, head
    assert head.count(b"X-Content-Type-Options") == 1


def _echo_twice(peer: ScriptedPeer, conn: socket.socket) -> None:
    accept_association(conn)
    _, raw = read_pdu(conn)
    pdata = P_DATA_TF()
    pdata.decode(raw)
    context_id = pdata.presentation_data_value_items[0].presentation_context_id
    for _ in range(2):  # the response, and the same again
        for pdu in pdus.echo_rsp(context_id):
            conn.sendall(pdu)
    answer_release(conn)


def test_a_duplicated_echo_response_is_a_protocol_error() -> None:
    """It counted as success."""
    with ScriptedPeer(_echo_twice) as peer:
        config = make_config({"peer": {"port": peer.port, "ae_title": "PEER"}})
        report = probers.run(config.targets["peer"], config.modules["echo"], 5.0)
    assert not report.success and report.reason is Reason.PROTOCOL_ERROR, report.detail


def test_a_peers_rejection_logged_by_pynetdicom_is_our_format_and_not_an_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    """pynetdicom's own `error` lines for a peer's A-ASSOCIATE-RJ reached our log
    as errors: the peer's doing is a warning here, in our format."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    from exporter import logs
    from tests.support.hostile import reject_association

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, threading.excepthook, sys.excepthook)
    chosen = dict(logs._current)
    with ScriptedPeer(lambda p, conn: (reject_association(conn, 1, 1, 3), p.hold())) as rejecting:
        try:
            logs.setup("info", "json")
            ae = AE(ae_title="KRONOBERG_MON")
            ae.add_requested_context(Verification)
            association = ae.associate(LOOPBACK, rejecting.port, ae_title="PEER")
            rejected = association.is_rejected
            lines = capsys.readouterr().err.strip().splitlines()
        finally:
            root.handlers[:], _, threading.excepthook, sys.excepthook = saved
            root.setLevel(saved[1])
            logs._current.update(chosen)
    assert rejected, lines
    records = [json.loads(line) for line in lines]  # every line ours: JSON
    theirs = [r for r in records if r["logger"].startswith("pynetdicom")]
    assert theirs, lines
    assert all(r["level"] != "error" for r in theirs), theirs
    assert any("Rejected" in r["msg"] for r in theirs), theirs
