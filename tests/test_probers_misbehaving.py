"""Every failure reason, provoked for real by a peer that misbehaves.

Each case must give exactly one failed probe with its reason, within the
probe's timeout plus half a second.
"""

from __future__ import annotations

import gc
import socket
import struct
import threading
import time
import tracemalloc
import weakref
from collections.abc import Callable, Iterator

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    Verification,
)

from exporter import probers
from exporter.demo.simulated import serve
from exporter.reasons import Reason
from tests.support import pdus
from tests.support.configs import make_config
from tests.support.hostile import (
    ScriptedPeer,
    accept_association,
    accept_raw,
    answer_echo,
    answer_release,
    read_pdu,
    reject_association,
    reset,
    send_abort,
)
from tests.support.realpeers import LOOPBACK, free_port

TIMEOUT = 1.0


def run(port: int, module: str = "echo", ae_title: str = "PEER", host: str = LOOPBACK,
        timeout: float = TIMEOUT, log: bool = False):
    config = make_config({"peer": {"port": port, "ae_title": ae_title, "host": host}})
    started = time.monotonic()
    report = probers.run(config.targets["peer"], config.modules[module], timeout, log=log)
    elapsed = time.monotonic() - started
    assert elapsed < timeout + 0.5, f"probe took {elapsed:.2f}s"
    return report


def assert_failed(report, reason: Reason) -> None:
    assert report.success is False
    assert report.reason is reason, f"{report.reason} ({report.detail})"


@pytest.fixture
def scp() -> Iterator[callable]:
    servers = []

    def start(*contexts, handlers=(), ae_title="PEER", require_calling=None):
        ae = AE(ae_title=ae_title)
        ae.require_called_aet = True
        if require_calling:
            ae.require_calling_aet = require_calling
        for context in contexts or (Verification,):
            ae.add_supported_context(context)
        server = serve(ae, (LOOPBACK, 0), list(handlers))
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_closed_port_is_refused() -> None:
    assert_failed(run(free_port()), Reason.REFUSED)


def test_an_unresolvable_name_is_a_dns_failure() -> None:
    # An empty label fails in the resolver itself: no query leaves the machine.
    assert_failed(run(104, host="pacs..invalid"), Reason.DNS)


def test_a_listener_whose_backlog_is_full_gives_a_connect_timeout() -> None:
    peer = ScriptedPeer(lambda peer, conn: None, backlog=0, accept=False)
    fillers = []
    try:
        # Fill the accept queue: later SYNs are dropped, as by a silent firewall.
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((LOOPBACK, peer.port))
            fillers.append(filler)
        time.sleep(0.1)
        assert_failed(run(peer.port, module="tcp"), Reason.CONNECT_TIMEOUT)
    finally:
        for filler in fillers:
            filler.close()
        peer.close()


def test_a_peer_that_accepts_and_stays_silent_times_out_the_association() -> None:
    with ScriptedPeer(lambda peer, conn: peer.hold()) as peer:
        assert_failed(run(peer.port), Reason.ASSOCIATION_TIMEOUT)


def test_a_pdu_header_followed_by_a_stall_times_out_within_the_deadline() -> None:
    def script(peer, conn):
        read_pdu(conn)
        conn.sendall(b"\x02\x00\x00\x00\x01\x00")  # an A-ASSOCIATE-AC of 256 bytes, never sent
        peer.hold()

    with ScriptedPeer(script) as peer:
        assert_failed(run(peer.port), Reason.ASSOCIATION_TIMEOUT)


def test_a_huge_declared_pdu_length_is_a_protocol_error() -> None:
    def script(peer, conn):
        read_pdu(conn)
        conn.sendall(b"\x02\x00\xff\xff\xff\xff")
        peer.hold()

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.PROTOCOL_ERROR)
    assert "declares" in report.detail


