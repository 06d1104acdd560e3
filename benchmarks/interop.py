"""Interoperability, printed as two tables: peer x probe outcome, and echo latency.

Starts every peer of the catalogue in tests/support/realpeers.py on 127.0.0.1
(dcmtk storescp in its documented modes, dcmqrscp, wlmscpfs, Orthanc plain, as
Debian runs it and with DICOM TLS, pynetdicom's apps), one after the other, and
in one run per peer:

  runs the interop matrix (echo, negotiate, store, the rejection paths) and
  prints each outcome with the phase it failed in;
  times a C-ECHO over a full association: the exporter's reported duration,
  its whole /probe request and its C-ECHO phase; the same prober with
  TCP_QUICKACK switched off (how it measured before issue 12); plain
  pynetdicom (associate, echo, release); dcmtk's echoscu as a process.

Peers "as shipped" have Nagle on (no TCP_NODELAY): with our delayed ACK that
cost about 42 ms per echo; the check at the end compares each with the same
peer started with TCP_NODELAY=1.

Run: .venv/bin/python -m benchmarks.interop [--quick]
Timing goals live here, as printed figures, never in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from benchmarks.measure import median_ms, metric, timed
from exporter.app import Exporter
from exporter.dicom.timed_io import TimedIO
from exporter.web import server as web_server
from tests.support.configs import make_config
from tests.support.pki import make_ca, make_cert
from tests.support.realpeers import (
    INTEROP_PEERS,
    INTEROP_PROBES,
    LOOPBACK,
    MONITOR_AE,
    RunningPeer,
    interop_peer,
    interop_probe,
    interop_probes_for,
    outcome,
    storescp_peer,
)

LATENCY_COLUMNS = [
    "peer", "reported", "whole /probe", "C-ECHO phase", "reported, no QUICKACK",
    "plain pynetdicom", "echoscu process",
]

NAGLE_COLUMNS = ["peer", "reported", "whole /probe", "reported, no QUICKACK",
                 "whole /probe, no QUICKACK", "goal", "met"]


def ms(samples: list[float]) -> str:
    return f"{median_ms(samples):.2f}" if samples else "-"


def tls_block(pki: Path) -> dict[str, str]:
    return {"ca_file": str(pki / "ca.crt"), "server_name": "localhost",
            "cert_file": str(pki / "client.crt"), "key_file": str(pki / "client.key")}


@contextlib.contextmanager
def no_quickack() -> Iterator[None]:
    """The prober as it was: delayed ACKs left to the kernel."""
    original = TimedIO._ack_now

    def kernel_acks(self: TimedIO) -> None:
        self._owe_ack = False

    setattr(TimedIO, "_ack_now", kernel_acks)  # noqa: B010 (mypy refuses assigning a method)
    try:
        yield
    finally:
        setattr(TimedIO, "_ack_now", original)  # noqa: B010


def exporter_echoes(peer: RunningPeer, pki: Path, count: int) -> dict[str, list[float]]:
    target: dict[str, object] = {"port": peer.port, "ae_title": peer.ae_title}
    if peer.tls:
        target["tls"] = tls_block(pki)
    config = make_config({"peer": target},
                         {"echo": {"prober": "echo", "timeout": "5s",
                                   "calling_ae_title": MONITOR_AE}})
    exporter = Exporter(config)
    server, _ = web_server.start(exporter, (LOOPBACK, 0))
    connection = http.client.HTTPConnection(LOOPBACK, server.server_address[1], timeout=30)
    found: dict[str, list[float]] = {"reported": [], "whole": [], "dimse": [], "before": []}
    try:
        def scrape() -> str:
            started = time.perf_counter()
            connection.request("GET", "/probe?target=peer&module=echo")
            body = connection.getresponse().read().decode()
            found["whole"].append(time.perf_counter() - started)
            return body

        scrape()  # warm up
        found["whole"].clear()
        for _ in range(count):
            body = scrape()
            if metric(body, "probe_success") != 1:
                raise RuntimeError(f"echo to {peer.name} failed:\n{body}")
            found["reported"].append(metric(body, "probe_duration_seconds"))
            found["dimse"].append(
                metric(body, 'probe_dicom_phase_duration_seconds{phase="dimse"}'))
        with no_quickack():
            for _ in range(count):
                report = exporter.probe("peer", "echo")
                found["before"].append(report.duration)
    finally:
        connection.close()
        server.shutdown()
        server.server_close()
    return found


def pynetdicom_echoes(peer: RunningPeer, pki: Path, count: int) -> list[float]:
    ae = AE(ae_title=MONITOR_AE)
    ae.add_requested_context(Verification)
    tls_args = None
    if peer.tls:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
        tls_args = (context, "localhost")

    def echo() -> None:
        association = ae.associate(LOOPBACK, peer.port, ae_title=peer.ae_title,
                                   tls_args=tls_args)
        if not association.is_established:
            raise RuntimeError(f"pynetdicom could not associate with {peer.name}")
        association.send_c_echo()
        association.release()

    return timed(echo, count)


def echoscu_runs(peer: RunningPeer, pki: Path, count: int) -> list[float]:
    echoscu = shutil.which("echoscu")
    if echoscu is None:
        return []
    command = [echoscu, "-aet", MONITOR_AE, "-aec", peer.ae_title]
    if peer.tls:
        command += ["+tls", str(pki / "client.key"), str(pki / "client.crt"),
                    "+cf", str(pki / "ca.crt")]
    command += [LOOPBACK, str(peer.port)]
    return timed(lambda: subprocess.run(command, check=True, capture_output=True), count)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    table = [header, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for index, line in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
              + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 echoes per figure, not 50")
    count = 10 if parser.parse_args().quick else 50
    outcomes: list[list[str]] = []
    latencies: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="dicom-interop-") as folder:
        pki = Path(folder) / "pki"
        pki.mkdir()
        make_ca(pki, "ca")
        make_cert(pki, "server", "ca")
        make_cert(pki, "client", "ca", cn=MONITOR_AE)
        for index, name in enumerate(INTEROP_PEERS):
            workdir = Path(folder) / f"peer{index}"
            workdir.mkdir()
            with interop_peer(name, workdir, pki) as peer:
                found = {probe: outcome(interop_probe(peer, probe, pki))
                         for probe in interop_probes_for(peer)}
                outcomes.append([name, *(found.get(probe, "") for probe in INTEROP_PROBES)])
                if found["echo"] != "ok":
                    latencies.append([name, *["-"] * (len(LATENCY_COLUMNS) - 1)])
                    continue
                ours = exporter_echoes(peer, pki, count)
                latencies.append([
                    name, ms(ours["reported"]), ms(ours["whole"]),
                    ms(ours["dimse"]), ms(ours["before"]),
                    ms(pynetdicom_echoes(peer, pki, count)),
                    ms(echoscu_runs(peer, pki, count)),
                ])
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print()
    print_table(["peer", *INTEROP_PROBES], outcomes)
    print()
    print(f"C-ECHO over a full association, median ms of {count} (storescp with --fork):")
    print_table(LATENCY_COLUMNS, latencies)
    print()
    print(f"As shipped (Nagle on) against TCP_NODELAY=1, interleaved, median ms of {4 * count}:")
    print_table(NAGLE_COLUMNS, nagle_comparison(4 * count))


def scrape(connection: http.client.HTTPConnection, target: str,
           into: dict[str, list[float]], reported: str, whole: str) -> None:
    started = time.perf_counter()
    connection.request("GET", f"/probe?target={target}&module=echo")
    body = connection.getresponse().read().decode()
    into[whole].append(time.perf_counter() - started)
    into[reported].append(metric(body, "probe_duration_seconds"))


def pair(shipped: str) -> dict[str, Callable[[Path], contextlib.AbstractContextManager[Any]]]:
    """The peer as shipped and with TCP_NODELAY=1; storescp without a fork per
    association, whose cost on a busy machine would drown a 1 ms difference."""
    if shipped == "storescp":
        return {shipped: lambda workdir: storescp_peer(fork=False)(workdir, None),
                f"{shipped} TCP_NODELAY=1":
                    lambda workdir: storescp_peer(nodelay=True, fork=False)(workdir, None)}
    return {name: partial(interop_peer, name)
            for name in (shipped, f"{shipped} TCP_NODELAY=1")}


def nagle_comparison(count: int) -> list[list[str]]:
    """Both starts of one peer at once, probed in turn, so load hits both alike."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="dicom-nagle-") as folder:
        for shipped in ("storescp", "Orthanc"):
            nodelay = f"{shipped} TCP_NODELAY=1"
            with contextlib.ExitStack() as stack:
                peers = {name: stack.enter_context(start(Path(tempfile.mkdtemp(dir=folder))))
                         for name, start in pair(shipped).items()}
                config = make_config(
                    {f"peer{index}": {"port": peer.port, "ae_title": peer.ae_title}
                     for index, peer in enumerate(peers.values())},
                    {"echo": {"prober": "echo", "timeout": "5s", "calling_ae_title": MONITOR_AE}})
                exporter = Exporter(config)
                server, _ = web_server.start(exporter, (LOOPBACK, 0))
                stack.callback(server.server_close)
                stack.callback(server.shutdown)
                connection = http.client.HTTPConnection(LOOPBACK, server.server_address[1])
                stack.callback(connection.close)
                found: dict[str, dict[str, list[float]]] = {
                    name: {key: [] for key in ("reported", "whole", "before", "whole before")}
                    for name in peers}
                for _ in range(count):
                    for index, name in enumerate(peers):
                        scrape(connection, f"peer{index}", found[name], "reported", "whole")
                with no_quickack():
                    for _ in range(count // 4):
                        for index, name in enumerate(peers):
                            scrape(connection, f"peer{index}", found[name], "before",
                                   "whole before")
            gap = statistics.median(found[shipped]["reported"]) - statistics.median(
                found[nodelay]["reported"])
            for name in peers:
                figures = found[name]
                goal, met = "", ""
                if name == shipped:
                    goal = f"within 1 ms of {nodelay} ({gap * 1000:+.2f})"
                    met = "yes" if abs(gap) <= 0.001 else "NO"
                shown = f"{name}, single process" if name.startswith("storescp") else name
                rows.append([shown, ms(figures["reported"]), ms(figures["whole"]),
                             ms(figures["before"]), ms(figures["whole before"]),
                             goal, met])
    return rows


if __name__ == "__main__":
    main()
