"""End to end: a real Prometheus loads alerts/, scrapes the exporter through
the example's service discovery, and the exporter probes a real Orthanc."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from exporter.app import Exporter
from exporter.web import server as web_server
from tests.support.configs import make_config
from tests.support.promstack import Prometheus, wait_until
from tests.support.realpeers import LOOPBACK, start_orthanc, stop

pytestmark = pytest.mark.slow  # starts real programs (see the module docstring)



def test_stopping_orthanc_makes_the_partner_alert_pending(tmp_path: Path) -> None:
    orthanc, orthanc_process = start_orthanc(tmp_path / "orthanc")
    config = make_config(
        {"skane": {"port": orthanc.dicom_port, "ae_title": orthanc.ae_title,
                   "modules": ["echo"],
                   "labels": {"site": "vaxjo", "region": "skane", "role": "partner"}}},
    )
    exporter = Exporter(config)
    server, _ = web_server.start(exporter, (LOOPBACK, 0))
    address = f"{LOOPBACK}:{server.server_address[1]}"
    prometheus = None
    try:
        prometheus = Prometheus(tmp_path, address)
        up = wait_until(lambda: prometheus.query('probe_success{target="skane"} == 1'), 30,
                        "a successful probe of Orthanc")
        assert up[0]["metric"]["module"] == "echo" and up[0]["metric"]["prober"] == "echo"
        assert not prometheus.alerts("DicomPartnerUnreachable")

        stop(orthanc_process)

        alert = wait_until(lambda: prometheus.alerts("DicomPartnerUnreachable"), 30,
                           "DicomPartnerUnreachable")[0]
        assert alert["labels"]["target"] == "skane"
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["reason"] == "refused"
        assert alert["annotations"]["summary"] == (
            "DICOM till Skåne (ORTHANC) fungerar inte från Växjö"
        )
        assert alert["annotations"]["runbook_url"] == (
            f"http://{address}/runbooks/DicomPartnerUnreachable"
        )
        with urllib.request.urlopen(alert["annotations"]["runbook_url"], timeout=5) as page:
            assert page.status == 200
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.shutdown()
        server.server_close()
        if orthanc_process.poll() is None:
            stop(orthanc_process)
