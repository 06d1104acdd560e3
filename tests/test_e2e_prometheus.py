"""End to end: a real Prometheus loads alerts/, scrapes the exporter through
the example's service discovery, and the exporter probes a real Orthanc."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from exporter import http
from exporter.app import Exporter
from tests.conftest import (
    LOOPBACK,
    free_port,
    make_config,
    require,
    start_orthanc,
    stop,
    wait_for_port,
)

ROOT = Path(__file__).parent.parent


def prometheus_config(exporter_address: str) -> dict:
    """examples/prometheus.yml, on loopback, at one-second intervals."""
    document = yaml.safe_load((ROOT / "examples" / "prometheus.yml").read_text())
    document["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    document["rule_files"] = [str(ROOT / "alerts" / "dicom.rules.yml")]
    del document["alerting"]
    text = yaml.safe_dump(document).replace("dicom-exporter.vaxjo.invalid:10104", exporter_address)
    assert ".invalid" not in text
    return yaml.safe_load(text)


def api(base: str, path: str, **params: str) -> dict:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)["data"]


def ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def wait_until(check: Callable[[], object], timeout: float, what: str) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_stopping_orthanc_makes_the_partner_alert_pending(tmp_path: Path) -> None:
    orthanc, orthanc_process = start_orthanc(tmp_path / "orthanc")
    config = make_config(
        {"skane": {"port": orthanc.dicom_port, "ae_title": orthanc.ae_title,
                   "modules": ["echo"],
                   "labels": {"site": "vaxjo", "region": "skane", "role": "partner"}}},
    )
    exporter = Exporter(config)
    server, _ = http.start(exporter, (LOOPBACK, 0))
    address = f"{LOOPBACK}:{server.server_address[1]}"
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(address)))
    prometheus = subprocess.Popen(
        [require("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address={LOOPBACK}:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_port(port, prometheus)
        wait_until(lambda: ready(base), 30, "Prometheus to be ready")

        def probe_value() -> list:
            return api(base, "/api/v1/query", query='probe_success{target="skane"}')["result"]

        up = wait_until(lambda: [r for r in probe_value() if r["value"][1] == "1"], 30,
                        "a successful probe of Orthanc")
        assert up[0]["metric"]["module"] == "echo" and up[0]["metric"]["prober"] == "echo"
        assert not [a for a in api(base, "/api/v1/alerts")["alerts"]
                    if a["labels"]["alertname"] == "DicomPartnerUnreachable"]

        stop(orthanc_process)

        def partner_alert() -> list:
            return [a for a in api(base, "/api/v1/alerts")["alerts"]
                    if a["labels"]["alertname"] == "DicomPartnerUnreachable"
                    and a["state"] in ("pending", "firing")]

        alert = wait_until(partner_alert, 30, "DicomPartnerUnreachable")[0]
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
        stop(prometheus)
        server.shutdown()
        server.server_close()
        if orthanc_process.poll() is None:
            stop(orthanc_process)
