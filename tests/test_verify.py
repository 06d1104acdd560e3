"""A store module's `verify: find | commit`, against peers that keep the object and
peers that answer success and keep nothing.

The peers that keep nothing are pynetdicom SCPs in-process (fast tests): the
C-STORE is answered 0x0000 and dropped, a C-FIND finds nothing, a Storage
Commitment request is answered honestly (failed), on the same association
or on a new one to our listener. Orthanc keeps what it gets and answers both
(slow tests: an external program); it sends its commitment report on a new
association to the AE in its DicomModalities, here our listener on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    SecondaryCaptureImageStorage,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from exporter import probers
from exporter.demo.simulated import serve
from exporter.dicom.listener import DicomListener, commitment_peers
from exporter.probers.memory import ProberState
from exporter.reasons import Reason
from tests.support.configs import make_config
from tests.support.realpeers import (
    LOOPBACK,
    MONITOR_AE,
    free_port,
    interop_peer,
    start_orthanc,
    stop,
)

PEER_AE = "FORGETFUL"
MODULES = {
    "find": {"prober": "store", "timeout": "3s", "calling_ae_title": MONITOR_AE,
             "min_interval": "1ms", "verify": "find"},
    "commit": {"prober": "store", "timeout": "3s", "calling_ae_title": MONITOR_AE,
               "min_interval": "1ms", "verify": "commit"},
    "short_commit": {"prober": "store", "timeout": "1s", "calling_ae_title": MONITOR_AE,
                     "min_interval": "1ms", "verify": "commit"},
}
FAILED = 0x0112  # No such object instance (PS3.4 J.3.3.1.1)


def _report_dataset(action: Dataset, committed: bool) -> Dataset:
    """The report an honest peer sends: what it holds, i.e. nothing when forgetful."""
    info = Dataset()
    info.TransactionUID = action.TransactionUID
    items = []
    for ref in action.ReferencedSOPSequence:
        item = Dataset()
        item.ReferencedSOPClassUID = ref.ReferencedSOPClassUID
        item.ReferencedSOPInstanceUID = ref.ReferencedSOPInstanceUID
        if not committed:
            item.FailureReason = FAILED
        items.append(item)
    if committed:
        info.ReferencedSOPSequence = Sequence(items)
    else:
        info.FailedSOPSequence = Sequence(items)
    return info


class Forgetful:
    """A pynetdicom SCP that answers C-STORE with success and keeps nothing.

    `find_status`: the final C-FIND status (0 = success, no match). `report`:
    "same" sends the commitment report on the association from inside the
    N-ACTION handler, "new" on a new association to `listener_port`, "never"
    sends none. `commit_all` reports every instance committed (a liar).
    """

    def __init__(self, report: str = "same", find_status: int = 0x0000,
                 find_context: bool = True, commit_all: bool = False,
                 abort_find: bool = False, find_matches: int = 0) -> None:
        self.report, self.find_status, self.commit_all = report, find_status, commit_all
        self.abort_find, self.find_matches = abort_find, find_matches
        self.listener_port = 0
        self.stored = 0
        self.ae = AE(ae_title=PEER_AE)
        for context in (SecondaryCaptureImageStorage, Verification, StorageCommitmentPushModel):
            self.ae.add_supported_context(context)
        if find_context:
            self.ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        self.threads: list[threading.Thread] = []
        self.server = serve(self.ae, (LOOPBACK, 0), [
            (evt.EVT_C_STORE, self._store), (evt.EVT_C_FIND, self._find),
            (evt.EVT_N_ACTION, self._action)])
        self.port = self.server.server_address[1]

    def _store(self, event: evt.Event) -> int:
        self.stored += 1
        return 0x0000

    def _find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        if self.abort_find:
            event.assoc.abort()
            return
        for _ in range(self.find_matches):  # a peer streaming answers to a one-instance query
            match = Dataset()
            match.QueryRetrieveLevel = "IMAGE"
            match.SOPInstanceUID = event.identifier.SOPInstanceUID
            yield 0xFF00, match
        yield self.find_status, None

    def _action(self, event: evt.Event) -> tuple[int, None]:
        action = event.action_information
        dataset = _report_dataset(action, self.commit_all)
        if self.report == "same":
            event.assoc.send_n_event_report(dataset, 2 if not self.commit_all else 1,
                                            StorageCommitmentPushModel,
                                            "1.2.840.10008.1.20.1.1")
        elif self.report == "new":
            thread = threading.Thread(target=self._report_elsewhere, args=(dataset,))
            self.threads.append(thread)
            thread.start()
        return 0x0000, None

    def _report_elsewhere(self, dataset: Dataset) -> None:
        time.sleep(0.05)  # as Orthanc does: after its N-ACTION-RSP, from a job
        ae = AE(ae_title=PEER_AE)
        ae.add_requested_context(StorageCommitmentPushModel)
        role = build_role(StorageCommitmentPushModel, scu_role=False, scp_role=True)
        assoc = ae.associate(LOOPBACK, self.listener_port, ae_title=MONITOR_AE, ext_neg=[role])
        if assoc.is_established:
            assoc.send_n_event_report(dataset, 1 if self.commit_all else 2,
                                      StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
            assoc.release()

    def close(self) -> None:
        self.server.shutdown()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def forgetful() -> Iterator[callable]:
    peers: list[Forgetful] = []

    def start(**options: object) -> Forgetful:
        peer = Forgetful(**options)  # type: ignore[arg-type]
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.close()


def probe(port: int, module: str, state: ProberState | None = None, ae_title: str = PEER_AE):
    config = make_config({"peer": {"port": port, "ae_title": ae_title}}, MODULES)
    return probers.run(config.targets["peer"], config.modules[module],
                       config.modules[module].timeout, state or ProberState(), log=True)


def listening(state: ProberState, port: int, ae_title: str = PEER_AE) -> DicomListener:
    config = make_config({"peer": {"port": port, "ae_title": ae_title}}, MODULES)
    return DicomListener(LOOPBACK, 0, state.commitments,
                         lambda: commitment_peers(config)).start()


def assert_failed(report, reason: Reason, phase: str) -> None:
    assert report.success is False, report.context.log
    assert report.reason is reason, f"{report.reason}: {report.detail}"
    assert report.failed_phase == phase
    assert report.phases.get(phase, 0) > 0


# -- verify: find --------------------------------------------------------------
def test_find_after_a_store_the_peer_dropped_is_not_found(forgetful) -> None:
    peer = forgetful()
    report = probe(peer.port, "find")
    assert peer.stored == 1
    assert_failed(report, Reason.NOT_FOUND_AFTER_STORE, "query")
    assert report.status == 0x0000  # the C-STORE's: it said success
    assert "released" in "\n".join(report.context.log)  # politely: the peer broke no protocol


def test_a_peer_without_study_root_find_refuses_the_query(forgetful) -> None:
    report = probe(forgetful(find_context=False).port, "find")
    assert_failed(report, Reason.QUERY_REFUSED, "associate")
    assert "did not accept Study Root C-FIND" in report.detail


def test_a_c_find_failure_status_is_query_refused(forgetful) -> None:
    report = probe(forgetful(find_status=0xC000).port, "find")
    assert_failed(report, Reason.QUERY_REFUSED, "query")
    assert report.status == 0xC000


def test_an_abort_as_the_answer_to_c_find_is_query_refused(forgetful) -> None:
    report = probe(forgetful(abort_find=True).port, "find")
    assert_failed(report, Reason.QUERY_REFUSED, "query")
    assert report.abort is not None


def test_a_peer_streaming_matches_is_cut_off_as_a_protocol_error(forgetful) -> None:
    report = probe(forgetful(find_matches=40).port, "find")
    assert_failed(report, Reason.PROTOCOL_ERROR, "query")
    assert "more than 16 C-FIND matches" in report.detail


# -- verify: commit --------------------------------------------------------------
def test_commit_reported_failed_on_the_same_association_is_not_committed(forgetful) -> None:
    peer = forgetful(report="same")
    report = probe(peer.port, "commit")
    assert_failed(report, Reason.NOT_COMMITTED, "commit")
    assert "failure reason 0x0112" in report.detail


def test_commit_reported_on_the_same_association_succeeds_without_a_listener(
        forgetful) -> None:
    report = probe(forgetful(report="same", commit_all=True).port, "commit")
    assert report.success, report.detail
    assert "committed (report via the association)" in "\n".join(report.context.log)


def test_commit_reported_failed_to_our_listener_is_not_committed(forgetful) -> None:
    peer = forgetful(report="new")
    state = ProberState()
    listener = listening(state, peer.port)
    peer.listener_port = listener.port
    try:
        report = probe(peer.port, "commit", state)
    finally:
        listener.stop()
    assert_failed(report, Reason.NOT_COMMITTED, "commit")
    assert listener.snapshot()[1]["report_awaited"] == 1


def test_commit_reported_to_our_listener_succeeds(forgetful) -> None:
    peer = forgetful(report="new", commit_all=True)
    state = ProberState()
    listener = listening(state, peer.port)
    peer.listener_port = listener.port
    try:
        report = probe(peer.port, "commit", state)
    finally:
        listener.stop()
    assert report.success, report.detail
    assert "report via our listener" in "\n".join(report.context.log)
    assert 0 < report.phases["commit"] < 3  # within the module timeout, on our clock


def test_no_commitment_report_in_time_is_commitment_timeout(forgetful) -> None:
    peer = forgetful(report="never")
    started = time.monotonic()
    report = probe(peer.port, "short_commit")
    assert time.monotonic() - started < 1.5
    assert_failed(report, Reason.COMMITMENT_TIMEOUT, "commit")
    assert "no DICOM listener runs (--dicom.listen-address)" in report.detail


def test_verify_is_part_of_the_store_memory_key(forgetful) -> None:
    """A store verified by find and one not verified are two results, not one."""
    peer = forgetful()
    modules = {"plain": {"prober": "store", "calling_ae_title": MONITOR_AE,
                         "min_interval": "1h"},
               "find": {**MODULES["find"], "min_interval": "1h"}}
    config = make_config({"peer": {"port": peer.port, "ae_title": PEER_AE}}, modules)
    state = ProberState()
    target = config.targets["peer"]
    plain = probers.run(target, config.modules["plain"], 3.0, state)
    found = probers.run(target, config.modules["find"], 3.0, state)
    assert plain.success and not found.success
    assert found.reason is Reason.NOT_FOUND_AFTER_STORE and found.result_age is None
    assert peer.stored == 2


# -- Orthanc, which keeps what it receives (slow: an external program) ------------
@pytest.mark.slow
def test_orthanc_allowing_query_and_commitment_verifies_both(tmp_path: Path) -> None:
    state = ProberState()
    config = make_config({"orthanc": {"port": 1, "ae_title": "ORTHANC"}}, MODULES)
    listener = DicomListener(LOOPBACK, 0, state.commitments,
                             lambda: commitment_peers(config)).start()
    orthanc, process = start_orthanc(
        tmp_path, known_port=listener.port,
        permissions={"AllowFind": True, "AllowStorageCommitment": True})
    try:
        config = make_config({"orthanc": {"port": orthanc.dicom_port, "ae_title": "ORTHANC"}},
                             MODULES)
        find = probe(orthanc.dicom_port, "find", state, "ORTHANC")
        commit = probe(orthanc.dicom_port, "commit", state, "ORTHANC")
    finally:
        stop(process)
        listener.stop()
    assert find.success, find.detail
    assert commit.success, commit.detail
    assert find.phases["query"] > 0 and commit.phases["commit"] > 0
    assert "report via our listener" in "\n".join(commit.context.log)
    assert listener.snapshot()[0]["accepted"] == 1


@pytest.mark.slow
def test_orthanc_denying_query_and_commitment_is_query_refused(tmp_path: Path) -> None:
    orthanc, process = start_orthanc(
        tmp_path, permissions={"AllowFind": False, "AllowStorageCommitment": False})
    try:
        find = probe(orthanc.dicom_port, "find", ae_title="ORTHANC")
        commit = probe(orthanc.dicom_port, "short_commit", ae_title="ORTHANC")
    finally:
        stop(process)
    assert find.reason is Reason.QUERY_REFUSED, find.detail
    assert commit.reason is Reason.QUERY_REFUSED, commit.detail
    # Orthanc aborts a request the calling AE has no permission for, after the store.
    assert find.abort is not None and commit.abort is not None
    assert find.status == commit.status == 0x0000


# (peer of the interop catalogue) -> expected (find, commit), each reason and phase or "ok"
DCMTK_AND_PYNETDICOM = {
    "storescp": (("query_refused", "associate"), ("query_refused", "associate")),
    "dcmqrscp": ("ok", ("query_refused", "associate")),
    "pynetdicom storescp": (("query_refused", "associate"), ("query_refused", "associate")),
    "pynetdicom qrscp": ("ok", ("query_refused", "associate")),
}


@pytest.mark.slow
def test_dcmtk_and_pynetdicom_apps_answer_as_documented(tmp_path: Path) -> None:
    """dcmtk's dcmqrscp and pynetdicom's qrscp keep what they receive and answer
    C-FIND; no program of dcmtk or pynetdicom's apps offers Storage Commitment,
    and the storescps no query."""
    got = {}
    for name in DCMTK_AND_PYNETDICOM:
        workdir = tmp_path / name.replace(" ", "_")
        workdir.mkdir()
        with interop_peer(name, workdir) as peer:
            got[name] = tuple(
                "ok" if report.success else (report.reason.value, report.failed_phase)
                for report in (probe(peer.port, module, ae_title=peer.ae_title)
                               for module in ("find", "short_commit")))
    assert got == DCMTK_AND_PYNETDICOM


def test_the_probe_command_receives_a_commitment_report_with_its_own_listener(
        forgetful, tmp_path: Path) -> None:
    """`dicom-exporter probe --dicom.listen-address`: the one-shot check an
    administrator runs gets the report a peer sends on a new association."""
    peer = forgetful(report="new", commit_all=True)
    peer.listener_port = free_port()
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({
        "modules": {"commit": MODULES["commit"]},
        "targets": {"peer": {"host": LOOPBACK, "port": peer.port, "ae_title": PEER_AE,
                             "modules": ["commit"],
                             "labels": {"site": "vaxjo", "role": "partner"}}}}))
    with_listener = subprocess.run(
        [sys.executable, "-m", "exporter", "probe", "--config.file", str(config), "peer",
         "--debug", "--dicom.listen-address", f"{LOOPBACK}:{peer.listener_port}"],
        capture_output=True, text=True, timeout=30)
    assert with_listener.returncode == 0, with_listener.stdout + with_listener.stderr
    assert "committed (report via our listener)" in with_listener.stdout
