"""Raw-socket peers that misbehave on purpose, for the failure reasons.

Each ScriptedPeer listens on 127.0.0.1 and runs a script on every accepted
connection in its own thread. Scripts answer with PDUs encoded by
pynetdicom's own classes where they answer DICOM at all, so what a probe
meets is what a broken or hostile peer really sends.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

from pynetdicom.pdu import A_ASSOCIATE_RQ, P_DATA_TF

from tests.support import pdus

LOOPBACK = "127.0.0.1"
Script = Callable[["ScriptedPeer", socket.socket], None]


def read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    header = _read_exact(conn, 6)
    pdu_type, length = struct.unpack(">BxI", header)
    return pdu_type, header + _read_exact(conn, length)


def _read_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def accept_association(conn: socket.socket) -> None:
    """Read the A-ASSOCIATE-RQ and accept every context with its first syntax."""
    _, raw = read_pdu(conn)
    conn.sendall(pdus.associate_ac(raw))


def accept_raw(conn: socket.socket, **fields: object) -> None:
    """Accept every context with its first syntax in a hand-built A-ASSOCIATE-AC.

    `fields` go to pdus.raw_associate_ac, to send what pynetdicom's own
    classes would refuse to build (a max PDU of 1, a 17-character name).
    """
    _, raw = read_pdu(conn)
    request = A_ASSOCIATE_RQ()
    request.decode(raw)
    contexts = [(cx.context_id or 0, 0, str(cx.transfer_syntax[0]))
                for cx in request.to_primitive().presentation_context_definition_list]
    conn.sendall(pdus.raw_associate_ac(contexts, **fields))  # type: ignore[arg-type]


def reject_association(conn: socket.socket, result: int, source: int, reason: int) -> None:
    read_pdu(conn)
    conn.sendall(pdus.associate_rj(result, source, reason))


def answer_echo(conn: socket.socket, status: int = 0x0000, message_id: int = 1) -> None:
    _, raw = read_pdu(conn)
    pdata = P_DATA_TF()
    pdata.decode(raw)
    context_id = pdata.presentation_data_value_items[0].presentation_context_id
    assert context_id is not None, "a P-DATA-TF item always names its context"
    for pdu in pdus.echo_rsp(context_id, status, message_id=message_id):
        conn.sendall(pdu)


def answer_release(conn: socket.socket) -> None:
    read_pdu(conn)
    conn.sendall(pdus.release_rp())


def send_abort(conn: socket.socket) -> None:
    conn.sendall(pdus.abort(source=2))


def reset(conn: socket.socket) -> None:
    """Close with an RST instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class ScriptedPeer:
    def __init__(self, script: Script, backlog: int = 16, accept: bool = True) -> None:
        self.script = script
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(backlog)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        # Live connections and their threads only: a long benchmark must not
        # count the peer's own bookkeeping as the exporter's memory.
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        if accept:
            self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
            self._acceptor.start()

    def _accept_loop(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            with self._lock:  # started under the lock: close() never joins an unstarted one
                self._connections.add(conn)
                self._threads.add(thread)
                thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.script(self, conn)
        except OSError:
            pass
        finally:
            conn.close()
            with self._lock:
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())

    def join_connections(self, timeout: float) -> None:
        """Wait until every connection's script has finished."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=timeout)

    def hold(self) -> None:
        """Keep the connection open and silent until the peer is closed."""
        self._stop.wait(30)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            connections, threads = list(self._connections), list(self._threads)
        for conn in connections:
            try:
                conn.close()
            except OSError:
                pass
        self.listener.close()
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> ScriptedPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
