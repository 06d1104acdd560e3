"""What every benchmark measures with: timing an action, reading a figure off an
exposition, starting the exporter as the server runs it.

One copy here, so two benchmarks that print the same column measured it the
same way."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.realpeers import LOOPBACK, free_port, stop, wait_for_port


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(action: Callable[[], object], count: int) -> list[float]:
    """Wall-clock seconds of `count` calls, one by one."""
    out = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        out.append(time.perf_counter() - started)
    return out


def metric(text: str, name: str) -> float:
    """The first sample of `name` in an exposition; `name` may carry its labels
    (`probe_dicom_phase_duration_seconds{phase="dimse"}`)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


@contextlib.contextmanager
def exporter_process(config_file: Path, python: str = sys.executable, timeout: float = 20,
                     extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
                     ) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The exporter serving `config_file` on a free loopback port (`extra`: more
    flags of serve; `env`: its environment). It binds only once the config is
    loaded, so a port that accepts is a config that is in use."""
    port = free_port()
    process = subprocess.Popen(
        [python, "-m", "exporter", "--log.level", "error", "serve",
         "--config.file", str(config_file), "--web.listen-address", f"{LOOPBACK}:{port}",
         *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        wait_for_port(port, process, timeout)
        yield port, process
    finally:
        stop(process)
