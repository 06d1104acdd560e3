"""DICOM over TLS against a real TLS peer: dcmtk's storescp with certificates
the test makes, its default (non-downgrading BCP 195) profile, client
certificates required."""

from __future__ import annotations

import socket
import ssl
import statistics
import time
from pathlib import Path

import pytest

from exporter import probers
from exporter.config import ConfigError
from exporter.metrics import render_probe
from exporter.reasons import Reason
from tests.support import pdus
from tests.support.configs import make_config
from tests.support.hostile import ScriptedPeer, accept_association, answer_release, read_pdu
from tests.support.pki import tls_probe


@pytest.mark.slow
@pytest.mark.parametrize("module", ["echo", "negotiate", "store"])
def test_probes_succeed_over_tls_with_a_client_certificate(pki, tls_storescp, module) -> None:
    report = tls_probe(pki, tls_storescp, module)
    assert report.success, report.detail
    assert report.phases["tls"] > 0
    assert report.tls_version in ("TLSv1.2", "TLSv1.3")
    assert report.tls_expiry is not None and report.tls_expiry > time.time() + 86400
    text = render_probe(report).decode()
    assert f'probe_dicom_tls_version_info{{version="{report.tls_version}"}} 1.0' in text
    assert "probe_ssl_earliest_cert_expiry" in text
    assert 'probe_dicom_phase_duration_seconds{phase="tls"}' in text


@pytest.mark.slow
def test_a_certificate_from_another_ca_is_a_tls_failure(pki, tls_storescp) -> None:
    started = time.monotonic()
    report = tls_probe(pki, tls_storescp, ca="other")
    assert report.reason is Reason.TLS, report.detail
    assert "certificate" in report.detail
    assert time.monotonic() - started < 3.5


@pytest.mark.slow
def test_a_missing_client_certificate_is_a_tls_failure(pki, tls_storescp) -> None:
    # Under TLS 1.3 the server refuses our (missing) certificate after the
    # handshake has completed on our side: the alert arrives on the first read.
    report = tls_probe(pki, tls_storescp, client=False)
    assert report.reason is Reason.TLS, report.detail
    assert report.success is False


@pytest.mark.slow
def test_tls_towards_a_plain_dicom_port_is_a_tls_failure(pki, storescp) -> None:
    port, _ = storescp
    report = tls_probe(pki, port)
    assert report.reason is Reason.TLS, report.detail


@pytest.mark.slow
def test_plain_dicom_towards_a_tls_port_fails_cleanly(pki, tls_storescp) -> None:
    report = tls_probe(pki, tls_storescp, tls=False)
    assert report.success is False
    assert report.reason in (Reason.RESET, Reason.PROTOCOL_ERROR, Reason.ASSOCIATION_TIMEOUT)


@pytest.mark.slow
def test_a_tls_1_3_peer_with_nagle_on_waits_for_no_delayed_ack(pki) -> None:
    """TLS 1.3 sends its session tickets after the handshake, so a read can
    bring records that hold no data: the wait that follows must still send our
    ACK at once, or a peer with Nagle on holds its answer about 40 ms."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.minimum_version = ssl.TLSVersion.TLSv1_3

    def script(peer, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)  # as many peers ship
        with context.wrap_socket(conn, server_side=True) as tls:
            accept_association(tls)
            read_pdu(tls)  # our C-ECHO-RQ
            for pdu in pdus.echo_rsp(1):
                tls.sendall(pdu)
            answer_release(tls)
            peer.hold()

    settings = {"ca_file": str(pki / "ca.crt"), "server_name": "localhost",
                "cert_file": str(pki / "client.crt"), "key_file": str(pki / "client.key")}
    phases: dict[str, list[float]] = {}
    with ScriptedPeer(script) as peer:
        config = make_config({"peer": {"port": peer.port, "ae_title": "PEER", "tls": settings}})
        for _ in range(7):
            report = probers.run(config.targets["peer"], config.modules["echo"], 3.0)
            assert report.success and report.tls_version == "TLSv1.3", report.detail
            for name, seconds in report.phases.items():
                phases.setdefault(name, []).append(seconds)
    slowest = max(statistics.median(times) for times in phases.values())
    assert slowest < 0.015, phases


def test_a_tls_file_name_the_system_cannot_look_up_is_a_config_error(tmp_path: Path) -> None:
    """is_file() raises for these instead of answering: a name longer than the
    system allows, one with a NUL, one longer than any path."""
    long_name = str(tmp_path / ("x" * 300))
    with pytest.raises(ConfigError) as caught:
        make_config({"peer": {"port": 104, "ae_title": "P", "tls": {
            "ca_file": long_name, "cert_file": "a\x00b", "key_file": "k" * 5000}}})
    problems = caught.value.problems
    assert problems[0] == f"test.yml: targets.peer.tls.ca_file: {long_name}: File name too long"
    assert problems[1] == "test.yml: targets.peer.tls.cert_file: a\\x00b does not exist"
    assert problems[2].startswith("test.yml: targets.peer.tls.key_file: 'kkk")
    assert problems[2].endswith("is longer than any file path (4096)")
    assert all("\n" not in problem for problem in problems)


def test_a_tls_block_with_missing_files_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config({"peer": {"port": 104, "ae_title": "P", "tls": {
            "ca_file": str(tmp_path / "nope.crt"), "cert_file": str(tmp_path / "c.crt")}}})
    assert caught.value.problems == [
        f"test.yml: targets.peer.tls.ca_file: {tmp_path / 'nope.crt'} does not exist",
        f"test.yml: targets.peer.tls.cert_file: {tmp_path / 'c.crt'} does not exist",
        "test.yml: targets.peer.tls: cert_file and key_file go together",
    ]
