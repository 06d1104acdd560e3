"""The DICOM listener: Storage Commitment reports from configured peers, and nothing else.

Hardening like the probe side's: garbage, oversized PDUs, silence, floods,
wrong AE titles and other DIMSE messages each end in a counted refusal within
the listener's bounds, the listener keeps serving, and nothing logs a
traceback. Peers are pynetdicom (a real requester) and raw sockets.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE, build_role
from pynetdicom.dimse_messages import C_ECHO_RQ
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.pdu import A_ASSOCIATE_RJ, P_DATA_TF
from pynetdicom.sop_class import StorageCommitmentPushModel, Verification

from exporter.dicom.codec import encode_associate_rq
from exporter.dicom.commitments import Commitments
from exporter.dicom.listener import DicomListener, Peers, commitment_peers
from exporter.dicom.verify_codec import EXPLICIT_LE, STORAGE_COMMITMENT_INSTANCE
from tests.support.configs import make_config
from tests.support.hostile import read_pdu
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port

PEER, US = "ORTHANC", "KRONOBERG_MON"
TRANSACTION = "2.25.4711"


def started(association_seconds: float = 10.0) -> DicomListener:
    """A listener for PEER calling US; the deadline far beyond any loaded machine's
    association setup unless a test is about the deadline."""
    return DicomListener(LOOPBACK, 0, Commitments(),
                         lambda: Peers(frozenset({PEER}), frozenset({US})),
                         max_associations=2, association_seconds=association_seconds).start()


@pytest.fixture
def listener() -> Iterator[DicomListener]:
    running = started()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def no_traceback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="dicom_exporter.listener")
    yield
    assert not [r for r in caplog.records if r.name.startswith("dicom_exporter")
                and (r.exc_info or r.levelno >= logging.ERROR)]


def report_dataset(transaction: str = TRANSACTION) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    info = Dataset()
    info.TransactionUID = transaction
    info.ReferencedSOPSequence = Sequence([item])
    return info


def send_report(port: int, calling: str = PEER, called: str = US,
                contexts=(StorageCommitmentPushModel,), transaction: str = TRANSACTION):
    """A pynetdicom requester sending one report as Orthanc does (SCP role): the
    association, or None when it was not established."""
    ae = AE(ae_title=calling)
    for context in contexts:
        ae.add_requested_context(context)
    role = build_role(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    assoc = ae.associate(LOOPBACK, port, ae_title=called, ext_neg=[role])
    if not assoc.is_established:
        return assoc, None
    status, _ = assoc.send_n_event_report(report_dataset(transaction), 1,
                                          StorageCommitmentPushModel,
                                          STORAGE_COMMITMENT_INSTANCE)
    assoc.release()
    return assoc, status


def settled(listener: DicomListener, result: str, count: int = 1,
            *more: str) -> dict[str, int]:
    """The counts once `result` (plus any of `more`) reached `count` (the
    association's thread ends after the peer sees our answer)."""
    ends = time.monotonic() + 2
    while time.monotonic() < ends:
        counts, messages = listener.snapshot()
        merged = {**counts, **messages}
        if sum(merged[name] for name in (result, *more)) >= count:
            return merged
        time.sleep(0.01)
    raise AssertionError(f"{result} never reached {count}: {listener.snapshot()}")


def test_a_report_from_a_configured_peer_reaches_the_waiting_probe(
        listener: DicomListener) -> None:
    with listener.commitments.expect(TRANSACTION) as waiter:
        _, status = send_report(listener.port)
        assert waiter is not None and waiter.result is not None
        assert waiter.result.committed == {"1.2.3.4"} and waiter.from_ae == PEER
    assert status.Status == 0x0000
    counts = settled(listener, "report_awaited")
    assert counts["accepted"] == 1


def test_a_report_nobody_waits_for_is_answered_and_counted(listener: DicomListener) -> None:
    _, status = send_report(listener.port, transaction="2.25.999")
    assert status.Status == 0x0000
    assert settled(listener, "report_unawaited")["report_awaited"] == 0


@pytest.mark.parametrize("calling, called, result", [
    ("STRANGER", US, "rejected_calling_ae"),
    (PEER, "SOMEONE_ELSE", "rejected_called_ae"),
])
def test_an_unconfigured_ae_title_is_rejected(listener: DicomListener, calling: str,
                                              called: str, result: str) -> None:
    assoc, _ = send_report(listener.port, calling, called)
    assert assoc.is_rejected
    assert settled(listener, result)["accepted"] == 0


def test_anything_but_storage_commitment_is_rejected(listener: DicomListener) -> None:
    assoc, _ = send_report(listener.port, contexts=(Verification,))
    assert assoc.is_rejected
    assert settled(listener, "rejected_context")["accepted"] == 0


def test_a_c_echo_on_the_accepted_context_is_aborted(listener: DicomListener) -> None:
    with socket.create_connection((LOOPBACK, listener.port), timeout=2) as sock:
        sock.sendall(encode_associate_rq(
            PEER, US, ((1, StorageCommitmentPushModel, (EXPLICIT_LE,)),)))
        assert read_pdu(sock)[0] == 0x02
        echo = C_ECHO()
        echo.MessageID = 1
        echo.AffectedSOPClassUID = Verification
        message = C_ECHO_RQ()
        message.primitive_to_message(echo)
        for primitive in message.encode_msg(1, 16384):
            pdu = P_DATA_TF()
            pdu.from_primitive(primitive)
            sock.sendall(pdu.encode())
        assert read_pdu(sock)[0] == 0x07  # A-ABORT
    assert settled(listener, "refused")["report_awaited"] == 0


def test_reports_past_the_bound_of_one_association_are_aborted() -> None:
    """16 reports per association (MOST_MESSAGES); the 17th ends it."""
    listener = started(association_seconds=30)
    try:
        _past_the_bound(listener)
    finally:
        listener.stop()


def _past_the_bound(listener: DicomListener) -> None:
    ae = AE(ae_title=PEER)
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate(LOOPBACK, listener.port, ae_title=US)
    statuses = []
    for index in range(17):
        status, _ = assoc.send_n_event_report(report_dataset(f"2.25.{index}"), 1,
                                              StorageCommitmentPushModel,
                                              STORAGE_COMMITMENT_INSTANCE)
        statuses.append(getattr(status, "Status", None))
    assoc.abort()  # ours was aborted already: this only ends pynetdicom's side
    assert statuses[:16] == [0x0000] * 16 and statuses[16] is None  # no answer: aborted
    counts = settled(listener, "refused")
    assert counts["report_unawaited"] == 16 and counts["accepted"] == 1


def test_a_pdu_past_the_bound_after_acceptance_is_refused_unread(
        listener: DicomListener) -> None:
    with socket.create_connection((LOOPBACK, listener.port), timeout=2) as sock:
        sock.sendall(encode_associate_rq(
            PEER, US, ((1, StorageCommitmentPushModel, (EXPLICIT_LE,)),)))
        assert read_pdu(sock)[0] == 0x02
        sock.sendall(b"\x04\x00" + (65537).to_bytes(4, "big") + bytes(1000))
        assert read_pdu(sock)[0] == 0x07  # A-ABORT, the other 64 KiB never read
    assert settled(listener, "refused")["accepted"] == 1


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello
    b"\x01\x00\x7f\xff\xff\xff",  # an A-ASSOCIATE-RQ declaring 2 GiB
    b"\x01\x00\x00\x00\x00\x10" + bytes(16),  # a truncated request
])
def test_garbage_is_refused_without_reading_it_all(listener: DicomListener,
                                                   garbage: bytes) -> None:
    with socket.create_connection((LOOPBACK, listener.port), timeout=2) as sock:
        sock.sendall(garbage)
        sock.settimeout(2)
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
    counts = settled(listener, "protocol_error")
    assert counts["accepted"] == 0


