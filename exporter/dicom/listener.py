"""The exporter's DICOM listener: Storage Commitment reports from configured peers, nothing else.

Started only with `--dicom.listen-address`. A peer asked for Storage
Commitment by a store probe (`verify: commit`) may send its N-EVENT-REPORT on
an association it opens to us (Orthanc always does). The listener accepts such
an association only from a peer configured for it (calling AE = a target with
a commit module, called AE = the calling AE title that module probes with),
only with the Storage Commitment Push Model context, and only N-EVENT-REPORTs
on it; it hands each report to the probe waiting for its transaction
(`dicom.commitments`).

It is a small server of its own on the pure codec, not pynetdicom's AE,
because every input of the exporter is bounded the same way and pynetdicom's
association threads are not (the probe side's reasons, `dicom.association`):
associations at once (one thread each; more are rejected as busy), one
deadline for a whole association, the largest PDU and message read, the
messages on one association, and the AE titles accepted. Whatever a peer
sends ends in a counted result (`counts`), never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from exporter.config import Config
from exporter.dicom.accept_codec import (
    ACCEPTANCE,
    RJ_BUSY,
    RJ_CALLED_AE,
    RJ_CALLING_AE,
    RJ_NO_REASON,
    AssociateRequest,
    decode_associate_rq,
    encode_associate_ac,
    encode_associate_rj,
)
from exporter.dicom.codec import (
    ABORT_BYTES,
    PDU_ABORT,
    PDU_P_DATA,
    PDU_RELEASE_RQ,
    RELEASE_RP_BYTES,
)
from exporter.dicom.commitments import Commitments
from exporter.dicom.failure import ProbeFailure
from exporter.dicom.verify_codec import (
    STORAGE_COMMITMENT,
    VERIFY_TRANSFER_SYNTAXES,
    MessageAssembler,
    commitment_result,
    encode_event_report_rsp,
    event_report_problem,
)

logger = logging.getLogger("dicom_exporter.listener")

DEFAULT_MAX_ASSOCIATIONS = 8
# One association, from TCP accept to close: a report is a few hundred bytes,
# so a peer still busy after this is stalling (or a slowloris).
ASSOCIATION_SECONDS = 10.0
# What we announce as our maximum P-DATA length, and the largest PDU of any
# kind we read: an A-ASSOCIATE-RQ is under 1 KiB, a report under 1 KiB per
# instance.
OUR_MAX_PDU = 16384
LARGEST_PDU = 65536
LARGEST_MESSAGE = 256 * 1024
MOST_FRAGMENTS = 64
MOST_MESSAGES = 16  # reports on one association
LINGER_SECONDS = 1.0  # for the peer to close after our last PDU (ARTIM)
_KNOWN_PDU_TYPES = frozenset(range(0x01, 0x08))
_HEADER = struct.Struct(">BxI")

# How an association's setup ended, the label values of the listener's counter,
# counted when it is decided: accepted (the A-ASSOCIATE-AC went out) or one of
# the refusals (before that point: rejected, too many at once, not DICOM, too
# slow, or closed by the peer).
RESULTS = ("accepted", "rejected_calling_ae", "rejected_called_ae", "rejected_context",
           "busy", "protocol_error", "timeout", "closed")
# What came on an accepted association: reports for a waiting probe, reports
# for none (late, or not ours), and anything else (refused: aborted).
MESSAGES = ("report_awaited", "report_unawaited", "refused")


@dataclass(frozen=True)
class Peers:
    """Who may send us reports: their AE titles and the AE titles they call."""

    calling: frozenset[str]
    called: frozenset[str]


def commitment_peers(config: Config) -> Peers:
    """The peers of `config`'s store modules with `verify: commit`."""
    calling, called = set(), set()
    for target in config.targets.values():
        for name in target.modules:
            module = config.modules[name]
            if module.prober == "store" and module.verify == "commit":
                calling.add(target.ae_title)
                called.add(target.probe_calling_ae or module.calling_ae_title)
    return Peers(frozenset(calling), frozenset(called))


class _Ended(Exception):
    """The association is over; `result` says how (one of RESULTS)."""

    def __init__(self, result: str, detail: str) -> None:
        super().__init__(detail)
        self.result = result


