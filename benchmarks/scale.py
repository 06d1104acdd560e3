"""The exporter at 500, 2,000 and 5,000 targets x 2 modules, measured in one run.

For each size: `check-config` wall time, start (process launch until /metrics
answers), reload (POST /-/reload), `/metrics` time and size once every pair
has a result, RSS of every exporter process, and the echo latency the
exporter reports for a healthy Orthanc (`probe_duration_seconds` and the
DIMSE phase), idle and while another process pulls `/metrics` back to back.

Every target points at the one Orthanc (127.0.0.1), modules echo and tcp; one
round of probes over all pairs fills the statistics before the page is timed.

The exporter runs under a server's interpreter (benchmarks/server_python.py).

Run: .venv/bin/python -m benchmarks.scale [--sizes 500,2000,5000] [--samples 1000]
     [--python PYTHON3|current]
Timing goals live here, as printed figures, never in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmarks.measure import exporter_process, metric
from benchmarks.server_python import add_option, chosen
from tests.support.realpeers import LOOPBACK, MONITOR_AE, start_orthanc, stop

START_TIMEOUT = 300.0
FILL_THREADS = 4  # the exporter allows 4 probes of one host:port at once
MB = 1_000_000


@dataclass
class Result:
    targets: int
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def write_config(path: Path, targets: int, orthanc_port: int) -> None:
    labels = {"site": "vaxjo", "role": "partner"}
    document = {
        "modules": {
            "echo": {"prober": "echo", "timeout": "5s", "calling_ae_title": MONITOR_AE},
            "tcp": {"prober": "tcp", "timeout": "2s"},
        },
        "targets": {
            f"pacs-{index:05d}": {"host": LOOPBACK, "port": orthanc_port, "ae_title": "ORTHANC",
                                  "modules": ["echo", "tcp"],
                                  "labels": {**labels, "region": f"region{index % 21:02d}"}}
            for index in range(targets)
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))


class Client:
    """One keep-alive HTTP connection, as Prometheus scrapes."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)

    def request(self, path: str, method: str = "GET") -> tuple[int, bytes]:
        self.connection.request(method, path)
        answer = self.connection.getresponse()
        return answer.status, answer.read()

    def close(self) -> None:
        self.connection.close()


def family_pids(pid: int) -> list[int]:
    """The process and all its descendants: RSS counts every exporter process."""
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                queue.extend(int(child) for child in children)
    return pids


def memory_mib(pid: int, field_name: str) -> float:
    total = 0
    for each in family_pids(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    total += int(line.split()[1])
    return total / 1024


def fill(port: int, targets: int) -> None:
    """One probe of every pair, so every pair has a result on the page."""
    local = threading.local()

    def probe(path: str) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(port)
        status, _ = client.request(path)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}")

    paths = [f"/probe?target=pacs-{index:05d}&module={module}"
             for index in range(targets) for module in ("echo", "tcp")]
    with ThreadPoolExecutor(max_workers=FILL_THREADS) as pool:
        for future in [pool.submit(probe, path) for path in paths]:
            future.result()


SCRAPER = """
import http.client, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
count = 0
end = time.monotonic() + float(sys.argv[2])
try:
    while time.monotonic() < end:
        connection.request("GET", "/metrics")
        connection.getresponse().read()
        count += 1
finally:
    print(count, flush=True)
"""


