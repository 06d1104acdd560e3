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
    if peer_name in STORE_SYNTAX:
        [ct] = [cx for cx in reports["store"].contexts if cx.abstract_syntax == CT_IMAGE]
        assert ct.accepted and ct.transfer_syntax == STORE_SYNTAX[peer_name]