class _Connection:
    """One accepted socket, read within one deadline."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.ends = time.monotonic() + seconds
        self.accepted = False  # the A-ASSOCIATE-AC went out
        self.counted = False  # its setup's result is in the listener's counts

    def _recv_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            remaining = self.ends - time.monotonic()
            if remaining <= 0:
                raise _Ended("timeout", "association took too long")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(min(size - len(data), 65536))
            except TimeoutError:
                raise _Ended("timeout", "association took too long") from None
            except OSError as exc:
                raise _Ended("closed", f"receive failed: {exc}") from None
            if not chunk:
                raise _Ended("closed", "peer closed the connection")
            data += chunk
        return bytes(data)

    def read_pdu(self) -> tuple[int, bytes]:
        header = self._recv_exactly(6)
        pdu_type, length = _HEADER.unpack(header)
        if pdu_type not in _KNOWN_PDU_TYPES:
            raise _Ended("protocol_error", f"unknown PDU type 0x{pdu_type:02x}")
        if length > LARGEST_PDU:
            raise _Ended("protocol_error", f"PDU declares {length} bytes")
        return pdu_type, header + self._recv_exactly(length)

    def send(self, data: bytes) -> None:
        remaining = self.ends - time.monotonic()
        if remaining <= 0:
            raise _Ended("timeout", "association took too long")
        self.sock.settimeout(remaining)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise _Ended("timeout", "peer stopped reading") from None
        except OSError as exc:
            raise _Ended("closed", f"send failed: {exc}") from None

    def send_last(self, data: bytes) -> None:
        """Send our last PDU (an A-ASSOCIATE-RJ, an A-RELEASE-RP), then let the
        peer close first, as PS3.8 9.2 has the acceptor wait (ARTIM): closing
        at once can make a requester see a lost connection instead of our
        answer. Bounded by LINGER_SECONDS and the association's deadline."""
        self.send(data)  # no FIN of ours before theirs: the requester closes first
        ends = min(self.ends, time.monotonic() + LINGER_SECONDS)
        discarded = 0
        while discarded < LARGEST_PDU and (remaining := ends - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(4096)
            except OSError:  # a timeout too: the peer did not close in time
                return
            if not chunk:
                return
            discarded += len(chunk)

    def send_briefly(self, data: bytes) -> None:
        """Best effort (an A-ABORT, a busy rejection): never waits long, never raises."""
        with contextlib.suppress(OSError):
            self.sock.settimeout(0.05)
            self.sock.sendall(data)


class DicomListener:
    """The listening socket, its accepting thread and one thread per association."""

    def __init__(self, host: str, port: int, commitments: Commitments,
                 peers: Callable[[], Peers],
                 max_associations: int = DEFAULT_MAX_ASSOCIATIONS,
                 association_seconds: float = ASSOCIATION_SECONDS) -> None:
        self.commitments = commitments
        self.peers = peers
        self.max_associations = max_associations
        self.association_seconds = association_seconds
        self.counts = dict.fromkeys(RESULTS, 0)
        self.messages = dict.fromkeys(MESSAGES, 0)
        self._slots = threading.BoundedSemaphore(max_associations)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: set[threading.Thread] = set()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.listen(max_associations * 2)
        except OSError:
            self.sock.close()
            raise
        self.address = self.sock.getsockname()[:2]
        self._accepting = threading.Thread(target=self._accept_loop, name="dicom-listener",
                                           daemon=True)

    @property
    def port(self) -> int:
        return int(self.address[1])

    def start(self) -> DicomListener:
        self.commitments.listening = True
        self._accepting.start()
        return self

    def stop(self, wait: float = 1.0) -> None:
        """Stop accepting, wait up to `wait` for associations in progress."""
        self._stopping.set()
        self.commitments.listening = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        if self._accepting.is_alive():
            self._accepting.join(wait)
        ends = time.monotonic() + wait
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, ends - time.monotonic()))

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        """(associations by result, messages by result) so far."""
        with self._lock:
            return dict(self.counts), dict(self.messages)

    def in_progress(self) -> int:
        """Associations being served now (at most max_associations)."""
        with self._lock:
            return len(self._threads)

    def _count(self, result: str) -> None:
        with self._lock:
            self.counts[result] += 1

    def _count_message(self, result: str) -> None:
        with self._lock:
            self.messages[result] += 1

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self.sock.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.01)  # out of file descriptors: let others close theirs
                continue
            if not self._slots.acquire(blocking=False):
                _Connection(sock, 0.05).send_briefly(encode_associate_rj(*RJ_BUSY))
                sock.close()
                self._count("busy")
                continue
            thread = threading.Thread(target=self._serve, args=(sock,),
                                      name="dicom-listener-association", daemon=True)
            with self._lock:
                self._threads.add(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        connection = _Connection(sock, self.association_seconds)
        try:
            result = self._associate(connection)
        except _Ended as ended:
            result = ended.result
            if result == "protocol_error":
                connection.send_briefly(ABORT_BYTES)
            logger.debug("listener association ended", extra={"fields": {
                "result": result, "detail": str(ended)}})
        except Exception:  # a bug of ours: counted, logged once, never kills the listener
            logger.exception("listener association failed")
            result = "protocol_error"
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self._slots.release()
            with self._lock:
                self._threads.discard(threading.current_thread())
        if not connection.counted:
            self._count(result)
        elif connection.accepted and result == "protocol_error":
            self._count_message("refused")

    def _associate(self, connection: _Connection) -> str:
        pdu_type, raw = connection.read_pdu()
        if pdu_type != 0x01:
            raise _Ended("protocol_error", f"expected A-ASSOCIATE-RQ, got 0x{pdu_type:02x}")
        try:
            request = decode_associate_rq(raw)
        except ProbeFailure as failure:
            raise _Ended("protocol_error", failure.detail) from None
        peers = self.peers()
        if request.calling_ae not in peers.calling:
            return self._refuse(connection, "rejected_calling_ae", RJ_CALLING_AE)
        if request.called_ae not in peers.called:
            return self._refuse(connection, "rejected_called_ae", RJ_CALLED_AE)
        results = _context_results(request)
        if not any(result == ACCEPTANCE for result, _ in results.values()):
            return self._refuse(connection, "rejected_context", RJ_NO_REASON)
        connection.send(encode_associate_ac(request, results, OUR_MAX_PDU))
        connection.accepted = connection.counted = True
        self._count("accepted")
        self._receive_reports(connection, request, results)
        return "accepted"

    def _refuse(self, connection: _Connection, result: str,
                rejection: tuple[int, int, int]) -> str:
        """Count the refusal when decided (the peer may read /metrics at once), then answer."""
        self._count(result)
        connection.counted = True
        connection.send_last(encode_associate_rj(*rejection))
        return result

    def _receive_reports(self, connection: _Connection, request: AssociateRequest,
                         results: dict[int, tuple[int, str]]) -> None:
        peer_max = request.max_pdu
        for _ in range(MOST_MESSAGES):
            assembler = MessageAssembler(LARGEST_MESSAGE, MOST_FRAGMENTS)
            while True:
                pdu_type, raw = connection.read_pdu()
                if pdu_type == PDU_RELEASE_RQ:
                    connection.send_last(RELEASE_RP_BYTES)
                    return
                if pdu_type == PDU_ABORT:
                    return
                if pdu_type != PDU_P_DATA:
                    raise _Ended("protocol_error", f"unexpected PDU type 0x{pdu_type:02x}")
                try:
                    if assembler.add(raw):
                        break
                except ProbeFailure as failure:
                    raise _Ended("protocol_error", failure.detail) from None
            try:
                message = assembler.message()
            except ProbeFailure as failure:
                raise _Ended("protocol_error", failure.detail) from None
            context_ids = set(message.command.context_ids)
            if len(context_ids) != 1 or next(iter(context_ids)) not in results or \
                    results[next(iter(context_ids))][0] != ACCEPTANCE:
                raise _Ended("protocol_error", "message on a context we did not accept")
            context_id = next(iter(context_ids))
            problem = event_report_problem(message)
            if problem:
                raise _Ended("protocol_error", f"not a Storage Commitment report: {problem}")
            try:
                report = commitment_result(message, results[context_id][1])
            except ProbeFailure as failure:
                connection.send(encode_event_report_rsp(message, context_id, peer_max, 0x0110))
                self._count_message("refused")
                logger.warning("listener received a bad commitment report", extra={"fields": {
                    "calling_ae": request.calling_ae, "detail": failure.detail}})
                continue
            delivered = self.commitments.deliver(report, request.calling_ae)
            self._count_message("report_awaited" if delivered else "report_unawaited")
            logger.debug("commitment report", extra={"fields": {
                "calling_ae": request.calling_ae, "transaction": report.transaction_uid,
                "awaited": delivered}})
            connection.send(encode_event_report_rsp(message, context_id, peer_max))
        raise _Ended("protocol_error", f"more than {MOST_MESSAGES} messages on one association")


def _context_results(request: AssociateRequest) -> dict[int, tuple[int, str]]:
    """Storage Commitment with a syntax we read is accepted; everything else refused."""
    results: dict[int, tuple[int, str]] = {}
    for cx in request.contexts:
        if cx.abstract_syntax != STORAGE_COMMITMENT:
            results[cx.context_id] = (3, "")
            continue
        chosen = next((ts for ts in cx.transfer_syntaxes if ts in VERIFY_TRANSFER_SYNTAXES), "")
        results[cx.context_id] = (ACCEPTANCE, chosen) if chosen else (4, "")
    return results
