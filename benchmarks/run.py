"""Side-by-side measurements of the probe, printed as one table.

Starts every peer and competitor itself on 127.0.0.1 (Orthanc with
TCP_NODELAY=1, dcmtk storescp, the exporter as `dicom-exporter serve`,
prometheus-blackbox-exporter when installed) and measures, in one run:

  echo over a full association: the exporter's reported duration, its whole
  /probe request, plain pynetdicom, echoscu as a process;
  echo on an open association (the DIMSE phase);
  500 targets in a 15 s interval, 10 % silent (2 s timeout);
  throughput; /probe?module=tcp against blackbox_exporter; RSS;
  echo and tcp again with the machine idle between requests (5 ms apart);
  threads and RSS with 300 idle and 300 slowloris connections held open;
  /probe?module=tcp while 300 clients pipeline GET /metrics and never read.

The exporter runs under a server's interpreter (benchmarks/server_python.py).

Run: .venv/bin/python -m benchmarks.run [--quick] [--detection] [--python PYTHON3|current]
Timing goals live here, as printed figures, never in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from benchmarks.measure import exporter_process, median_ms, metric, timed
from benchmarks.server_python import Interpreter, add_option, chosen
from exporter import config as config_module
from exporter import probers
from tests.support.realpeers import (
    LOOPBACK,
    MONITOR_AE,
    free_port,
    start_orthanc,
    start_storescp,
    stop,
    wait_for_port,
)

HEALTHY, SILENT, INTERVAL, SILENT_TIMEOUT = 450, 50, 15.0, "2s"


@dataclass
class Row:
    benchmark: str
    subject: str
    samples: list[float]  # seconds, or a single figure in `unit`
    unit: str = "ms"
    goal: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        if not self.samples:
            figures = ["", "", "0"]
        elif self.unit == "ms":
            ordered = sorted(self.samples)
            median = statistics.median(ordered) * 1000
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
            figures = [f"{median:.3f}", f"{p99:.3f}", str(len(ordered))]
        else:
            figures = [f"{self.samples[0]:.1f} {self.unit}", "", ""]
        verdict = "" if self.met is None else ("yes" if self.met else "NO")
        return [self.benchmark, self.subject, *figures, self.goal, verdict]


class ProbeClient:
    """A keep-alive HTTP/1.1 client about as lean as Prometheus' own: one
    connection reused, the request in one write, the answer framed by
    Content-Length or chunks. http.client parses every answer's headers with
    the email package, 0.1-0.15 ms of Python a request here that would be
    counted against the exporter and blackbox_exporter alike; `HttpClientProbe`
    keeps one row measured through it, for comparison."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.headers: dict[str, str] = {}  # of the latest answer, names lower-cased

    def get(self, path: str) -> str:
        if self.sock is None:
            self.sock = socket.create_connection((LOOPBACK, self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        head = self._until(b"\r\n\r\n").decode("latin-1").lower()
        headers = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
        self.headers = headers
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").strip() == "chunked":
            chunks = []
            while size := int(self._until(b"\r\n").split(b";")[0], 16):
                chunks.append(self._exactly(size))
                self._exactly(2)
            while self._until(b"\r\n"):  # trailers, up to the empty line ending the body
                pass
            body = b"".join(chunks)
        else:
            raise RuntimeError(f"answer without framing: {head!r}")
        if "close" in (token.strip() for token in headers.get("connection", "").split(",")):
            self.sock.close()
            self.sock = None
        return body.decode()

    def _until(self, end: bytes) -> bytes:
        while (found := self.buffer.find(end)) < 0:
            self.buffer += self._recv()
        part, self.buffer = self.buffer[:found], self.buffer[found + len(end):]
        return part

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.buffer += self._recv()
        part, self.buffer = self.buffer[:count], self.buffer[count:]
        return part

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-answer")
        return chunk


class HttpClientProbe:
    """The same requests through http.client, as before ProbeClient."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)

    def get(self, path: str) -> str:
        self.connection.request("GET", path)
        return self.connection.getresponse().read().decode()


def silent_listener() -> tuple[socket.socket, threading.Event]:
    """Accepts connections and never says a word: a hung DICOM service."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(512)
    done = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])
        for conn in held:
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener, done


