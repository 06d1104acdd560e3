"""Freed heap memory goes back to the system after a burst (issue 30 item 6):
`exporter.heap` calls glibc's malloc_trim once a burst of connections is over,
and does nothing where there is no malloc_trim. The RSS figures are a
benchmark's (benchmarks/tls_flood.py), not a test's."""

from __future__ import annotations

import ctypes
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter import heap
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port


class Count:
    def __init__(self) -> None:
        self.closed = 0
        self.trims: list[int] = []

    def trim(self, pad: int) -> int:
        self.trims.append(pad)
        return 1


def test_a_trim_comes_once_a_burst_is_over_and_not_more_often_than_the_interval() -> None:
    count = Count()
    trimmer = heap.Trimmer(lambda: count.closed, interval=10.0, trim=count.trim)
    assert not trimmer.tick(now=100.0)  # nothing closed yet: idle costs nothing
    count.closed = 300
    assert not trimmer.tick(now=100.5)  # still closing: the burst goes on
    assert trimmer.tick(now=101.0) and count.trims == [0]  # quiet since the last tick
    assert not trimmer.tick(now=101.5)  # nothing new closed
    count.closed = 301
    assert not trimmer.tick(now=102.0)
    assert not trimmer.tick(now=102.5)  # over, but within 10 s of the last trim
    assert trimmer.tick(now=111.0) and count.trims == [0, 0] and trimmer.trims == 2


def test_glibcs_malloc_trim_is_found_and_called_here() -> None:
    """This machine's C library is glibc: the real malloc_trim runs, without error."""
    count = Count()
    trimmer = heap.Trimmer(lambda: count.closed)
    assert trimmer.available
    count.closed = 1
    trimmer.tick()
    assert trimmer.tick() and trimmer.trims == 1


@pytest.mark.parametrize("library", ["missing", "not glibc"])
def test_without_malloc_trim_nothing_happens_and_nothing_fails(
        library: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def cdll(name: object) -> object:
        if library == "missing":
            raise OSError("no C library")
        return object()  # musl: no malloc_trim attribute

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    count = Count()
    trimmer = heap.Trimmer(lambda: count.closed)
    assert not trimmer.available
    count.closed = 5
    assert not trimmer.tick() and not trimmer.tick() and trimmer.trims == 0


def test_serve_trims_after_its_connections_close(tmp_path: Path) -> None:
    """The hook is wired: connections that come and go, then quiet, make the
    running exporter trim (its debug line), within a second or two."""
    port = free_port()
    config_file = tmp_path / "c.yml"
    config_file.write_text("modules: {tcp: {prober: tcp, timeout: 1s}}\ntargets: {}\n")
    log_file = tmp_path / "output.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--log.level", "debug", "serve", "--config.file",
             str(config_file), "--web.listen-address",
             f"{LOOPBACK}:{port}"], stdout=log, stderr=log)
    try:
        wait_for_port(port, process)
        for _ in range(20):
            with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
                sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while sock.recv(4096):
                    pass
        deadline = time.monotonic() + 20
        while "heap trimmed" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)
    output = log_file.read_text()
    assert 'msg="heap trimmed"' in output, output[-2000:]
    assert "Traceback" not in output
