"""The embedded default: simulated Kronoberg peers, switched down and up."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
import yaml
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from exporter.app import Exporter
from exporter.demo.embedded import Demo, example_text, on_loopback
from exporter.demo.simulated import serve
from exporter.reasons import Reason
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    simulation = Demo.start()
    yield simulation
    simulation.stop()


def test_the_demo_simulates_every_target_of_the_example(demo: Demo) -> None:
    example = yaml.safe_load(example_text())
    assert set(demo.peers.peers) == set(example["targets"])
    for target in demo.config.targets.values():
        assert target.host == LOOPBACK
        # Receive-side targets (z97117.from.skane) probe their link computer's peer.
        simulated = target.name.split(".from.")[0]
        assert target.port == demo.peers.peers[simulated].port


def test_every_probe_of_the_demo_succeeds(demo: Demo) -> None:
    exporter = Exporter(demo.config)
    for target in demo.config.targets.values():
        for module in target.modules:
            report = exporter.probe(target.name, module)
            assert report.success, f"{target.name}/{module}: {report.detail}"


def test_a_peer_taken_down_fails_as_refused_and_recovers(demo: Demo) -> None:
    exporter = Exporter(demo.config)
    demo.peers.set_state("skane", "down")
    try:
        assert exporter.probe("skane", "echo").reason is Reason.REFUSED
        demo.peers.set_state("skane", "reject")
        assert exporter.probe("skane", "echo").reason is Reason.REJECTED_CALLING_AE
    finally:
        demo.peers.set_state("skane", "up")
    assert exporter.probe("skane", "echo").success


def test_on_loopback_rewrites_every_host() -> None:
    document = yaml.safe_load(example_text())
    rewritten = on_loopback(document, {"skane": 4242})
    assert {t["host"] for t in rewritten["targets"].values()} == {LOOPBACK}
    assert rewritten["targets"]["skane"]["port"] == 4242
    assert document["targets"]["skane"]["host"].endswith(".invalid")  # the input is untouched


def test_the_demo_command_serves_and_switches_peers() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "demo", "--web.listen-address", f"{LOOPBACK}:{port}",
         "--probe.interval", "1s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_port(port, process)

        def fetch(path: str, method: str = "GET") -> str:
            request = urllib.request.Request(base + path, method=method)
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.read().decode()

        assert "probe_success 1.0" in fetch("/probe?target=z97117&module=echo")
        assert fetch("/demo/peers/z97117?state=down", "POST") == "z97117 is down\n"
        body = fetch("/probe?target=z97117&module=echo")
        assert "probe_success 0.0" in body
        assert 'probe_dicom_failure_reason{reason="refused"} 1.0' in body
        fetch("/demo/peers/z97117?state=up", "POST")
        assert "probe_success 1.0" in fetch("/probe?target=z97117&module=tcp")
        # The built-in schedule probes by itself: the status page fills in.
        deadline = time.monotonic() + 10
        while "? okänd" in fetch("/") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "? okänd" not in fetch("/") and "✔ upp" in fetch("/")
        assert "z97117" in fetch("/demo")
    finally:
        process.terminate()
        stdout, _ = process.communicate(timeout=15)
    assert "Simulated peers on 127.0.0.1" in stdout


def test_a_listener_collects_garbage_at_pynetdicoms_pace_not_at_every_poll() -> None:
    """pynetdicom's listener runs gc.collect() every 59 turns of its loop: with
    the short poll that makes a stop quick, 18 demo peers spent 1.5 s of every
    20 s in full collections, beside the probes they answer."""
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            collections.append(1)

    ae = AE(ae_title="GC_PEER")
    ae.add_supported_context(Verification)
    server = serve(ae, (LOOPBACK, 0))
    gc.callbacks.append(count)
    try:
        for _ in range(600):  # 30 s of turns at POLL_INTERVAL
            server.service_actions()
    finally:
        gc.callbacks.remove(count)
        server.shutdown()
    assert not collections