def echoes(port: int, samples: int) -> tuple[list[float], list[float]]:
    """probe_duration_seconds and the DIMSE phase of `samples` echoes of pacs-00000."""
    client = Client(port)
    reported, dimse = [], []
    try:
        for _ in range(samples):
            _, body = client.request("/probe?target=pacs-00000&module=echo")
            text = body.decode()
            if metric(text, "probe_success") != 1:
                raise RuntimeError("the healthy Orthanc failed a probe")
            reported.append(metric(text, "probe_duration_seconds"))
            dimse.append(metric(text, 'probe_dicom_phase_duration_seconds{phase="dimse"}'))
    finally:
        client.close()
    return reported, dimse


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure(workdir: Path, targets: int, orthanc_port: int, samples: int, python: str
            ) -> Result:
    result = Result(targets)
    config_file = workdir / f"scale-{targets}.yml"
    write_config(config_file, targets, orthanc_port)
    result.figures["config MB"] = config_file.stat().st_size / MB
    started = time.perf_counter()
    subprocess.run([python, "-m", "exporter", "check-config", str(config_file)],
                   check=True, capture_output=True)
    result.figures["check-config s"] = time.perf_counter() - started
    started = time.perf_counter()
    with exporter_process(config_file, python, START_TIMEOUT) as (port, process):
        result.figures["start s"] = time.perf_counter() - started
        client = Client(port)
        started = time.perf_counter()
        status, body = client.request("/-/reload", "POST")
        result.figures["reload s"] = time.perf_counter() - started
        if status != 200:
            result.notes.append(f"reload answered {status}: {body[:80]!r}")
        result.figures["RSS at start MiB"] = memory_mib(process.pid, "VmRSS")
        fill(port, targets)
        started = time.perf_counter()
        client.request("/metrics")  # the first page after the fill renders every pair again
        result.figures["/metrics s, every pair changed"] = time.perf_counter() - started
        times, size = [], 0
        for _ in range(5):
            started = time.perf_counter()
            _, page = client.request("/metrics")
            times.append(time.perf_counter() - started)
            size = len(page)
        result.figures["/metrics s"] = statistics.median(times)
        result.figures["/metrics MB"] = size / MB
        idle, idle_dimse = echoes(port, samples)
        duration = max(30.0, samples * 0.02)
        scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, str(port), str(duration)],
                                   stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            loaded, loaded_dimse = echoes(port, samples)
        finally:
            scraper.terminate()
            scrapes = scraper.communicate(timeout=120)[0].strip()
        result.figures["RSS MiB"] = memory_mib(process.pid, "VmRSS")
        result.figures["peak RSS MiB"] = memory_mib(process.pid, "VmHWM")
        result.notes.append(f"scrapes during the loaded echoes: {scrapes or 'n/a'}")
        client.close()
    for label, values in (("idle", idle), ("scraped", loaded), ("idle dimse", idle_dimse),
                          ("scraped dimse", loaded_dimse)):
        result.figures[f"echo {label} median ms"] = statistics.median(values) * 1000
        result.figures[f"echo {label} p99 ms"] = p99(values) * 1000
    return result


GOALS: dict[str, tuple[str, Callable[[Result], bool]]] = {  # at 5,000 targets
    "/metrics s": ("<= 1 s", lambda r: r.figures["/metrics s"] <= 1.0),
    "/metrics s, every pair changed": (
        "<= 1 s", lambda r: r.figures["/metrics s, every pair changed"] <= 1.0),
    "/metrics MB": ("<= 8 MB", lambda r: r.figures["/metrics MB"] <= 8.0),
    "RSS MiB": ("<= 150 MiB", lambda r: r.figures["RSS MiB"] <= 150),
    "echo scraped median ms": (
        "<= idle + 2 ms",
        lambda r: r.figures["echo scraped median ms"] <= r.figures["echo idle median ms"] + 2),
    "echo scraped p99 ms": (
        "<= idle p99 + 10 ms",
        lambda r: r.figures["echo scraped p99 ms"] <= r.figures["echo idle p99 ms"] + 10),
    "check-config s": ("<= 2 s", lambda r: r.figures["check-config s"] <= 2.0),
}


def print_table(results: list[Result]) -> None:
    names = list(results[0].figures)
    header = ["figure", *[f"{r.targets} targets" for r in results], "goal at 5,000", "met"]
    table = [header]
    for name in names:
        row = [name, *[f"{r.figures.get(name, float('nan')):.3f}" for r in results]]
        goal, check = GOALS.get(name, ("", None))
        largest = results[-1]
        row += [goal, "" if check is None or largest.targets < 5000
                else ("yes" if check(largest) else "NO")]
        table.append(row)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for index, line in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for result in results:
        for note in result.notes:
            print(f"{result.targets} targets: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,2000,5000")
    parser.add_argument("--samples", type=int, default=1000)
    add_option(parser)
    args = parser.parse_args()
    server = chosen(args)
    sizes = [int(size) for size in args.sizes.split(",")]
    samples = max(100, min(args.samples, 20000))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="dicom-scale-") as folder:
        workdir = Path(folder)
        (workdir / "orthanc").mkdir()
        orthanc, orthanc_process = start_orthanc(workdir / "orthanc")
        try:
            for targets in sizes:
                try:
                    results.append(measure(workdir, targets, orthanc.dicom_port, samples,
                                           server.executable))
                except Exception as exc:  # one size failing must not hide the others
                    failed = Result(targets)
                    failed.notes.append(f"not measured: {type(exc).__name__}: {exc}")
                    results.append(failed)
                print(f"# {targets} targets done", file=sys.stderr, flush=True)
        finally:
            stop(orthanc_process)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}; {samples} echoes per column")
    print(f"Exporter under: {server.description}; the benchmark under Python "
          f"{platform.python_version()}")
    measured = [r for r in results if r.figures]
    if measured:
        print_table(measured)
    for result in results:
        if not result.figures:
            print(f"{result.targets} targets: {'; '.join(result.notes)}")


if __name__ == "__main__":
    main()