def test_a_silent_peer_is_cut_off_at_the_association_deadline() -> None:
    listener = started(association_seconds=0.5)
    try:
        began = time.monotonic()
        with socket.create_connection((LOOPBACK, listener.port), timeout=3) as sock:
            sock.sendall(b"\x01\x00")  # two bytes of a header, then nothing
            assert sock.recv(10) == b""  # closed by the listener
        assert time.monotonic() - began < 1.5
        settled(listener, "timeout")
    finally:
        listener.stop()


def test_a_flood_is_turned_away_and_the_listener_still_serves() -> None:
    # Silent connections hold both slots for as long as the flood lasts, however slow
    # the machine: the deadline is far beyond it and the test closes them itself.
    listener = started(association_seconds=30)
    try:
        _flood(listener)
    finally:
        listener.stop()


def _flood(listener: DicomListener) -> None:
    silent = [socket.create_connection((LOOPBACK, listener.port)) for _ in range(2)]
    ends = time.monotonic() + 5
    while listener.in_progress() < 2 and time.monotonic() < ends:
        time.sleep(0.01)  # both taken by their threads
    assert listener.in_progress() == 2
    turned_away = []
    for _ in range(20):
        with socket.create_connection((LOOPBACK, listener.port), timeout=2) as sock:
            pdu_type, raw = read_pdu(sock)
            rejection = A_ASSOCIATE_RJ()
            rejection.decode(raw)
            turned_away.append((pdu_type, rejection.result, rejection.source))
    assert set(turned_away) == {(0x03, 2, 3)}  # transient, local limit exceeded
    for sock in silent:
        sock.close()
    settled(listener, "closed", 2, "timeout")  # closed by them, or cut off first
    with listener.commitments.expect(TRANSACTION) as waiter:
        send_report(listener.port)
        assert waiter is not None and waiter.result is not None
    assert settled(listener, "busy", 20)["accepted"] == 1