def flood_after_echo_request(pdu: bytes, total: int) -> Callable[[ScriptedPeer, socket.socket],
                                                                    None]:
    """Accept, read the C-ECHO-RQ, then send `pdu` until `total` bytes went out."""
    def script(peer: ScriptedPeer, conn: socket.socket) -> None:
        accept_association(conn)
        read_pdu(conn)
        burst = pdu * max(1, 65536 // len(pdu))
        for _ in range(total // len(burst) + 1):
            conn.sendall(burst)
        peer.hold()
    return script


@pytest.mark.parametrize(("pdu", "bound"), [
    # command fragments that never say "last"
    (pdus.raw_p_data(b"\x00" * 65000, flags=0x01), 8 * 2**20),
    # PDUs of the largest size accepted: 1 MiB kept, the next one read, and it
    # copied once out of the read buffer (copied twice, the peak was 4.1-4.3 MiB)
    (pdus.raw_p_data(b"\x00" * ((1 << 20) - 12), flags=0x01), int(3.75 * 2**20)),
    (pdus.raw_p_data(b"\x00", flags=0x01), 8 * 2**20),  # 1-byte fragments
    (struct.pack(">BxI", 0x04, 0), 8 * 2**20),  # P-DATA-TF PDUs with no PDV at all
], ids=["64k-fragments", "1m-fragments", "1-byte-fragments", "empty-pdus"])
def test_a_response_that_never_ends_is_a_protocol_error_in_bounded_memory(pdu: bytes,
                                                                           bound: int) -> None:
    """A peer streaming non-final fragments grew one probe to 1.5-2 GiB within
    its deadline; now at most 1 MiB or 1,024 PDUs of one response are buffered."""
    with ScriptedPeer(flood_after_echo_request(pdu, 64 * 2**20)) as peer:
        tracemalloc.start()
        try:
            report = run(peer.port, timeout=5.0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert_failed(report, Reason.PROTOCOL_ERROR)
    assert "P-DATA-TF PDUs" in report.detail and "buffered" in report.detail
    assert peak < bound, f"peak {peak / 2**20:.2f} MiB"


def test_a_failed_probe_holds_nothing_that_outlives_it() -> None:
    """Its report is freed when the last reference goes, not by the cycle
    collector: a failure kept with its traceback held the probe's frames and
    read buffer (up to 1 MiB) until a full collection, or for min_interval
    in the store memory."""
    flood = pdus.raw_p_data(b"\x00" * 65000, flags=0x01)
    with ScriptedPeer(flood_after_echo_request(flood, 4 * 2**20)) as peer:
        gc.disable()
        try:
            report = run(peer.port, timeout=5.0, log=True)
            assert_failed(report, Reason.PROTOCOL_ERROR)
            assert any("failed: protocol_error" in line for line in report.context.log)
            gone = weakref.ref(report)
            del report
            assert gone() is None
        finally:
            gc.enable()


def test_a_probe_keeps_its_notes_only_when_its_log_is_asked_for() -> None:
    """Scrapes never read the log: their probes pay for no notes."""
    with ScriptedPeer(lambda peer, conn: None) as peer:
        quiet, logged = run(peer.port), run(peer.port, log=True)
    assert quiet.context.notes is None and quiet.context.log == []
    assert logged.context.log and "probe failed" in logged.context.log[-1]


def test_garbage_instead_of_dicom_is_a_protocol_error() -> None:
    def script(peer, conn):
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        peer.hold()

    with ScriptedPeer(script) as peer:
        assert_failed(run(peer.port), Reason.PROTOCOL_ERROR)


def test_a_reset_during_association_is_a_reset() -> None:
    def script(peer, conn):
        read_pdu(conn)
        reset(conn)

    with ScriptedPeer(script) as peer:
        assert_failed(run(peer.port), Reason.RESET)


def test_a_close_during_dimse_is_a_reset() -> None:
    def script(peer, conn):
        accept_association(conn)
        read_pdu(conn)
        conn.shutdown(socket.SHUT_RDWR)

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.RESET)
    assert report.peer is not None  # the association itself had been accepted


def test_a_peer_that_never_answers_release_times_out_the_release() -> None:
    def script(peer, conn):
        accept_association(conn)
        answer_echo(conn)
        peer.hold()

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.RELEASE_TIMEOUT)
    assert report.status == 0


def test_a_reject_for_another_reason_keeps_result_source_and_diagnostic() -> None:
    # Transient, by the service provider (presentation): local limit exceeded.
    with ScriptedPeer(lambda peer, conn: reject_association(conn, 2, 3, 2)) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.REJECTED_OTHER)
    assert report.reject == (2, 3, 2)


