"""Every probe against DICOM peers as they ship, each reason checked against what
the peer did.

Each peer of the catalogue in tests/support/realpeers.py is started on
127.0.0.1 (dcmtk's storescp in its documented modes, dcmqrscp, wlmscpfs, Orthanc
plain, as Debian runs it and with DICOM TLS, pynetdicom's own apps) and gets
the same probes: echo, negotiate and store of a CT object, a wrong called AE,
an unknown calling AE, an AE that may echo but not store, and for TLS peers no
client certificate. The expected outcome is what the peer is documented to
do with that request; `benchmarks/interop.py` prints the same matrix for the
docs/interoperability.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.realpeers import (
    INTEROP_PEERS,
    interop_peer,
    interop_probe,
    interop_probes_for,
    outcome,
)

pytestmark = pytest.mark.slow

OK = "ok"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EVERYTHING_OK = {
    "echo": OK, "negotiate": OK, "store": OK, "wrong called AE": OK,
    "unknown calling AE": OK, "store not permitted": OK,
}
# What each peer does: storescp takes any AE title; the --refuse, --abort-*
# and --sleep-* modes do what their names say to every association or store.
STORESCP_REFUSES = {probe: "rejected_other (associate)" for probe in EVERYTHING_OK}
STORE_ABORTED = EVERYTHING_OK | {
    "store": "aborted (dimse)", "store not permitted": "aborted (dimse)"}
STORE_HANGS = EVERYTHING_OK | {
    "store": "dimse_timeout (dimse)", "store not permitted": "dimse_timeout (dimse)"}
RELEASE_HANGS = EVERYTHING_OK | {
    "store": "release_timeout (release)", "store not permitted": "release_timeout (release)"}
# Orthanc knows our AE and STORE_DENIED_AE (echo only): it rejects others by
# calling AE, and aborts right after a C-STORE-RQ it may not accept.
ORTHANC = EVERYTHING_OK | {
    "wrong called AE": "rejected_called_ae (associate)",
    "unknown calling AE": "rejected_calling_ae (associate)",
    "store not permitted": "aborted (dimse)",
}
# Without Storage, the association is accepted and only our context refused.
NO_STORAGE = EVERYTHING_OK | {
    "negotiate": "no_accepted_context (associate)",
    "store": "no_accepted_context (associate)",
    "store not permitted": "no_accepted_context (associate)",
}
TLS_REFUSES_NO_CERTIFICATE = {"no client certificate": "tls (associate)"}
# dcmrecv checks no AE title (dcmrecv(1): -aet only names it); without
# --config-file it "will only support the Verification SOP Class" (its log).
DCMRECV_VERIFICATION_ONLY = NO_STORAGE
# A partner profile without Verification: dcmrecv (dcmtk's ASC_acknowledge-
# less path) rejects an echo's association with A-ASSOCIATE-RJ 1/1/1, "no
# reason given", while negotiate and store (which propose CT too) pass.
ECHO_PROPOSES_ONLY_VERIFICATION = ("echo", "wrong called AE", "unknown calling AE")
DCMRECV_STORAGE_ONLY = EVERYTHING_OK | {
    probe: "rejected_other (associate)" for probe in ECHO_PROPOSES_ONLY_VERIFICATION}
# The CTN's simple_storage checks the called AE title (its log: "Illegal
# service parameter (name AE Title ...)", A-ASSOCIATE-RJ 1/1/7) but neither
# the calling AE title nor any store permission.
CTN = EVERYTHING_OK | {"wrong called AE": "rejected_called_ae (associate)"}

EXPECTED: dict[str, dict[str, str]] = {
    "storescp": EVERYTHING_OK,
    "storescp TCP_NODELAY=1": EVERYTHING_OK,
    "storescp +xs": EVERYTHING_OK,
    "storescp +xi": EVERYTHING_OK,
    "storescp +xb": EVERYTHING_OK,
    "storescp +xd": EVERYTHING_OK,
    "storescp -pdu 4096": EVERYTHING_OK,
    "storescp --refuse": STORESCP_REFUSES,
    "storescp --abort-after": STORE_ABORTED,
    "storescp --abort-during": STORE_ABORTED,
    "storescp --sleep-during 4": STORE_HANGS,
    "storescp --sleep-after 4": RELEASE_HANGS,
    "storescp +tls": EVERYTHING_OK | TLS_REFUSES_NO_CERTIFICATE,
    # dcmqrscp answers an unknown *calling* AE with reason 7, "called AE
    # title not recognised" (source 1): the reason says called, the fault is
    # the calling AE. The routine text for rejected_called_ae must say so.
    "dcmqrscp": EVERYTHING_OK | {
        "wrong called AE": "rejected_called_ae (associate)",
        "unknown calling AE": "rejected_called_ae (associate)",
        "store not permitted": "rejected_called_ae (associate)",
    },
    "wlmscpfs": NO_STORAGE | {"wrong called AE": "rejected_called_ae (associate)"},
    "Orthanc": ORTHANC,
    "Orthanc TCP_NODELAY=1": ORTHANC,
    "Orthanc DICOM TLS": ORTHANC | TLS_REFUSES_NO_CERTIFICATE,
    "pynetdicom storescp": EVERYTHING_OK,
    "pynetdicom echoscp": NO_STORAGE,
    "dcmrecv": DCMRECV_VERIFICATION_ONLY,
    "dcmrecv Default": EVERYTHING_OK,
    "dcmrecv AllDICOM": EVERYTHING_OK,
    "dcmrecv StorageOnly": DCMRECV_STORAGE_ONLY,
    "dcmrecv JPEGOnly": NO_STORAGE,  # CT in JPEG Baseline only: none of ours
    "ctn simple_storage": CTN,
    # qrscp's default configuration (apps/qrscp/default.ini) checks no AE title.
    "pynetdicom qrscp": EVERYTHING_OK,
}
# Why the store's CT context was refused (PS3.8 Table 9-18): 3 the SOP class,
# 4 the transfer syntaxes; the detail and the per-context metric must say which.
REFUSED_CONTEXT = {
    "dcmrecv": 3, "wlmscpfs": 3, "pynetdicom echoscp": 3, "dcmrecv JPEGOnly": 4,
}
# The transfer syntax a peer picks from the four uncompressed ones we offer
# for the store: the object must arrive encoded the way the peer asked.
STORE_SYNTAX = {
    "storescp +xi": "1.2.840.10008.1.2",
    "storescp +xb": "1.2.840.10008.1.2.2",
    "storescp +xd": "1.2.840.10008.1.2.1.99",
    "storescp +xs": "1.2.840.10008.1.2.1",  # no JPEG offered: explicit little endian
}


def test_every_catalogue_peer_has_expectations() -> None:
    assert set(EXPECTED) == set(INTEROP_PEERS)


@pytest.mark.parametrize("peer_name", list(INTEROP_PEERS))
def test_every_probe_reports_what_the_peer_did(
    peer_name: str, tmp_path: Path, pki: Path
) -> None:
    expected = EXPECTED[peer_name]
    with interop_peer(peer_name, tmp_path, pki) as peer:
        reports = {probe: interop_probe(peer, probe, pki) for probe in interop_probes_for(peer)}
    found = {probe: outcome(report) for probe, report in reports.items()}
    assert found == expected, {p: reports[p].detail for p in found if found[p] != expected[p]}
    for probe, report in reports.items():
        if report.success:
            assert report.peer is not None and report.peer.implementation_version_name
        if not report.success and report.failed_phase is not None:
            assert report.phases.get(report.failed_phase, 0.0) > 0, (probe, report.phases)
    if peer_name in REFUSED_CONTEXT:
        code = REFUSED_CONTEXT[peer_name]
        [ct] = [cx for cx in reports["store"].contexts if cx.abstract_syntax == CT_IMAGE]
        assert not ct.accepted and ct.result == code
        assert f"(result {code})" in reports["store"].detail
    if expected.get("echo") == "rejected_other (associate)" and peer_name != "storescp --refuse":
        assert "may not offer Verification" in reports["echo"].detail
    if peer_name in STORE_SYNTAX:
        [ct] = [cx for cx in reports["store"].contexts if cx.abstract_syntax == CT_IMAGE]
        assert ct.accepted and ct.transfer_syntax == STORE_SYNTAX[peer_name]


def test_a_test_object_of_many_pdus_arrives_whole_at_the_4_kib_peer(
        tmp_path: Path, pki: Path) -> None:
    """64 KiB of pixels to storescp -pdu 4096: the data set goes in 17 and more
    P-DATA PDUs, and the file storescp wrote holds the instance pixel for pixel."""
    import pydicom

    from exporter import probers
    from exporter.dicom.testobject import synthetic_instance
    from tests.support.configs import make_config
    from tests.support.realpeers import MONITOR_AE

    with interop_peer("storescp -pdu 4096", tmp_path, pki) as peer:
        config = make_config({"peer": {"port": peer.port, "ae_title": peer.ae_title}}, {
            "store": {"prober": "store", "calling_ae_title": MONITOR_AE, "min_interval": "1ms",
                      "sop_classes": ["CTImageStorage"], "test_object_size": "64KiB"}})
        report = probers.run(config.targets["peer"], config.modules["store"], 5.0, log=True)
    assert report.success, report.detail
    assert report.peer is not None and report.peer.peer_max_pdu == 4096
    files = [path for path in tmp_path.iterdir() if path.name.startswith("CT.")]
    assert len(files) == 1, sorted(p.name for p in tmp_path.iterdir())
    stored = pydicom.dcmread(files[0])
    expected = synthetic_instance("peer", CT_IMAGE, None, 65536)
    assert (stored.Rows, stored.Columns) == (182, 182)
    assert stored.PixelData == expected.PixelData
    assert stored.PatientID == expected.PatientID
    sent = [line for line in report.context.log if "C-STORE 1." in line]
    assert int(sent[0].split(", ")[-1].split()[0]) > 16 * 4096


def test_a_tcp_probe_takes_a_fragile_peer_down_and_echo_does_not(tmp_path: Path) -> None:
    """Why docs/configuration.md warns about `tcp` on DICOM servers: the CTN's
    simple_storage (Debian's ctn) exits when a connection closes before an
    A-ASSOCIATE-RQ. Echo after echo it stays up; one tcp probe and it is gone."""
    from exporter import probers
    from tests.support.configs import make_config

    with interop_peer("ctn simple_storage", tmp_path) as peer:
        config = make_config({"peer": {"port": peer.port, "ae_title": peer.ae_title}})
        target = config.targets["peer"]
        for _ in range(3):
            assert probers.run(target, config.modules["echo"], 2.0).success
        assert probers.run(target, config.modules["tcp"], 2.0).success
        reasons = []
        for _ in range(20):  # the dying listener may still reset one in its queue
            after = probers.run(target, config.modules["echo"], 2.0)
            assert after.reason is not None, "the peer survived the tcp probe"
            reasons.append(after.reason.value)
            if after.reason.value == "refused":
                break
            time.sleep(0.1)
    assert reasons[-1] == "refused" and set(reasons) <= {"reset", "refused"}, reasons


def test_two_calling_ae_titles_on_one_orthanc_each_get_their_own_store_result(
        tmp_path: Path) -> None:
    """Orthanc knows both AE titles, lets one store (DicomAlwaysAllowStore is
    off), the other only echo. Within one min_interval, in either order, each
    store module reports its own truth, and one instance reaches the archive."""
    from exporter import config as config_module
    from exporter.app import Exporter
    from tests.support.realpeers import MONITOR_AE, STORE_DENIED_AE, start_orthanc, stop

    orthanc, process = start_orthanc(tmp_path, store_denied=(STORE_DENIED_AE,))
    try:
        for order in (("permitted", "denied"), ("denied", "permitted")):
            path = tmp_path / f"exporter-{order[0]}.yml"
            path.write_text(f"""
modules:
  permitted: {{prober: store, calling_ae_title: {MONITOR_AE}, min_interval: 1h,
              sop_classes: [CTImageStorage]}}
  denied: {{prober: store, calling_ae_title: {STORE_DENIED_AE}, min_interval: 1h,
           sop_classes: [CTImageStorage]}}
targets:
  orthanc:
    host: 127.0.0.1
    port: {orthanc.dicom_port}
    ae_title: {orthanc.ae_title}
    modules: [permitted, denied]
    labels: {{site: vaxjo, role: partner}}
""")
            exporter = Exporter(config_module.load(str(path)), str(path))
            before = len(orthanc.instances())
            for round_ in range(2):
                for module in order:
                    report = exporter.probe("orthanc", module)
                    assert (report.result_age is None) == (round_ == 0), (module, round_)
                    if module == "permitted":
                        assert report.success, report.detail
                    else:
                        assert report.reason is not None
                        assert report.reason.value == "aborted", report.detail
            assert len(orthanc.instances()) == before + 1
    finally:
        stop(process)
