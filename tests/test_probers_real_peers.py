"""The probers against real DICOM servers: Orthanc and dcmtk's storescp."""

from __future__ import annotations

import statistics
import threading
from pathlib import Path

import pytest
import yaml

from exporter import config as config_module
from exporter import probers
from exporter.app import Exporter
from exporter.dicom.codec import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from exporter.dicom.testobject import PATIENT_ID, PATIENT_NAME
from exporter.reasons import Reason
from tests.support.configs import make_config
from tests.support.realpeers import (
    LOOPBACK,
    MONITOR_AE,
    STORE_DENIED_AE,
    Orthanc,
    interop_peer,
    storescp_peer,
)

pytestmark = pytest.mark.slow  # starts real programs (see the module docstring)


def probe(port: int, ae_title: str, module: str, calling: str | None = None):
    modules = None
    if calling is not None:
        modules = {module: {"prober": module, "timeout": "3s", "calling_ae_title": calling}}
    config = make_config({"peer": {"port": port, "ae_title": ae_title}}, modules)
    return probers.run(config.targets["peer"], config.modules[module], 3.0)


@pytest.mark.parametrize("module", ["tcp", "echo", "negotiate", "store"])
def test_every_prober_succeeds_against_orthanc(orthanc: Orthanc, module: str) -> None:
    report = probe(orthanc.dicom_port, orthanc.ae_title, module)
    assert report.success, report.detail
    assert report.reason is None
    assert report.phases["connect"] > 0


def test_echo_against_orthanc_times_every_phase(orthanc: Orthanc) -> None:
    report = probe(orthanc.dicom_port, orthanc.ae_title, "echo")
    assert set(report.phases) == {"connect", "associate", "dimse", "release"}
    assert report.status == 0x0000
    assert sum(report.phases.values()) <= report.duration
    assert report.peer is not None and report.peer.implementation_version_name


def test_orthanc_keeps_the_synthetic_object_in_one_test_study(orthanc: Orthanc) -> None:
    import json
    import urllib.request

    before = set(orthanc.instances())
    first = probe(orthanc.dicom_port, orthanc.ae_title, "store")
    second = probe(orthanc.dicom_port, orthanc.ae_title, "store")
    assert first.success and second.success
    new = set(orthanc.instances()) - before
    assert len(new) == 2
    studies = set()
    for instance in new:
        url = f"http://127.0.0.1:{orthanc.http_port}/instances/{instance}/simplified-tags"
        with urllib.request.urlopen(url) as answer:
            tags = json.load(answer)
        assert tags["PatientName"] == PATIENT_NAME
        assert tags["PatientID"] == PATIENT_ID
        assert "SYNTETISKT" in tags["StudyDescription"]
        studies.add(tags["StudyInstanceUID"])
    assert len(studies) == 1


def test_orthanc_rejects_an_unknown_calling_ae(orthanc: Orthanc) -> None:
    report = probe(orthanc.dicom_port, orthanc.ae_title, "echo", calling="STRANGER")
    assert report.reason is Reason.REJECTED_CALLING_AE, report.detail
    assert report.reject is not None and report.reject[1:] == (1, 3)


def test_orthanc_rejects_a_wrong_called_ae(orthanc: Orthanc) -> None:
    report = probe(orthanc.dicom_port, "NOT_ORTHANC", "echo")
    assert report.reason is Reason.REJECTED_CALLED_AE, report.detail


@pytest.mark.parametrize("module", ["echo", "negotiate", "store"])
def test_every_dicom_prober_succeeds_against_dcmtk_storescp(storescp, module: str) -> None:
    port, out = storescp
    report = probe(port, "STORESCP", module)
    assert report.success, report.detail
    if module == "store":
        assert any(out.iterdir()), "storescp wrote no file"



# -- our delayed ACK must not be measured as the peer's latency (item 1) ---------
def echo_dimse_median(port: int, ae_title: str, count: int = 15) -> float:
    config = make_config({"peer": {"port": port, "ae_title": ae_title}})
    times = []
    for _ in range(count):
        report = probers.run(config.targets["peer"], config.modules["echo"], 3.0)
        assert report.success, report.detail
        times.append(report.phases["dimse"])
    return statistics.median(times)


@pytest.mark.parametrize("peer_name", ["storescp", "Orthanc"])
def test_echo_against_a_nagle_on_peer_is_not_slowed_by_our_delayed_ack(
    peer_name: str, tmp_path: Path
) -> None:
    """Started as shipped (no TCP_NODELAY): without TCP_QUICKACK before every read
    the median is about 42 ms; the margin is wide so load cannot fail it."""
    with interop_peer(peer_name, tmp_path) as peer:
        assert echo_dimse_median(peer.port, peer.ae_title) < 0.015


# -- who we say we are (item 9) ---------------------------------------------------
def test_peers_log_our_own_implementation_not_the_library(tmp_path: Path) -> None:
    with storescp_peer("-d")(tmp_path, None) as peer:
        report = probe(peer.port, peer.ae_title, "echo")
    assert report.success, report.detail
    log = (tmp_path / "peer.log").read_text(errors="replace")
    assert f"Their Implementation Version Name: {IMPLEMENTATION_VERSION_NAME}" in log
    assert f"Their Implementation Class UID:    {IMPLEMENTATION_CLASS_UID}" in log
    assert "PYNETDICOM" not in log


# -- an abort right after our C-STORE-RQ is a permission matter (item 7) -----------
def test_orthanc_refusing_our_store_on_permission_aborts_in_the_dimse_phase(
    orthanc: Orthanc
) -> None:
    echo = probe(orthanc.dicom_port, orthanc.ae_title, "echo", calling=STORE_DENIED_AE)
    assert echo.success, echo.detail  # the AE is known and may echo
    report = probe(orthanc.dicom_port, orthanc.ae_title, "store", calling=STORE_DENIED_AE)
    assert report.reason is Reason.ABORTED, report.detail
    assert report.failed_phase == "dimse"
    assert report.store_sent and report.peer is not None
    assert report.phases["dimse"] > 0


# -- min_interval holds: one real C-STORE per peer (item 6) ----------------------------
def test_orthanc_keeps_one_instance_across_concurrent_first_stores_and_reloads(
    orthanc: Orthanc, tmp_path: Path
) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(yaml.safe_dump({
        "modules": {"store": {"prober": "store", "timeout": "5s", "min_interval": "1h",
                              "calling_ae_title": MONITOR_AE}},
        "targets": {"orthanc": {"host": LOOPBACK, "port": orthanc.dicom_port,
                                "ae_title": orthanc.ae_title, "modules": ["store"],
                                "labels": {"site": "vaxjo", "role": "partner"}}},
    }))
    exporter = Exporter(config_module.load(str(path)), str(path))
    before = set(orthanc.instances())
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(exporter.probe("orthanc", "store")))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [report.success for report in reports] == [True] * 4, [r.detail for r in reports]
    assert len(set(orthanc.instances()) - before) == 1
    assert exporter.reload() is None  # the same file again
    again = exporter.probe("orthanc", "store")
    assert again.success and again.result_age is not None and again.result_age > 0
    assert len(set(orthanc.instances()) - before) == 1