def test_a_wrong_called_ae_title_is_classified(scp) -> None:
    port = scp()
    assert_failed(run(port, ae_title="NOT_PEER"), Reason.REJECTED_CALLED_AE)


def test_an_unknown_calling_ae_title_is_classified(scp) -> None:
    port = scp(require_calling=["SOMEONE_ELSE"])
    report = run(port)
    assert_failed(report, Reason.REJECTED_CALLING_AE)
    assert report.reject == (1, 1, 3)


def test_an_a_abort_during_association_is_aborted() -> None:
    def script(peer, conn):
        read_pdu(conn)
        send_abort(conn)
        peer.hold()

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.ABORTED)
    assert report.abort == (2, 0)


def test_an_a_abort_during_dimse_is_aborted(scp) -> None:
    def abort(event):
        event.assoc.abort()
        return 0x0000

    port = scp(handlers=[(evt.EVT_C_ECHO, abort)])
    assert_failed(run(port), Reason.ABORTED)


def test_no_accepted_context_when_the_peer_lacks_verification(scp) -> None:
    port = scp(MRImageStorage)
    assert_failed(run(port), Reason.NO_ACCEPTED_CONTEXT)


def test_negotiate_names_the_sop_classes_the_peer_refused(scp) -> None:
    port = scp(Verification, MRImageStorage)
    report = run(port, module="negotiate")
    assert_failed(report, Reason.NO_ACCEPTED_CONTEXT)
    assert "CTImageStorage" in report.detail
    accepted = {cx.abstract_syntax: cx.accepted for cx in report.contexts}
    assert accepted == {CTImageStorage: False, Verification: True}


def test_negotiate_succeeds_when_the_configured_classes_are_accepted(scp) -> None:
    port = scp(Verification, CTImageStorage)
    report = run(port, module="negotiate")
    assert report.success, report.detail
    assert set(report.phases) == {"connect", "associate", "release"}


def test_a_slow_echo_answer_is_a_dimse_timeout(scp) -> None:
    release = threading.Event()

    def slow(event):
        release.wait(TIMEOUT + 1)
        return 0x0000

    port = scp(handlers=[(evt.EVT_C_ECHO, slow)])
    try:
        assert_failed(run(port), Reason.DIMSE_TIMEOUT)
    finally:
        release.set()


def test_an_echo_failure_status_is_kept(scp) -> None:
    port = scp(handlers=[(evt.EVT_C_ECHO, lambda event: 0x0122)])
    report = run(port)
    assert_failed(report, Reason.STATUS_FAILURE)
    assert report.status == 0x0122


def test_a_store_out_of_resources_status_is_a_status_failure(scp) -> None:
    port = scp(SecondaryCaptureImageStorage, handlers=[(evt.EVT_C_STORE, lambda event: 0xA700)])
    report = run(port, module="store", timeout=3)
    assert_failed(report, Reason.STATUS_FAILURE)
    assert report.status == 0xA700


def test_a_store_warning_status_is_a_status_warning(scp) -> None:
    port = scp(SecondaryCaptureImageStorage, handlers=[(evt.EVT_C_STORE, lambda event: 0xB000)])
    report = run(port, module="store", timeout=3)
    assert_failed(report, Reason.STATUS_WARNING)
    assert report.status == 0xB000


def test_a_probe_never_raises_even_when_the_prober_has_a_bug(monkeypatch) -> None:
    def broken(report):
        raise RuntimeError("bug")

    monkeypatch.setitem(probers.PROBERS, "tcp", broken)
    assert_failed(run(free_port(), module="tcp"), Reason.INTERNAL_ERROR)


def _close(conn: socket.socket, how: str) -> None:
    if how == "rst":
        reset(conn)
    else:
        conn.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("phase", ["association", "dimse", "release"])
def test_fin_and_rst_in_every_phase_are_a_reset(phase: str, how: str) -> None:
    def script(peer, conn):
        if phase == "association":
            read_pdu(conn)
            return _close(conn, how)
        accept_association(conn)
        if phase == "dimse":
            read_pdu(conn)
            return _close(conn, how)
        answer_echo(conn)
        read_pdu(conn)  # the A-RELEASE-RQ
        return _close(conn, how)

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.RESET)
    expected_phases = {"association": {"connect"}, "dimse": {"connect", "associate"},
                       "release": {"connect", "associate", "dimse"}}[phase]
    assert expected_phases <= set(report.phases)


