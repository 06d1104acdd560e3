"""Causes that name the real fault (issue 28, item 3), provoked for real by
peers in this process: the reason stays in the closed set, the detail and the
per-context metric say what to fix."""

from __future__ import annotations

import socket

import pytest
from pynetdicom import AE
from pynetdicom.dimse_messages import DIMSEMessage
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import CTImageStorage, Verification

from exporter import probers
from exporter.demo.simulated import serve
from exporter.metrics import probe_page
from exporter.reasons import Reason
from tests.support import pdus
from tests.support.configs import make_config
from tests.support.hostile import ScriptedPeer, accept_association, read_pdu, reject_association
from tests.support.realpeers import LOOPBACK

IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"


def probe(port: int, module: str, modules: dict | None = None, timeout: float = 2.0):
    config = make_config({"peer": {"port": port, "ae_title": "PEER"}}, modules)
    return probers.run(config.targets["peer"], config.modules[module], timeout)


def test_no_reason_after_proposing_only_verification_says_the_peer_may_lack_it() -> None:
    """dcmrecv with a storage-only profile answers an echo so (A-ASSOCIATE-RJ
    1/1/1), and so does storescp --refuse to everyone: the reason stays
    rejected_other, the detail names both."""
    with ScriptedPeer(lambda peer, conn: reject_association(conn, 1, 1, 1)) as peer:
        echo = probe(peer.port, "echo")
        negotiate = probe(peer.port, "negotiate")
    assert echo.reason is Reason.REJECTED_OTHER, echo.detail
    assert "may not offer Verification" in echo.detail and echo.reject == (1, 1, 1)
    assert "refuses every association" in echo.detail
    assert 'probe_dicom_association_reject_info{diagnostic="1",result="1",source="1"} 1.0' \
        in probe_page(echo).decode()
    # Proposing more than Verification, the same answer says nothing of Verification.
    assert negotiate.reason is Reason.REJECTED_OTHER, negotiate.detail
    assert "Verification" not in negotiate.detail


@pytest.mark.parametrize(("supported", "code", "words"), [
    ((Verification,), 3, "SOP class (abstract syntax) is not supported"),
    ((Verification, CTImageStorage), 4, "none of the proposed transfer syntaxes"),
])
def test_a_refused_context_says_whether_the_sop_class_or_the_syntax_was_refused(
        supported: tuple, code: int, words: str) -> None:
    ae = AE(ae_title="PEER")
    for sop_class in supported:
        ae.add_supported_context(sop_class, [IMPLICIT] if sop_class is CTImageStorage else None)
    server = serve(ae, (LOOPBACK, 0))
    modules = {
        "negotiate": {"prober": "negotiate", "timeout": "2s", "sop_classes": ["CTImageStorage"],
                      "transfer_syntaxes": ["ExplicitVRLittleEndian"]},
        "store": {"prober": "store", "timeout": "2s", "sop_classes": ["CTImageStorage"],
                  "transfer_syntaxes": ["ExplicitVRLittleEndian"], "min_interval": "1ms"},
    }
    try:
        reports = [probe(server.server_address[1], name, modules) for name in modules]
    finally:
        server.shutdown()
        server.server_close()
    for report in reports:
        assert report.reason is Reason.NO_ACCEPTED_CONTEXT, report.detail
        assert words in report.detail and f"(result {code})" in report.detail
        page = probe_page(report).decode()
        assert (f'probe_dicom_presentation_context_result{{sop_class="CTImageStorage"}} '
                f"{code}.0") in page
        assert 'probe_dicom_presentation_context_result{sop_class="Verification"} 0.0' in page


def test_a_calling_ae_rejection_mentions_the_peers_host_check() -> None:
    with ScriptedPeer(lambda peer, conn: reject_association(conn, 1, 1, 3)) as peer:
        report = probe(peer.port, "echo")
    assert report.reason is Reason.REJECTED_CALLING_AE
    assert "not from this address" in report.detail and "host" in report.detail


def _store_then_ignore_release(peer: ScriptedPeer, conn: socket.socket) -> None:
    accept_association(conn)
    message = DIMSEMessage()
    context_id = 1
    while True:
        _, raw = read_pdu(conn)
        pdu = P_DATA_TF()
        pdu.decode(raw)
        context_id = pdu.presentation_data_value_items[0].presentation_context_id
        if message.decode_msg(pdu.to_primitive()):
            break
    command = message.command_set
    for answer in pdus.store_rsp(context_id, 0x0000, sop_class=command.AffectedSOPClassUID,
                                 sop_instance=command.AffectedSOPInstanceUID):
        conn.sendall(answer)
    read_pdu(conn)  # the A-RELEASE-RQ, never answered
    peer.hold()


def test_a_release_problem_after_a_successful_store_says_it_was_stored() -> None:
    with ScriptedPeer(_store_then_ignore_release) as peer:
        report = probe(peer.port, "store", timeout=1.0)
    assert report.reason is Reason.RELEASE_TIMEOUT, report.detail
    assert report.status == 0x0000 and report.failed_phase == "release"
    assert "the instance was stored before this (C-STORE status 0x0000)" in report.detail
