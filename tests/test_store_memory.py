"""The store memory (issue 28): keyed by everything that changes the result,
repeats marked everywhere they are read, kept across restarts in a state file.

Fast tests against pynetdicom peers in this process; a "restart" is a new
Exporter on the same state file, a kill -9 is one of a real exporter process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pynetdicom import AE, evt
from pynetdicom.sop_class import SecondaryCaptureImageStorage, Verification

from exporter import cli
from exporter import config as config_module
from exporter.app import Exporter
from exporter.demo.simulated import serve
from exporter.metrics import probe_page
from exporter.probers.memory import StoreKey, StoreMemory
from exporter.probers.store import store_key
from exporter.reasons import Reason
from tests.support.realpeers import LOOPBACK, wait_for_port

ALLOWED, STRANGER = "MON_OK", "MON_NOT"


class Peer:
    """A pynetdicom storage SCP that counts what reaches its archive."""

    def __init__(self, calling: list[str] | None = None, hold: threading.Event | None = None
                 ) -> None:
        self.stored: list[str] = []
        self.entered = threading.Event()
        self._hold = hold
        ae = AE(ae_title="PEER")
        ae.require_called_aet = True
        if calling:
            ae.require_calling_aet = calling
        for context in (SecondaryCaptureImageStorage, Verification):
            ae.add_supported_context(context)
        self.server = serve(ae, (LOOPBACK, 0), [(evt.EVT_C_STORE, self._store)])
        self.port = self.server.server_address[1]

    def _store(self, event: evt.Event) -> int:
        self.stored.append(str(event.request.AffectedSOPInstanceUID))
        self.entered.set()
        if self._hold is not None:
            self._hold.wait(20)
        return 0x0000

    def close(self) -> None:
        if self._hold is not None:
            self._hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.close()


def write_config(folder: Path, port: int, **modules: dict) -> str:
    base = {"prober": "store", "timeout": "3s", "min_interval": "1h"}
    document = {
        "modules": {name: body if body.get("prober", "store") != "store" else {**base, **body}
                    for name, body in modules.items()},
        "targets": {"peer": {"host": LOOPBACK, "port": port, "ae_title": "PEER",
                             "modules": list(modules),
                             "labels": {"site": "vaxjo", "role": "partner"}}},
    }
    path = folder / "exporter.yml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def two_callers(folder: Path, port: int) -> str:
    return write_config(folder, port, permitted={"calling_ae_title": ALLOWED},
                        stranger={"calling_ae_title": STRANGER})


@pytest.mark.parametrize("order", [("permitted", "stranger"), ("stranger", "permitted")])
def test_two_calling_ae_titles_on_one_peer_each_get_their_own_result(
        peers: list[Peer], tmp_path: Path, order: tuple[str, str]) -> None:
    """The peer lets in one calling AE title only. Within one min_interval,
    in either order, every probe of each module reports its own truth."""
    peer = Peer(calling=[ALLOWED])
    peers.append(peer)
    path = two_callers(tmp_path, peer.port)
    exporter = Exporter(config_module.load(path), path)
    expected = {"permitted": (True, None), "stranger": (False, Reason.REJECTED_CALLING_AE)}
    first: dict[str, dict[str, float]] = {}
    for round_ in range(3):
        for module in order:
            report = exporter.probe("peer", module)
            assert (report.success, report.reason) == expected[module], report.detail
            if module == "stranger":  # rejected: never stored, so tried for real each time
                assert report.result_age is None
                continue
            if round_ == 0:
                assert report.result_age is None
                first[module] = dict(report.phases)
            else:  # a repeat: marked, with the real store's phases
                assert report.result_age is not None and report.result_age > 0
                assert report.phases == first[module]
    assert len(peer.stored) == 1


def test_every_setting_that_changes_the_result_is_in_the_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, 104,
        base={"calling_ae_title": ALLOWED},
        calling={"calling_ae_title": STRANGER},
        syntaxes={"calling_ae_title": ALLOWED, "transfer_syntaxes": ["ImplicitVRLittleEndian"]},
        sop={"calling_ae_title": ALLOWED, "sop_classes": ["CTImageStorage"]},
        size={"calling_ae_title": ALLOWED, "test_object_size": "64KiB"},
        same={"calling_ae_title": ALLOWED},
    )
    config = config_module.load(path)
    target = config.targets["peer"]
    keys = {name: store_key(target, module) for name, module in config.modules.items()}
    assert keys["same"] == keys["base"]
    others = [keys[name] for name in ("base", "calling", "syntaxes", "sop", "size")]
    assert len(set(others)) == len(others)
    assert keys["base"].calling_ae == ALLOWED
    assert keys["base"].transfer_syntaxes == ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    assert keys["base"].tls == ""


def test_the_tls_identity_is_in_the_key(tmp_path: Path, pki_files: Path) -> None:
    def key(cert: str) -> StoreKey:
        document = {
            "modules": {"store": {"prober": "store", "calling_ae_title": ALLOWED}},
            "targets": {"peer": {
                "host": LOOPBACK, "port": 104, "ae_title": "PEER", "modules": ["store"],
                "labels": {"site": "vaxjo", "role": "partner"},
                "tls": {"cert_file": str(pki_files / f"{cert}.pem"),
                        "key_file": str(pki_files / f"{cert}.key")}}},
        }
        config = config_module.parse(yaml.safe_dump(document), "t.yml")
        return store_key(config.targets["peer"], config.modules["store"])

    one, other = key("client"), key("other")
    assert one.tls and other.tls and one.tls != other.tls
    assert key("client") == one


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two client identities that load (pynetdicom's test certificates): the
    key needs no handshake, so no openssl in the fast tests."""
    import pynetdicom

    source = Path(pynetdicom.__file__).parent / "tests" / "cert_files"
    folder = tmp_path_factory.mktemp("keypki")
    for name, stem in (("client", "client"), ("other", "server")):
        (folder / f"{name}.pem").write_bytes((source / f"{stem}.crt").read_bytes())
        (folder / f"{name}.key").write_bytes((source / f"{stem}.key").read_bytes())
    return folder