def test_the_peers_come_from_the_commit_modules_of_the_config() -> None:
    config = make_config(
        {"orthanc": {"port": 104, "ae_title": "ORTHANC", "modules": ["commit", "plain"]},
         "other": {"port": 105, "ae_title": "OTHER", "modules": ["plain"]}},
        {"commit": {"prober": "store", "verify": "commit", "calling_ae_title": US},
         "plain": {"prober": "store", "calling_ae_title": "PLAIN_AE"}})
    assert commitment_peers(config) == Peers(frozenset({"ORTHANC"}), frozenset({US}))


def test_stop_closes_the_port_at_once() -> None:
    running = DicomListener(LOOPBACK, 0, Commitments(),
                            lambda: Peers(frozenset(), frozenset())).start()
    port = running.port
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=1).close()
    assert running.commitments.listening is False


# -- serve --dicom.listen-address: the listener as a real part of the exporter -------
def _commit_config(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "modules": {"commit": {"prober": "store", "verify": "commit", "calling_ae_title": US}},
        "targets": {"orthanc": {"host": LOOPBACK, "port": 104, "ae_title": PEER,
                                "modules": ["commit"],
                                "labels": {"site": "vaxjo", "role": "partner"}}},
    }))
    return path


def _serve(config: Path, *flags: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        # Debug: each association's end and why is in stderr if a test fails.
        [sys.executable, "-m", "exporter", "--log.level=debug", "serve", "--config.file",
         str(config), "--web.listen-address", f"{LOOPBACK}:{port}", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, port


def test_serve_runs_the_listener_only_when_asked_and_counts_in_metrics(
        tmp_path: Path) -> None:
    config = _commit_config(tmp_path / "c.yml")
    dicom_port = free_port()
    process, port = _serve(config, "--dicom.listen-address", f"{LOOPBACK}:{dicom_port}")
    try:
        wait_for_port(port, process)
        wait_for_port(dicom_port, process)
        _, status = send_report(dicom_port)  # nobody waits for it: answered, counted
        rejected, _ = send_report(dicom_port, calling="STRANGER")
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics") as answer:
            page = answer.read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert status is not None and status.Status == 0, stderr
    # Failed once in ~100 runs under load (not rejected: why unknown); the
    # requester's own state and the listener's debug lines say which side.
    assert rejected.is_rejected, (f"established={rejected.is_established} "
                                  f"aborted={rejected.is_aborted}\n{stderr}")
    # wait_for_port's own connect counts as one closed before any A-ASSOCIATE-RQ
    assert 'dicom_exporter_listener_associations_total{result="accepted"} 1.0' in page
    assert ('dicom_exporter_listener_associations_total{result="rejected_calling_ae"} 1.0'
            in page)
    assert 'dicom_exporter_listener_messages_total{result="report_unawaited"} 1.0' in page
    assert "DICOM listener for Storage Commitment reports" in stderr
    assert process.returncode == 0


def test_serve_without_the_listener_warns_a_commit_config_and_listens_nowhere(
        tmp_path: Path) -> None:
    process, port = _serve(_commit_config(tmp_path / "c.yml"))
    try:
        wait_for_port(port, process)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics") as answer:
            page = answer.read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert "dicom_exporter_listener" not in page
    assert "verify: commit modules without a DICOM listener" in stderr


def test_a_dicom_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.create_server((LOOPBACK, 0)) as taken:
        taken_port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "serve", "--config.file",
             str(_commit_config(tmp_path / "c.yml")), "--web.listen-address", f"{LOOPBACK}:0",
             "--dicom.listen-address", f"{LOOPBACK}:{taken_port}"],
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "level=error" in lines[0], result.stderr
    assert f"cannot listen for DICOM on {LOOPBACK}:{taken_port}: Address already in use" \
        in lines[0]
