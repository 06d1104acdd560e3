"""Issue 30, item 4: results only move forward. A probe started under an
older config generation, or before the probe whose result is recorded, never
replaces the newer result of the same (target, module)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import yaml

from exporter import config
from exporter.app import Exporter
from exporter.reasons import Reason
from exporter.stats import Stats
from exporter.web import oncall
from tests.support.configs import make_config
from tests.support.hostile import ScriptedPeer, accept_association, answer_echo, answer_release
from tests.support.realpeers import LOOPBACK, MONITOR_AE


def _healthy(peer: ScriptedPeer, conn: socket.socket) -> None:
    accept_association(conn)
    answer_echo(conn)
    answer_release(conn)


def _write(path: Path, port: int) -> None:
    path.write_text(yaml.safe_dump({
        "modules": {"echo": {"prober": "echo", "timeout": "1500ms",
                             "calling_ae_title": MONITOR_AE}},
        "targets": {"pacs": {"host": LOOPBACK, "port": port, "ae_title": "PACS",
                             "modules": ["echo"],
                             "labels": {"site": "vaxjo", "role": "partner"}}}}))


def test_a_slow_probe_crossing_a_reload_never_overwrites_the_newer_result(
        tmp_path: Path) -> None:
    """The issue's case: the target was pointed at a silent peer; the probe
    started then ends (timed out) after a probe under the new config (a healthy
    peer) succeeded, and must not turn the target back to down."""
    path = tmp_path / "exporter.yml"
    with ScriptedPeer(lambda p, conn: p.hold()) as silent, ScriptedPeer(_healthy) as healthy:
        _write(path, silent.port)
        exporter = Exporter(config.load(path), str(path))
        old: list = []
        slow = threading.Thread(target=lambda: old.append(exporter.probe("pacs", "echo")))
        slow.start()
        deadline = time.monotonic() + 5
        while exporter.stats.snapshot().in_flight == 0:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        _write(path, healthy.port)
        assert exporter.reload() is None
        assert exporter.probe("pacs", "echo").success
        slow.join(timeout=10)
        assert old and not old[0].success  # the old probe did end, in failure, after
        series = exporter.stats.snapshot().series[("pacs", "echo")]
        assert series.last_success and series.count == 1  # the stale one is not counted
        lines = [line for line in exporter.metrics.page().decode().splitlines()
                 if line.startswith("dicom_exporter_last_probe_success{")]
        assert len(lines) == 1 and lines[0].endswith(" 1.0"), lines
        status = oncall.build(exporter.config, exporter.stats.snapshot(), time.time())
        assert "nere" not in repr(status).lower()


def test_of_two_probes_of_one_pair_the_later_started_one_is_the_latest_result() -> None:
    stats = Stats()
    stats.configured(make_config({"pacs": {"port": 104, "ae_title": "PACS"}}), 1)
    for _ in range(2):
        stats.started()
    assert stats.finished("pacs", "echo", True, None, 0.01, generation=1, started=20.0)
    # Started earlier, finished later: counted, but the latest result stays.
    assert not stats.finished("pacs", "echo", False, Reason.DIMSE_TIMEOUT, 1.5,
                              generation=1, started=10.0)
    series = stats.snapshot().series[("pacs", "echo")]
    assert series.last_success and series.count == 2
    assert series.failures == {Reason.DIMSE_TIMEOUT: 1}


def test_a_result_from_an_older_generation_is_dropped() -> None:
    stats = Stats()
    loaded = make_config({"pacs": {"port": 104, "ae_title": "PACS"}})
    stats.configured(loaded, 1)
    stats.started()
    stats.configured(loaded, 2)  # a reload while the probe ran
    assert not stats.finished("pacs", "echo", False, Reason.REFUSED, 0.01,
                              generation=1, started=1.0)
    snapshot = stats.snapshot()
    assert snapshot.series[("pacs", "echo")].count == 0 and snapshot.in_flight == 0
