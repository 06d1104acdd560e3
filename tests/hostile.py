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

from pynetdicom.dimse_messages import C_ECHO_RSP
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import A_ABORT, A_ASSOCIATE, MaximumLengthNotification

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
    request = A_ASSOCIATE_RQ()
    request.decode(raw)
    primitive = request.to_primitive()
    results = []
    for cx in primitive.presentation_context_definition_list:
        cx.result = 0
        cx.transfer_syntax = [cx.transfer_syntax[0]]
        results.append(cx)
    answer = A_ASSOCIATE()
    answer.application_context_name = primitive.application_context_name
    answer.calling_ae_title = primitive.calling_ae_title
    answer.called_ae_title = primitive.called_ae_title
    answer.result = 0
    answer.presentation_context_definition_results_list = results
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = 16384
    answer.user_information = [max_length]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(answer)
    conn.sendall(pdu.encode())


def reject_association(conn: socket.socket, result: int, source: int, reason: int) -> None:
    read_pdu(conn)
    primitive = A_ASSOCIATE()
    primitive.result = result
    primitive.result_source = source
    primitive.diagnostic = reason
    pdu = A_ASSOCIATE_RJ()
    pdu.from_primitive(primitive)
    conn.sendall(pdu.encode())


def answer_echo(conn: socket.socket, status: int = 0x0000) -> None:
    _, raw = read_pdu(conn)
    pdata = P_DATA_TF()
    pdata.decode(raw)
    context_id = pdata.presentation_data_value_items[0].presentation_context_id
    response = C_ECHO()
    response.MessageIDBeingRespondedTo = 1
    response.AffectedSOPClassUID = "1.2.840.10008.1.1"
    response.Status = status
    message = C_ECHO_RSP()
    message.primitive_to_message(response)
    for item in message.encode_msg(context_id, 16384):
        pdu = P_DATA_TF()
        pdu.from_primitive(item)
        conn.sendall(pdu.encode())


def send_abort(conn: socket.socket) -> None:
    primitive = A_ABORT()
    primitive.abort_source = 2
    pdu = A_ABORT_RQ()
    pdu.from_primitive(primitive)
    conn.sendall(pdu.encode())


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
            with self._lock:
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