def test_metrics_keep_answering_while_hostile_peers_hold_probes() -> None:
    from exporter.app import Exporter
    from exporter.web import server as web_server

    peers = [ScriptedPeer(lambda peer, conn: peer.hold()) for _ in range(3)]
    peers.append(ScriptedPeer(lambda peer, conn: (read_pdu(conn),
                                                  conn.sendall(b"\x02\x00\x00\x00\x01\x00"),
                                                  peer.hold())))
    config = make_config({f"hostile{i}": {"port": p.port, "ae_title": "PEER",
                                          "modules": ["echo"]} for i, p in enumerate(peers)})
    exporter = Exporter(config)
    server, _ = web_server.start(exporter, (LOOPBACK, 0))
    try:
        probes = [threading.Thread(target=exporter.probe, args=(name, "echo"))
                  for name in config.targets]
        for thread in probes:
            thread.start()
        time.sleep(0.3)
        import urllib.request

        for _ in range(5):
            started = time.monotonic()
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as answer:
                body = answer.read().decode()
            assert time.monotonic() - started < 0.5
            assert "dicom_exporter_probes_in_flight 4.0" in body
        for thread in probes:
            thread.join()
    finally:
        server.shutdown()
        server.server_close()
        for peer in peers:
            peer.close()


# -- responses that do not answer our request (issue 12, item 8) -----------------
def _answer_with(*pdus_to_send: bytes):
    def script(peer, conn):
        accept_association(conn)
        read_pdu(conn)  # our C-ECHO-RQ
        for pdu in pdus_to_send:
            conn.sendall(pdu)
        peer.hold()
    return script


@pytest.mark.parametrize(("answer", "problem"), [
    (pdus.echo_rsp(1, message_id=7), "message ID 7"),
    (pdus.store_rsp(1), "command field 0x8001"),
], ids=["wrong-message-id", "c-store-rsp"])
def test_a_response_that_is_not_an_answer_to_our_echo_is_a_protocol_error(
    answer: list[bytes], problem: str
) -> None:
    with ScriptedPeer(_answer_with(*answer)) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.PROTOCOL_ERROR)
    assert problem in report.detail
    assert report.failed_phase == "dimse"


def test_a_response_in_fragments_from_a_nagle_on_peer_waits_for_no_delayed_ack() -> None:
    """Each fragment is a whole PDU, so no read is short; yet with Nagle on
    the peer holds the next fragment until the last one is acknowledged, and
    a delayed ACK costs 40 ms a fragment. Median of ten: about 1 ms."""
    fragments = pdus.echo_rsp(1, max_pdu=30)
    assert len(fragments) >= 3

    def script(peer, conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)  # as shipped by many peers
        accept_association(conn)
        read_pdu(conn)  # our C-ECHO-RQ
        for fragment in fragments:
            conn.sendall(fragment)
        answer_release(conn)

    times = []
    with ScriptedPeer(script) as peer:
        for _ in range(10):
            report = run(peer.port)
            assert report.success, report.detail
            times.append(report.phases["dimse"])
    assert sorted(times)[5] < 0.015, times


def test_our_own_echo_request_sent_back_is_a_protocol_error() -> None:
    def script(peer, conn):
        accept_association(conn)
        _, request = read_pdu(conn)
        conn.sendall(request)
        peer.hold()

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.PROTOCOL_ERROR)
    assert "command field 0x0030" in report.detail


@pytest.mark.parametrize("max_pdu", [1, 6])
def test_a_peer_max_pdu_too_small_for_any_data_is_a_protocol_error(max_pdu: int) -> None:
    def script(peer, conn):
        accept_raw(conn, max_pdu=max_pdu)
        peer.hold()

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert_failed(report, Reason.PROTOCOL_ERROR)
    assert f"maximum PDU length {max_pdu}" in report.detail
    assert report.failed_phase == "associate"