def test_a_repeat_is_marked_on_probe_in_the_cli_and_the_log_and_stays_out_of_histograms(
        peers: list[Peer], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    peer = Peer()
    peers.append(peer)
    path = write_config(tmp_path, peer.port, store={"calling_ae_title": ALLOWED})
    exporter = Exporter(config_module.load(path), path)
    real = exporter.probe("peer", "store")
    repeat = exporter.probe("peer", "store", log=True)
    assert real.success and repeat.success and len(peer.stored) == 1
    assert repeat.result_age is not None and repeat.result_age > 0
    assert repeat.phases == real.phases
    # probe_duration_seconds is this request's own time: far below the real store's phases.
    assert repeat.duration < sum(real.phases.values())
    page = probe_page(repeat).decode()
    assert f"probe_dicom_result_age_seconds {repeat.result_age!r}" in page
    assert "probe_dicom_result_age_seconds 0.0" in probe_page(real).decode()
    assert any("repeat of the store" in line for line in repeat.context.log)
    metrics = exporter.metrics.page().decode()
    assert 'dicom_exporter_probes_total{target="peer",module="store"} 2.0' in metrics
    assert 'dicom_exporter_probe_duration_seconds_count{target="peer",module="store"} 1' \
        in metrics

    result = CliRunner().invoke(cli.main, ["probe", "--config.file", path,
                                           "--store.state-file", str(tmp_path / "s.json"),
                                           "peer"])
    assert result.exit_code == 0 and "repeat    " not in result.output  # a fresh memory: stores
    again = CliRunner().invoke(cli.main, ["probe", "--config.file", path,
                                          "--store.state-file", str(tmp_path / "s.json"),
                                          "peer"])
    assert again.exit_code == 0, again.output
    assert "repeat    repeat of the store 0 s ago" in again.output
    assert len(peer.stored) == 2


def test_a_restart_repeats_from_the_state_file_instead_of_storing(
        peers: list[Peer], tmp_path: Path) -> None:
    peer = Peer()
    peers.append(peer)
    path = write_config(tmp_path, peer.port, store={"calling_ae_title": ALLOWED})
    state = str(tmp_path / "state" / "store-memory.json")
    os.mkdir(tmp_path / "state")
    first = Exporter(config_module.load(path), path, store_state_file=state).probe("peer", "store")
    assert first.success and len(peer.stored) == 1
    for _ in range(3):  # a restart loop: every start reads the file
        exporter = Exporter(config_module.load(path), path, store_state_file=state)
        report = exporter.probe("peer", "store")
        assert report.success and report.result_age is not None, report.detail
        assert report.phases == first.phases and report.peer == first.peer
        assert report.contexts == first.contexts and report.status == first.status
    assert len(peer.stored) == 1
    document = json.loads(Path(state).read_text())
    assert document["version"] == 1 and len(document["stores"]) == 1
    assert document["stores"][0]["key"]["calling_ae"] == ALLOWED
    assert not [name for name in os.listdir(tmp_path / "state") if name.startswith(".")]


def test_a_failed_store_is_remembered_across_a_restart_with_its_reason(
        peers: list[Peer], tmp_path: Path) -> None:
    stored: list[int] = []
    ae = AE(ae_title="PEER")
    for context in (SecondaryCaptureImageStorage, Verification):
        ae.add_supported_context(context)
    server = serve(ae, (LOOPBACK, 0), [(evt.EVT_C_STORE,
                                        lambda event: (stored.append(1), 0xA700)[1])])
    try:
        path = write_config(tmp_path, server.server_address[1], store={})
        state = str(tmp_path / "store-memory.json")
        first = Exporter(config_module.load(path), path, store_state_file=state)
        assert first.probe("peer", "store").reason is Reason.STATUS_FAILURE
        report = Exporter(config_module.load(path), path, store_state_file=state).probe(
            "peer", "store")
    finally:
        server.shutdown()
        server.server_close()
    assert report.reason is Reason.STATUS_FAILURE and report.status == 0xA700
    assert report.result_age is not None and report.failed_phase == "dimse"
    assert len(stored) == 1


@pytest.mark.parametrize("content", [None, "", "{not json", '{"version": 99, "stores": []}',
                                     '{"version": 1, "stores": [{"key": {}}]}', "[]"])
def test_a_missing_or_corrupt_state_file_is_one_warning_and_an_empty_memory(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | None) -> None:
    state = tmp_path / "store-memory.json"
    if content is not None:
        state.write_text(content)
    with caplog.at_level(logging.WARNING, logger="dicom_exporter"):
        memory = StoreMemory(str(state))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "starting empty" in warnings[0].getMessage()
    assert str(state) in str(warnings[0].__dict__)
    key = StoreKey(LOOPBACK, 104, "PEER", ALLOWED, "", "1.2.3", ("1.2.840.10008.1.2",))
    assert memory.get(key) is None


def test_a_state_file_that_cannot_be_written_is_a_warning_not_a_failed_probe(
        peers: list[Peer], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    peer = Peer()
    peers.append(peer)
    path = write_config(tmp_path, peer.port, store={"calling_ae_title": ALLOWED})
    state = str(tmp_path / "no-such-folder" / "store-memory.json")
    with caplog.at_level(logging.WARNING, logger="dicom_exporter"):
        report = Exporter(config_module.load(path), path, store_state_file=state).probe(
            "peer", "store")
    assert report.success, report.detail
    assert any("store memory not written" in r.getMessage() for r in caplog.records)


def _exporter_process(config: str, state: str, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "exporter", "serve", "--config.file", config,
         "--store.state-file", state, f"--web.listen-address={LOOPBACK}:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _probe_store(port: int, timeout: float = 10) -> str:
    url = f"http://{LOOPBACK}:{port}/probe?target=peer&module=store"
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read().decode()


def _probe_until_killed(port: int) -> None:
    try:
        _probe_store(port)
    except OSError:  # the exporter is killed while it stores: no answer
        pass


@pytest.mark.parametrize("when", ["after", "during"])
def test_kill_9_after_or_during_a_store_then_restart_stores_nothing_new(
        peers: list[Peer], tmp_path: Path, when: str) -> None:
    """A real exporter process killed with SIGKILL right after a store, or while
    the peer holds its C-STORE, then started again: no second instance."""
    from tests.support.realpeers import free_port

    hold = threading.Event() if when == "during" else None
    peer = Peer(hold=hold)
    peers.append(peer)
    path = write_config(tmp_path, peer.port, store={"calling_ae_title": ALLOWED,
                                                    "timeout": "10s"})
    state = str(tmp_path / "store-memory.json")
    port = free_port()
    process = _exporter_process(path, state, port)
    try:
        wait_for_port(port, process)
        if hold is None:
            assert "probe_success 1.0" in _probe_store(port)
        else:
            threading.Thread(target=_probe_until_killed, args=(port,), daemon=True).start()
            assert peer.entered.wait(10)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if hold is not None:
        hold.set()
    port = free_port()
    process = _exporter_process(path, state, port)
    try:
        wait_for_port(port, process)
        page = _probe_store(port)
    finally:
        process.terminate()
        process.wait(10)
    age = float(page.split("\nprobe_dicom_result_age_seconds ")[1].split()[0])
    assert age > 0, page
    if when == "after":
        assert "probe_success 1.0" in page
    else:  # nobody saw the outcome: said so, and not sent again
        assert 'probe_dicom_failure_reason{reason="internal_error"} 1.0' in page
    time.sleep(0.1)
    assert len(peer.stored) == 1


# -- tcp against fragile peers, test object size, the unit (items 4, 5) -------------
def test_check_config_notes_a_tcp_module_on_a_dicom_peer_unless_it_is_tcp_safe(
        tmp_path: Path) -> None:
    def check(**tcp: object) -> list[str]:
        path = write_config(tmp_path, 104, tcp={"prober": "tcp", "timeout": "2s", **tcp})
        result = CliRunner().invoke(cli.main, ["check-config", path])
        assert result.exit_code == 0, result.output
        return [line for line in result.output.splitlines() if "note:" in line]

    (note,) = check()
    assert "modules.tcp: note:" in note and "(peer)" in note and "echo" in note
    assert "tcp_safe: true" in note
    assert check(tcp_safe=True) == []
    for example in ("kronoberg", "vaxjo", "ljungby"):  # tcp kept for link computers, silenced
        result = CliRunner().invoke(
            cli.main, ["check-config", str(Path(__file__).parent.parent / "examples" /
                                           f"{example}.yml")])
        assert result.exit_code == 0 and "note:" not in result.output, result.output


@pytest.mark.parametrize(("value", "size", "problem"), [
    (4096, 4096, None), ("64KiB", 65536, None), ("2MiB", 2 * 2**20, None), ("0", 0, None),
    ("17MiB", 0, "17MiB is larger than the largest allowed, 16MiB"),
    ("1GB", 0, "must be a size such as 64KiB or 2MiB, got"),
    (True, 0, "must be a size such as 64KiB or 2MiB, got"),
])
def test_test_object_size_is_a_checked_size(tmp_path: Path, value: object, size: int,
                                            problem: str | None) -> None:
    path = write_config(tmp_path, 104, store={"test_object_size": value})
    if problem is None:
        assert config_module.load(path).modules["store"].test_object_size == size
        return
    with pytest.raises(config_module.ConfigError) as caught:
        config_module.load(path)
    assert f"modules.store.test_object_size: {problem}" in str(caught.value)


def test_a_large_test_object_is_fragmented_and_arrives_whole(
        tmp_path: Path) -> None:
    """64 KiB of pixels to a peer that takes PDUs of 4 KiB: many P-DATA PDUs,
    one valid instance on the peer, pixel for pixel."""
    from exporter.dicom.testobject import synthetic_instance

    received: list = []
    ae = AE(ae_title="PEER")
    ae.maximum_pdu_size = 4096
    for context in (SecondaryCaptureImageStorage, Verification):
        ae.add_supported_context(context)
    server = serve(ae, (LOOPBACK, 0), [(evt.EVT_C_STORE,
                                        lambda event: (received.append(event.dataset), 0)[1])])
    try:
        path = write_config(tmp_path, server.server_address[1],
                            store={"test_object_size": "64KiB", "min_interval": "1ms"})
        report = Exporter(config_module.load(path), path).probe("peer", "store", log=True)
    finally:
        server.shutdown()
        server.server_close()
    assert report.success, report.detail
    assert report.peer is not None and report.peer.peer_max_pdu == 4096
    (dataset,) = received
    expected = synthetic_instance("peer", SecondaryCaptureImageStorage, None, 65536)
    assert (dataset.Rows, dataset.Columns) == (182, 182)
    assert dataset.PixelData == expected.PixelData and len(dataset.PixelData) >= 65536
    sent = [line for line in report.context.log if "C-STORE 1." in line]
    assert sent and int(sent[0].split(", ")[-1].split()[0]) > 16 * 4096


def test_the_unit_gives_the_exporter_a_state_directory() -> None:
    unit = (Path(__file__).parent.parent / "examples" / "dicom-exporter.service").read_text()
    assert "StateDirectory=dicom-exporter\n" in unit
    assert "ProtectSystem=strict" in unit  # the state directory is the one writable place
