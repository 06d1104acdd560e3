"""DICOM over TLS against a real TLS peer: dcmtk's storescp with certificates
the test makes, its default (non-downgrading BCP 195) profile, client
certificates required."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporter.config import ConfigError
from exporter.metrics import render_probe
from exporter.reasons import Reason
from tests.support.configs import make_config
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
    assert "probe_dicom_tls_peer_certificate_expiry_seconds" in text
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


def test_a_tls_block_with_missing_files_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config({"peer": {"port": 104, "ae_title": "P", "tls": {
            "ca_file": str(tmp_path / "nope.crt"), "cert_file": str(tmp_path / "c.crt")}}})
    assert caught.value.problems == [
        f"test.yml: targets.peer.tls.ca_file: {tmp_path / 'nope.crt'} does not exist",
        f"test.yml: targets.peer.tls.cert_file: {tmp_path / 'c.crt'} does not exist",
        "test.yml: targets.peer.tls: cert_file and key_file go together",
    ]