def exporter_config(orthanc_port: int, storescp_port: int, silent_port: int) -> dict[str, Any]:
    labels = {"site": "vaxjo", "role": "partner"}
    targets = {
        "orthanc": {"host": LOOPBACK, "port": orthanc_port, "ae_title": "ORTHANC",
                    "modules": ["echo", "tcp"], "labels": labels},
        "storescp": {"host": LOOPBACK, "port": storescp_port, "ae_title": "STORESCP",
                     "modules": ["echo"], "labels": labels},
    }
    for index in range(HEALTHY):
        targets[f"healthy{index:03d}"] = {"host": LOOPBACK, "port": orthanc_port,
                                          "ae_title": "ORTHANC", "modules": ["echo"],
                                          "labels": labels}
    for index in range(SILENT):
        targets[f"silent{index:03d}"] = {"host": LOOPBACK, "port": silent_port,
                                         "ae_title": "SILENT", "modules": ["silent_echo"],
                                         "labels": labels}
    return {
        "modules": {
            "echo": {"prober": "echo", "timeout": "5s", "calling_ae_title": MONITOR_AE},
            "silent_echo": {"prober": "echo", "timeout": SILENT_TIMEOUT,
                            "calling_ae_title": MONITOR_AE},
            "tcp": {"prober": "tcp", "timeout": "2s"},
        },
        "targets": targets,
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- the measurements ---------------------------------------------------------
WARM_UP = 100  # /probe requests before an exporter's first timed one


def echo_requests(client: ProbeClient, peer: str, count: int
                  ) -> tuple[list[float], list[float], list[float]]:
    """`count` echo /probe requests: reported durations, whole requests, and
    each whole request minus the probe's wall time in the exporter."""
    reported, requests, beyond = [], [], []
    for _ in range(count):
        started = time.perf_counter()
        body = client.get(f"/probe?target={peer}&module=echo")
        requests.append(time.perf_counter() - started)
        assert metric(body, "probe_success") == 1, body
        reported.append(metric(body, "probe_duration_seconds"))
        # Server-Timing: the probe's wall time in the exporter, its own processing included.
        probe_ms = float(client.headers["server-timing"].split("dur=")[1])
        beyond.append(requests[-1] - probe_ms / 1000)
    return reported, requests, beyond


def full_association(rows: list[Row], client: ProbeClient, peer: str, port: int, called: str,
                     count: int, echoscu_count: int) -> list[float]:
    reported, requests, beyond = echo_requests(client, peer, count)
    is_orthanc = peer == "orthanc"
    rows.append(Row("echo, full association", f"{peer}: exporter, reported", reported,
                    goal="<= 1 ms median" if is_orthanc else "",
                    met=median_ms(reported) <= 1.0 if is_orthanc else None))
    overhead = median_ms(requests) - median_ms(reported)
    rows.append(Row("echo, full association", f"{peer}: exporter, whole /probe", requests,
                    goal=f"<= reported + 0.5 ms (+{overhead:.3f} ms)" if is_orthanc else "",
                    met=overhead <= 0.5 if is_orthanc else None))
    rows.append(Row("echo, full association",
                    f"{peer}: whole /probe minus the probe's wall time", beyond,
                    goal="HTTP, exposition, client" if is_orthanc else ""))
    if is_orthanc:
        via_http_client = HttpClientProbe(client.port)
        rows.append(Row("echo, full association", f"{peer}: whole /probe via http.client",
                        timed(lambda: via_http_client.get(f"/probe?target={peer}&module=echo"),
                              count // 2)))

    ae = AE(ae_title=MONITOR_AE)
    ae.add_requested_context(Verification)

    def plain() -> None:
        association = ae.associate(LOOPBACK, port, ae_title=called)
        if not association.is_established:
            raise RuntimeError(f"plain pynetdicom could not associate with {peer}")
        association.send_c_echo()
        association.release()

    rows.append(Row("echo, full association", f"{peer}: plain pynetdicom",
                    timed(plain, max(count // 5, 20))))
    echoscu = shutil.which("echoscu")
    if echoscu:
        command = [echoscu, "-aet", MONITOR_AE, "-aec", called, LOOPBACK, str(port)]
        rows.append(Row("echo, full association", f"{peer}: echoscu process", timed(
            lambda: subprocess.run(command, check=True, capture_output=True), echoscu_count)))
    return reported


def under_benchmark_python(rows: list[Row], config_file: Path, count: int) -> None:
    """The whole echo request again, the exporter under this benchmark's own
    interpreter (the development venv's). Measured after the rows above, not
    side by side, so only indicative: benchmarks/interpreters.py compares the
    two interpreters in alternating blocks."""
    with exporter_process(config_file) as (port, _):
        client = ProbeClient(port)
        for _ in range(WARM_UP):
            client.get("/probe?target=orthanc&module=echo")
        reported, whole, _ = echo_requests(client, "orthanc", count)
    overhead = median_ms(whole) - median_ms(reported)
    rows.append(Row("echo, full association",
                    f"orthanc: whole /probe, exporter under Python {platform.python_version()}",
                    whole, goal=f"indicative, measured after: reported + {overhead:.3f} ms"))


def open_association(rows: list[Row], client: ProbeClient, orthanc_port: int,
                     count: int) -> None:
    phases = [metric(client.get("/probe?target=orthanc&module=echo"),
                     'probe_dicom_phase_duration_seconds{phase="dimse"}')
              for _ in range(count)]
    rows.append(Row("echo, open association", "orthanc: exporter, dimse phase", phases,
                    goal="<= 0.3 ms median", met=median_ms(phases) <= 0.3))
    ae = AE(ae_title=MONITOR_AE)
    ae.add_requested_context(Verification)
    association = ae.associate(LOOPBACK, orthanc_port, ae_title="ORTHANC")
    if not association.is_established:
        raise RuntimeError(f"pynetdicom could not associate with Orthanc: rejected "
                           f"{association.is_rejected}, aborted {association.is_aborted}")
    try:
        rows.append(Row("echo, open association", "orthanc: pynetdicom send_c_echo",
                        timed(association.send_c_echo, count)))
    except RuntimeError as exc:  # seen on a loaded machine: the row says so, the run goes on
        rows.append(Row("echo, open association", "orthanc: pynetdicom send_c_echo", [0.0],
                        unit="(failed)", goal=f"association lost: {exc}"[:60]))
    finally:
        association.release()


def load(rows: list[Row], port: int, process: subprocess.Popen[bytes], idle: list[float],
         rounds: int) -> None:
    names = [f"healthy{i:03d}" for i in range(HEALTHY)]
    names += [f"silent{i:03d}" for i in range(SILENT)]
    # Interleave silent targets among the healthy ones, as they would fall in a real list.
    order = sorted(names, key=lambda n: (int(n[-3:]) * 10 + (5 if n.startswith("s") else 0)))
    gap = INTERVAL / len(order)
    healthy_reported: list[float] = []
    lateness: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def scrape(name: str, due: float) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = ProbeClient(port)
        module = "silent_echo" if name.startswith("silent") else "echo"
        body = client.get(f"/probe?target={name}&module={module}")
        finished = time.monotonic()
        with lock:
            lateness.append(finished - due)
            if module == "echo":
                healthy_reported.append(metric(body, "probe_duration_seconds"))

    start = time.monotonic() + 0.5
    with ThreadPoolExecutor(max_workers=96) as pool:
        for round_number in range(rounds):
            for index, name in enumerate(order):
                due = start + round_number * INTERVAL + index * gap
                time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(scrape, name, due)
    in_time = max(lateness) < INTERVAL
    rows.append(Row(f"{HEALTHY + SILENT} targets / {INTERVAL:g} s, {SILENT} silent",
                    "healthy: exporter, reported", healthy_reported,
                    goal=f"<= idle + 1 ms ({median_ms(idle):.3f} ms idle)" if idle else "",
                    met=median_ms(healthy_reported) <= median_ms(idle) + 1.0 if idle else None))
    rows.append(Row(f"{HEALTHY + SILENT} targets / {INTERVAL:g} s, {SILENT} silent",
                    "every probe answered within its round", [max(lateness)], unit="s max",
                    goal=f"< {INTERVAL:g} s", met=in_time))
    mib = rss_mib(process.pid)
    rows.append(Row(f"{HEALTHY + SILENT} targets", "exporter RSS after the rounds", [mib],
                    unit="MiB", goal="<= 60 MiB", met=mib <= 60))


def throughput(rows: list[Row], config_file: Path, seconds: float) -> None:
    config = config_module.load(config_file)
    target, module = config.targets["orthanc"], config.modules["echo"]
    count = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker() -> None:
        done = 0
        while time.monotonic() < end:
            report = probers.run(target, module, 5.0)
            assert report.success, report.detail
            done += 1
        with lock:
            count[0] += done

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = count[0] / seconds
    rows.append(Row("throughput, 2 cores", "echo probes/s against Orthanc (4 threads)", [rate],
                    unit="/s", goal=">= 1000/s", met=rate >= 1000))


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError("no Threads")


def idle_connections(rows: list[Row], client: ProbeClient, port: int,
                     process: subprocess.Popen[bytes], count: int) -> None:
    """Clients that connect and say nothing, or never finish their headers."""
    before_threads, before_rss = threads_of(process.pid), rss_mib(process.pid)
    held = []
    try:
        for index in range(2 * count):
            sock = socket.create_connection((LOOPBACK, port), timeout=10)
            if index % 2:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        served = timed(lambda: client.get("/probe?target=orthanc&module=tcp"), 200)
        threads, rss = threads_of(process.pid), rss_mib(process.pid)
    finally:
        for sock in held:
            sock.close()
    name = f"{count} idle + {count} slowloris connections"
    rows.append(Row(name, "exporter threads, before", [before_threads], unit="threads"))
    rows.append(Row(name, "exporter threads, while held", [threads], unit="threads",
                    goal="<= before + 4", met=threads <= before_threads + 4))
    rows.append(Row(name, "exporter RSS, before", [before_rss], unit="MiB"))
    rows.append(Row(name, "exporter RSS, while held", [rss], unit="MiB",
                    goal="<= before + 10 MiB", met=rss <= before_rss + 10))
    rows.append(Row(name, "/probe?module=tcp while held", served))


NON_READERS, PIPELINED = 300, 50


def non_reading_clients(rows: list[Row], client: ProbeClient, port: int,
                        process: subprocess.Popen[bytes], count: int = NON_READERS,
                        probe: str = "/probe?target=orthanc&module=tcp") -> None:
    """Clients that pipeline GET /metrics with a tiny receive buffer and never
    read (issue 30): healthy /probe must keep its latency, no worker held."""
    before_threads, before_rss = threads_of(process.pid), rss_mib(process.pid)
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * PIPELINED
    held = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.connect((LOOPBACK, port))
            sock.sendall(request)
            held.append(sock)
        served = timed(lambda: client.get(probe), 200)
        threads, rss = threads_of(process.pid), rss_mib(process.pid)
    finally:
        for sock in held:
            sock.close()
    name = f"{count} clients never reading ({PIPELINED} GET /metrics each)"
    rows.append(Row(name, "exporter threads, before", [before_threads], unit="threads"))
    rows.append(Row(name, "exporter threads, while held", [threads], unit="threads"))
    rows.append(Row(name, "exporter RSS, before", [before_rss], unit="MiB"))
    rows.append(Row(name, "exporter RSS, while held", [rss], unit="MiB"))
    rows.append(Row(name, "/probe?module=tcp while held", served,
                    goal="median <= 50 ms", met=statistics.median(served) <= 0.05))
    rows.append(Row(name, "/probe?module=tcp while held, slowest", [max(served)],
                    goal="<= 1 s", met=max(served) <= 1.0))


def blackbox_binary() -> str | None:
    """prometheus-blackbox-exporter, installed from Debian when missing and we may."""
    binary = shutil.which("prometheus-blackbox-exporter")
    apt = shutil.which("apt-get")
    if binary is None and apt and os.geteuid() == 0:
        subprocess.run([apt, "install", "-y", "prometheus-blackbox-exporter"],
                       capture_output=True, check=False)
        binary = shutil.which("prometheus-blackbox-exporter")
    return binary


@contextlib.contextmanager
def blackbox_client(workdir: Path, orthanc_port: int) -> Iterator[tuple[ProbeClient, str] | None]:
    """A client of prometheus-blackbox-exporter and its tcp probe path; None if not installed."""
    binary = blackbox_binary()
    if binary is None:
        yield None
        return
    config = workdir / "blackbox.yml"
    config.write_text("modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n")
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address={LOOPBACK}:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        client = ProbeClient(port)
        path = f"/probe?target={LOOPBACK}:{orthanc_port}&module=tcp_connect"
        client.get(path)
        yield client, path
    finally:
        stop(process)


def tcp_versus_blackbox(rows: list[Row], client: ProbeClient, orthanc_port: int,
                        count: int, workdir: Path) -> None:
    with blackbox_client(workdir, orthanc_port) as blackbox:
        if blackbox is None:
            rows.append(Row("/probe?module=tcp, whole request", "dicom-exporter",
                            timed(lambda: client.get("/probe?target=orthanc&module=tcp"), count),
                            goal="blackbox_exporter not installed "
                                 "(apt-get install prometheus-blackbox-exporter)"))
            return
        theirs_client, path = blackbox
        # Interleaved halves, so neither side profits from a quieter moment.
        theirs = timed(lambda: theirs_client.get(path), count // 2)
        ours = timed(lambda: client.get("/probe?target=orthanc&module=tcp"), count // 2)
        theirs += timed(lambda: theirs_client.get(path), count // 2)
        ours += timed(lambda: client.get("/probe?target=orthanc&module=tcp"), count // 2)
    rows.append(Row("/probe?module=tcp, whole request", "dicom-exporter", ours,
                    goal="<= blackbox_exporter", met=median_ms(ours) <= median_ms(theirs)))
    rows.append(Row("/probe?module=tcp, whole request", "prometheus-blackbox-exporter", theirs))


PACE = 0.005  # seconds between paced requests: the machine idles, as between scrapes


def paced(rows: list[Row], client: ProbeClient, orthanc_port: int, count: int,
          workdir: Path) -> None:
    """The same requests with the machine left idle between them, as Prometheus
    scrapes come (seconds apart), instead of back to back: every wake-up is then
    slower (on this VM each thread and the peer wake from an idle CPU). No goal
    is set; the whole request's row says how far above reported it is."""
    def paced_get(on: ProbeClient, path: str) -> tuple[float, str]:
        time.sleep(PACE)
        started = time.perf_counter()
        body = on.get(path)
        seconds = time.perf_counter() - started
        assert metric(body, "probe_success") == 1, body
        return seconds, body

    title = f"requests {PACE * 1000:g} ms apart"
    whole: list[float] = []
    reported: list[float] = []
    for _ in range(count):
        seconds, body = paced_get(client, "/probe?target=orthanc&module=echo")
        whole.append(seconds)
        reported.append(metric(body, "probe_duration_seconds"))
    rows.append(Row(title, "orthanc: exporter, reported", reported))
    overhead = median_ms(whole) - median_ms(reported)
    rows.append(Row(title, "orthanc: exporter, whole /probe", whole,
                    goal=f"reported + {overhead:.3f} ms"))
    ours: list[float] = []
    theirs: list[float] = []
    with blackbox_client(workdir, orthanc_port) as blackbox:
        for _ in range(count):
            ours.append(paced_get(client, "/probe?target=orthanc&module=tcp")[0])
            if blackbox is not None:
                theirs.append(paced_get(*blackbox)[0])
    rows.append(Row(title, "tcp: dicom-exporter, whole /probe", ours))
    if theirs:
        rows.append(Row(title, "tcp: prometheus-blackbox-exporter", theirs))


def detection(rows: list[Row]) -> None:
    """The full stack with the shipped defaults: Z97117 stopped until the pager hears."""
    from benchmarks.detection import measure

    stages, flapped = measure(1, 0)
    for name, seconds in stages.items():
        goal, met = ("<= 90 s", seconds[0] <= 90) if name == "pager notified" else ("", None)
        rows.append(Row("detection, shipped defaults", f"Z97117 down: {name}", seconds,
                        unit="s", goal=goal, met=met))
    rows.append(Row("detection, shipped defaults", "Z83680 away 10 s: paged",
                    [1.0 if flapped else 0.0], unit="(1 = yes)", goal="0", met=not flapped))


def print_table(rows: list[Row]) -> None:
    header = ["benchmark", "subject", "median ms", "p99 ms", "n", "goal", "met"]
    table = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for index, line in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
              + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def measured(rows: list[Row], benchmark: str, action: Callable[[], object]) -> None:
    """Run one measurement; if it cannot finish, its row says why and the others still print."""
    try:
        action()
    except Exception as exc:  # a benchmark that fails must not hide the other rows
        rows.append(Row(benchmark, "not measured", [], unit="",
                        goal=f"{type(exc).__name__}: {exc}"[:160], met=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, one load round")
    parser.add_argument("--detection", action="store_true",
                        help="also time failure to page on the full stack (about 3 minutes)")
    add_option(parser)
    args = parser.parse_args()
    count = 200 if args.quick else 1000
    server = chosen(args)
    rows: list[Row] = []
    try:
        run_all(rows, args.quick, args.detection, count, server)
    finally:
        print(f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
              f"{os.cpu_count()} cores, {platform.system()} {platform.release()}")
        print(f"Exporter under: {server.description}")
        print(f"The benchmark itself, the in-process throughput row and --detection's full "
              f"stack under: {sys.executable} (Python {platform.python_version()})")
        print_table(rows)


def run_all(rows: list[Row], quick: bool, with_detection: bool, count: int,
            server: Interpreter) -> None:
    with tempfile.TemporaryDirectory(prefix="dicom-bench-") as folder:
        workdir = Path(folder)
        (workdir / "orthanc").mkdir()
        (workdir / "storescp").mkdir()
        orthanc, orthanc_process = start_orthanc(workdir / "orthanc")
        storescp_port, storescp_process = start_storescp(workdir / "storescp")
        listener, silence = silent_listener()
        try:
            config_file = workdir / "exporter.yml"
            config_file.write_text(yaml.safe_dump(exporter_config(
                orthanc.dicom_port, storescp_port, listener.getsockname()[1])))
            with exporter_process(config_file, server.executable) as (port, process):
                client = ProbeClient(port)
                for _ in range(WARM_UP):
                    client.get("/probe?target=orthanc&module=echo")
                idle: list[float] = []
                measured(rows, "echo, full association", lambda: idle.extend(full_association(
                    rows, client, "orthanc", orthanc.dicom_port, "ORTHANC",
                    count, 20 if quick else 50)))
                if server.executable != sys.executable:
                    measured(rows, "echo, full association",
                             lambda: under_benchmark_python(rows, config_file, count))
                measured(rows, "echo, full association", lambda: full_association(
                    rows, client, "storescp", storescp_port, "STORESCP",
                    count // 5, 10 if quick else 30))
                measured(rows, "echo, open association", lambda: open_association(
                    rows, client, orthanc.dicom_port, count))
                measured(rows, "/probe?module=tcp, whole request", lambda: tcp_versus_blackbox(
                    rows, client, orthanc.dicom_port, 2 * count, workdir))
                measured(rows, f"requests {PACE * 1000:g} ms apart", lambda: paced(
                    rows, client, orthanc.dicom_port, count // 5 if quick else count // 3,
                    workdir))
                measured(rows, "300 idle + 300 slowloris connections",
                         lambda: idle_connections(rows, client, port, process, 300))
                measured(rows, f"{NON_READERS} clients never reading",
                         lambda: non_reading_clients(rows, client, port, process))
                measured(rows, f"{HEALTHY + SILENT} targets / {INTERVAL:g} s, {SILENT} silent",
                         lambda: load(rows, port, process, idle, 1 if quick else 2))
            measured(rows, "throughput, 2 cores",
                     lambda: throughput(rows, config_file, 3.0 if quick else 10.0))
            if with_detection:
                measured(rows, "detection, shipped defaults", lambda: detection(rows))
        finally:
            silence.set()
            listener.close()
            stop(storescp_process)
            stop(orthanc_process)


if __name__ == "__main__":
    main()
