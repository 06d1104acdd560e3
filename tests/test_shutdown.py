"""SIGTERM: in-flight probes are aborted, the process exits within the probe timeout."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.support.hostile import ScriptedPeer, read_pdu
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port

PROBE_TIMEOUT = 8.0


def test_sigterm_aborts_in_flight_probes_and_exits_in_time(tmp_path: Path) -> None:
    received: list[int] = []

    def silent_after_request(peer: ScriptedPeer, conn: socket.socket) -> None:
        received.append(read_pdu(conn)[0])  # the A-ASSOCIATE-RQ, left unanswered
        conn.settimeout(PROBE_TIMEOUT)
        try:
            received.append(read_pdu(conn)[0])  # what the exporter sends on shutdown
        except (OSError, ConnectionError):
            received.append(-1)

    with ScriptedPeer(silent_after_request) as peer:
        config_file = tmp_path / "c.yml"
        config_file.write_text(yaml.safe_dump({
            "modules": {"echo": {"prober": "echo", "timeout": f"{PROBE_TIMEOUT:g}s"}},
            "targets": {"hung": {"host": LOOPBACK, "port": peer.port, "ae_title": "HUNG",
                                 "modules": ["echo"],
                                 "labels": {"site": "vaxjo", "role": "partner"}}},
        }))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "serve", "--config.file", str(config_file),
             "--web.listen-address", f"{LOOPBACK}:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        wait_for_port(port, process)

        answers: list[str] = []

        def probe() -> None:
            try:
                with urllib.request.urlopen(
                        f"http://{LOOPBACK}:{port}/probe?target=hung&module=echo",
                        timeout=15) as answer:
                    answers.append(f"{answer.status} {answer.read().decode()}")
            except urllib.error.HTTPError as error:
                answers.append(f"{error.code} {error.read().decode()}")
            except OSError:
                pass

        client = threading.Thread(target=probe)
        client.start()
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [0x01], "the probe should be waiting for the association answer"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=PROBE_TIMEOUT)
        took = time.monotonic() - started
        client.join(timeout=5)
        deadline = time.monotonic() + 2
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert process.returncode == 0, stderr
    assert took < PROBE_TIMEOUT, f"exit took {took:.1f}s"
    assert received[1] == 0x07, "the peer should get an A-ABORT, not a vanished connection"
    assert "aborted_associations=1" in stderr
    # Our own abort is not the peer's fault: no "probe failed ... reason=reset", and
    # the probe under way is answered 503 (reason shutdown): no probe_success 0 for
    # an alert to see.
    assert "reason=reset" not in stderr and "probe interrupted by shutdown" in stderr
    assert len(answers) == 1, "the probe under way is answered during the grace period"
    assert answers[0].startswith("503 probe interrupted"), answers[0]