@pytest.mark.parametrize(("name", "shown"), [
    (b"OFFIS_DCMTK_368\x00", "OFFIS_DCMTK_368"),
    (b"SEVENTEEN_CHARS_X", "SEVENTEEN_CHARS_X"),
], ids=["nul-padded", "17-characters"])
def test_implementation_names_dcmtk_accepts_are_accepted(name: bytes, shown: str) -> None:
    def script(peer, conn):
        accept_raw(conn, version_name=name)
        answer_echo(conn)
        answer_release(conn)

    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert report.success, report.detail
    assert report.peer is not None and report.peer.implementation_version_name == shown


# -- store proposes Verification too (item 5) ------------------------------------
def test_store_to_a_peer_without_the_sop_class_is_no_accepted_context(scp) -> None:
    port = scp(Verification)
    report = run(port, module="store", timeout=3)
    assert_failed(report, Reason.NO_ACCEPTED_CONTEXT)
    assert report.peer is not None, "the association itself was accepted"
    assert report.failed_phase == "associate"
    assert "SecondaryCaptureImageStorage" in report.detail


# -- the failed phase and its time (item 7) ----------------------------------------
def test_a_timed_out_phase_is_named_and_reports_the_time_spent_in_it(scp) -> None:
    release = threading.Event()
    port = scp(handlers=[(evt.EVT_C_ECHO, lambda event: (release.wait(4), 0x0000)[1])])
    try:
        report = run(port, timeout=2.0)
    finally:
        release.set()
    assert_failed(report, Reason.DIMSE_TIMEOUT)
    assert report.failed_phase == "dimse"
    # The deadline was 2 s: the echo waited for most of it, not 0 s.
    assert report.phases["dimse"] >= 1.0
    assert "release" not in report.phases


def test_an_abort_right_after_our_c_store_rq_fails_in_the_dimse_phase(scp) -> None:
    def abort(event):
        event.assoc.abort()
        return 0x0000

    port = scp(SecondaryCaptureImageStorage, handlers=[(evt.EVT_C_STORE, abort)])
    report = run(port, module="store", timeout=3)
    assert_failed(report, Reason.ABORTED)
    assert report.failed_phase == "dimse"
    assert report.store_sent and report.peer is not None


def test_a_rejection_fails_in_the_associate_phase(scp) -> None:
    port = scp()
    report = run(port, ae_title="NOT_PEER")
    assert report.failed_phase == "associate"
    assert report.phases["associate"] > 0


def _abort_after(*steps: Callable[[socket.socket], object]):
    def script(peer, conn):
        for step in steps:
            step(conn)
        send_abort(conn)
        peer.hold()
    return script


def _read(conn: socket.socket) -> None:
    read_pdu(conn)


