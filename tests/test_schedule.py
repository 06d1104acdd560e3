"""Issue 30, item 3: the built-in schedule has a fixed footprint (a queue, not
a thread per probe), reports the rounds it overruns, and never stops
silently: a thread that cannot start or dies is fatal, and the time of the
last completed round is a metric the stall alert watches."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from exporter import cli, schedule
from exporter import config as config_module
from exporter.app import Exporter, ProbeLimits
from exporter.schedule import Scheduler, SchedulerDied
from tests.support.configs import make_config
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port


@pytest.fixture
def silent_ports() -> Iterator[list[int]]:
    """Two ports that accept (the kernel's backlog) and never answer, and cost no
    thread here: listeners that never accept."""
    listeners = []
    for _ in range(2):
        listener = socket.socket()
        listener.bind((LOOPBACK, 0))
        listener.listen(4096)
        listeners.append(listener)
    yield [listener.getsockname()[1] for listener in listeners]
    for listener in listeners:
        listener.close()


def _silent_config(ports: list[int], count: int, timeout: str = "200ms") -> str:
    """`count` targets over the silent ports, as YAML (written out directly: the
    test helpers' yaml.safe_dump would take longer than the parser, 0.3 s)."""
    lines = ["modules:", f"  echo: {{prober: echo, timeout: {timeout}}}", "targets:"]
    for index in range(count):
        lines += [f"  t{index:04d}:", f"    host: {LOOPBACK}",
                  f"    port: {ports[index % len(ports)]}", "    ae_title: SILENT",
                  "    modules: [echo]", "    labels: {site: vaxjo, role: partner}"]
    return "\n".join(lines) + "\n"


def _silent_exporter(ports: list[int], count: int, timeout: str = "200ms") -> Exporter:
    return Exporter(config_module.parse(_silent_config(ports, count, timeout), "silent.yml"))


def test_3000_silent_targets_cost_a_fixed_number_of_threads(
        silent_ports: list[int], caplog: pytest.LogCaptureFixture) -> None:
    """It was a thread per probe waiting for a slot: 3,000 targets on two silent
    ports reached 1,991 threads."""
    exporter = _silent_exporter(silent_ports, 3000)
    before = threading.active_count()
    scheduler = Scheduler(exporter, 10.0, workers=16)
    peak = 0
    with caplog.at_level(logging.WARNING, logger="dicom_exporter"):
        scheduler.start()
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                peak = max(peak, threading.active_count() - before)
                time.sleep(0.02)
            probes = exporter.stats.snapshot()
        finally:
            scheduler.stop()
            exporter.abort_all()
    assert peak <= 17, peak  # the dispatcher and 16 workers, whatever the target count
    counted = sum(series.count for series in probes.series.values())
    assert counted >= 8  # probing went on (8 at once: 4 per silent host and port)
    text = generate_latest(exporter.registry).decode()
    assert "dicom_exporter_schedule_queued_probes" in text


def test_a_round_that_overruns_is_counted_as_late_and_the_next_round_completes(
        silent_ports: list[int]) -> None:
    """One worker, 40 silent targets at 100 ms each and a 1 s interval: a round
    cannot finish in its interval; its late probes are counted, and rounds still
    complete (an overrun is not a stall)."""
    exporter = _silent_exporter(silent_ports, 40, timeout="100ms")
    scheduler = Scheduler(exporter, 1.0, workers=1)
    scheduler.start()
    started = scheduler.last_round
    try:
        deadline = time.monotonic() + 10
        while scheduler.last_round == started or not any(
                reason == "late" for _, _, reason in scheduler.skipped):
            assert time.monotonic() < deadline, dict(scheduler.skipped)
            time.sleep(0.05)
    finally:
        scheduler.stop()
        exporter.abort_all()
    text = generate_latest(exporter.registry).decode()
    assert 'reason="late"' in text
    assert "dicom_exporter_schedule_last_round_timestamp_seconds" in text


def test_a_thread_that_cannot_start_stops_the_schedule_loudly(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Under a task limit (the unit's TasksMax) a thread may not start: the
    schedule died silently and /-/healthy kept saying 200."""
    real = schedule.start_thread
    started: list[str] = []

    def limited(target, name):  # type: ignore[no-untyped-def]
        if len(started) >= 3:
            raise RuntimeError("can't start new thread")
        started.append(name)
        return real(target, name)

    monkeypatch.setattr(schedule, "start_thread", limited)
    died: list[str] = []
    scheduler = Scheduler(Exporter(make_config({})), 1.0, workers=8, on_death=died.append)
    with caplog.at_level(logging.ERROR, logger="dicom_exporter"), pytest.raises(SchedulerDied):
        scheduler.start()
    scheduler.stop()
    assert died and "can't start new thread" in died[0]
    assert any(r.getMessage() == "scheduled probing stopped" for r in caplog.records)


def test_the_exporter_exits_non_zero_when_its_schedule_cannot_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fatal, so that systemd's Restart=on-failure starts it again."""

    def no_threads(target, name):  # type: ignore[no-untyped-def]
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(schedule, "start_thread", no_threads)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGTERM,
                                                         signal.SIGINT)}
    exporter = Exporter(make_config({"peer": {"port": 9, "ae_title": "PEER"}}))
    try:
        started = time.monotonic()
        with pytest.raises(SystemExit) as caught:
            cli._serve_until_signalled(exporter, [(LOOPBACK, 0)], 5.0)
        assert caught.value.code == 1
        assert time.monotonic() - started < 5
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_a_worker_that_dies_of_a_bug_is_fatal_too(monkeypatch: pytest.MonkeyPatch) -> None:
    class Bug(BaseException):
        pass

    exporter = Exporter(make_config({"peer": {"port": 9, "ae_title": "PEER",
                                              "modules": ["tcp"]}}))

    def broken(*args: object, **kwargs: object) -> None:
        raise Bug("a bug past every except Exception")

    monkeypatch.setattr(exporter, "probe", broken)
    died = threading.Event()
    scheduler = Scheduler(exporter, 0.5, workers=2, on_death=lambda why: died.set())
    scheduler.start()
    try:
        assert died.wait(5)
        assert scheduler.dead is not None and "Bug" in scheduler.dead
    finally:
        scheduler.stop()


def test_last_round_moves_on_while_the_schedule_runs() -> None:
    exporter = Exporter(make_config({"peer": {"port": 9, "ae_title": "PEER",
                                              "modules": ["tcp"]}},
                                    {"tcp": {"prober": "tcp", "timeout": "200ms"}}),
                        limits=ProbeLimits())
    scheduler = Scheduler(exporter, 0.3, workers=2)
    scheduler.start()
    try:
        first = scheduler.last_round
        deadline = time.monotonic() + 5
        while scheduler.last_round <= first:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        scheduler.stop()


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def _probes_counted(port: int) -> float:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("dicom_exporter_probes_total{"))


def test_the_whole_process_stays_at_64_threads_with_3000_silent_targets(
        silent_ports: list[int], tmp_path: Path) -> None:
    """The command as a user runs it, every thread of the process counted (HTTP,
    listener, resolver, schedule): 3,000 targets on two silent peers with a 10 s
    interval, no HTTP load but two scrapes; issue 30 asks for at most 64."""
    config_file = tmp_path / "silent.yml"
    config_file.write_text(_silent_config(silent_ports, 3000), encoding="utf-8")
    port = free_port()
    log_file = tmp_path / "output.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "serve", "--config.file", str(config_file),
             "--web.listen-address", f"{LOOPBACK}:{port}", "--probe.interval", "10s"],
            stdout=log, stderr=log)
    try:
        wait_for_port(port, process, timeout=60)
        peak, first = 0, _probes_counted(port)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            peak = max(peak, _threads(process.pid))
            time.sleep(0.02)
        later = _probes_counted(port)
        peak = max(peak, _threads(process.pid))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert process.returncode == 0, log_file.read_text()[-2000:]
    assert peak <= 64, peak
    assert later >= first + 8, (first, later)  # probing goes on, 8 at once on silent peers
