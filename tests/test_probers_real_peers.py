"""The probers against real DICOM servers: Orthanc and dcmtk's storescp."""

from __future__ import annotations

import pytest

from exporter import probers
from exporter.dicom.testobject import PATIENT_ID, PATIENT_NAME
from exporter.reasons import Reason
from tests.support.configs import make_config
from tests.support.realpeers import Orthanc

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