# What the peer sends back, the function of ours made slow on it, the phase it ends.
ENDINGS = {
    "rejection": (lambda peer, conn: reject_association(conn, 2, 3, 2), "rejection",
                  "associate"),
    "bad-response": (_answer_with(*pdus.echo_rsp(1, message_id=7)), "decode_dimse_response",
                     "dimse"),
    "abort-in-associate": (_abort_after(_read), "aborted", "associate"),
    "abort-in-dimse": (_abort_after(accept_association, _read), "aborted", "dimse"),
    "abort-in-release": (_abort_after(accept_association, answer_echo, _read), "aborted",
                         "release"),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_phase_whose_answer_came_is_timed_by_the_answer_not_by_our_work_after_it(
    ending: str, monkeypatch
) -> None:
    """What ended the phase was read whole: the phase is its round trip. Our
    slow handling of it afterwards (0.3 s here) once was added on top."""
    from exporter.dicom import association

    script, slow, phase = ENDINGS[ending]
    fast = getattr(association, slow)

    def slowly(*args):
        time.sleep(0.3)
        return fast(*args)

    monkeypatch.setattr(association, slow, slowly)
    with ScriptedPeer(script) as peer:
        report = run(peer.port)
    assert report.success is False and report.failed_phase == phase
    assert 0 < report.phases[phase] < 0.2, report.phases


def test_a_refused_connection_fails_in_the_connect_phase() -> None:
    report = run(free_port())
    assert report.failed_phase == "connect"
    assert set(report.phases) == {"connect"}


@pytest.mark.parametrize("status", [0x0107, 0x0116])
def test_attribute_warnings_outside_the_b_range_are_warnings(scp, status: int) -> None:
    port = scp(SecondaryCaptureImageStorage,
               handlers=[(evt.EVT_C_STORE, lambda event: status)])
    report = run(port, module="store", timeout=3)
    assert_failed(report, Reason.STATUS_WARNING)
    assert report.status == status


# -- name resolution bounded by the deadline (item 9) ------------------------------
def test_a_resolver_that_never_answers_fails_as_dns_within_the_deadline(monkeypatch) -> None:
    # A hanging DNS server cannot run here without changing the machine's
    # resolver, so getaddrinfo itself is replaced for this one name.
    import socket as socket_module

    from exporter.dicom import transport

    answered = threading.Event()
    real = socket_module.getaddrinfo

    def hanging(host, *args, **kwargs):
        if host == "pacs.hangs.test" and not kwargs.get("flags"):  # not the literal check
            answered.wait(10)
            raise socket_module.gaierror("gave up")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(transport.socket, "getaddrinfo", hanging)
    try:
        report = run(104, host="pacs.hangs.test")
    finally:
        answered.set()
    assert_failed(report, Reason.DNS)
    assert report.failed_phase == "dns"
    assert report.dns_lookup >= 0.5 * TIMEOUT
    assert "within the deadline" in report.detail


def test_the_dns_lookup_time_is_reported_as_blackbox_does(scp) -> None:
    from exporter.metrics import render_probe

    report = run(scp())
    assert report.success, report.detail
    text = render_probe(report).decode()
    assert f"probe_dns_lookup_time_seconds {report.dns_lookup!r}" in text


# -- store memory: one real C-STORE per peer and interval (item 6) ------------------
def _store_config(port: int, tmp_path) -> str:
    import yaml

    path = tmp_path / "exporter.yml"
    path.write_text(yaml.safe_dump({
        "modules": {
            "store": {"prober": "store", "timeout": "5s", "calling_ae_title": "MON",
                      "min_interval": "1h"},
            "store_again": {"prober": "store", "timeout": "5s", "calling_ae_title": "MON",
                            "min_interval": "1h"},
        },
        "targets": {"peer": {"host": LOOPBACK, "port": port, "ae_title": "PEER",
                             "modules": ["store", "store_again"],
                             "labels": {"site": "vaxjo", "role": "partner"}}},
    }))
    return str(path)


def test_concurrent_first_stores_and_reloads_store_once_per_peer(scp, tmp_path) -> None:
    from exporter import config as config_module
    from exporter.app import Exporter

    stored = []
    port = scp(SecondaryCaptureImageStorage,
               handlers=[(evt.EVT_C_STORE, lambda event: (stored.append(1), 0x0000)[1])])
    path = _store_config(port, tmp_path)
    exporter = Exporter(config_module.load(path), path)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(exporter.probe("peer", "store")))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.success for r in reports] == [True] * 4, [r.detail for r in reports]
    assert len(stored) == 1
    assert sorted(r.result_age is not None for r in reports) == [False, True, True, True]
    for _ in range(3):
        assert exporter.reload() is None
        again = exporter.probe("peer", "store_again")  # another module, same peer
        assert again.success and again.result_age is not None and again.result_age > 0
    assert len(stored) == 1


def test_a_store_that_never_reached_the_peer_is_tried_again_at_once(tmp_path) -> None:
    from exporter import config as config_module
    from exporter.app import Exporter

    port = free_port()
    path = _store_config(port, tmp_path)
    exporter = Exporter(config_module.load(path), path)
    assert exporter.probe("peer", "store").reason is Reason.REFUSED
    stored = []
    ae = AE(ae_title="PEER")
    ae.add_supported_context(SecondaryCaptureImageStorage)
    ae.add_supported_context(Verification)
    server = serve(ae, (LOOPBACK, port), [
        (evt.EVT_C_STORE, lambda event: (stored.append(1), 0x0000)[1])])
    try:
        report = exporter.probe("peer", "store")
    finally:
        server.shutdown()
        server.server_close()
    assert report.success and report.result_age is None, report.detail
    assert len(stored) == 1
