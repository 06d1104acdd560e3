"""The same exporter under two interpreters, side by side: what the build costs.

Two `dicom-exporter serve` processes, one under the server's interpreter
(`.venv-server`, see benchmarks/server_python.py) and one under this
benchmark's own (the development venv's), probe one Orthanc with the same
config. Requests go in blocks of 250 to one exporter, then 250 to the other,
the order swapped every round: with requests alternating one by one, work one
exporter does after its answer would land in the other's time. For each
exporter: the whole echo /probe request, the reported duration, the overhead
(whole minus reported, the goal in benchmarks/run.py) and the exporter's CPU
per request from /proc/<pid>/stat.

Run: .venv/bin/python -m benchmarks.interpreters [--rounds 4] [--requests 3000]
     [--python PYTHON3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from benchmarks.measure import exporter_process, median_ms
from benchmarks.run import ProbeClient, echo_requests
from benchmarks.server_python import Interpreter, add_option, chosen, ours
from tests.support.realpeers import LOOPBACK, MONITOR_AE, start_orthanc, stop

BLOCK = 250
WARM_UP = 300
TICKS = os.sysconf("SC_CLK_TCK")
PATH = "/probe?target=orthanc&module=echo"


@dataclass
class Exporter:
    name: str
    client: ProbeClient
    pid: int
    whole: list[float] = field(default_factory=list)
    reported: list[float] = field(default_factory=list)
    user: float = 0.0  # seconds of CPU over the timed requests
    system: float = 0.0


def cpu(pid: int) -> tuple[float, float]:
    """(user, system) seconds the process has used, its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def block(exporter: Exporter, count: int) -> tuple[list[float], list[float]]:
    user, system = cpu(exporter.pid)
    reported, whole, _ = echo_requests(exporter.client, "orthanc", count)
    after = cpu(exporter.pid)
    exporter.user += after[0] - user
    exporter.system += after[1] - system
    return whole, reported


def compare(interpreters: list[Interpreter], rounds: int, requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dicom-interpreters-") as folder, ExitStack() as stack:
        workdir = Path(folder)
        (workdir / "orthanc").mkdir()
        orthanc, orthanc_process = start_orthanc(workdir / "orthanc")
        stack.callback(stop, orthanc_process)
        config_file = workdir / "exporter.yml"
        config_file.write_text(yaml.safe_dump({
            "modules": {"echo": {"prober": "echo", "timeout": "5s",
                                 "calling_ae_title": MONITOR_AE}},
            "targets": {"orthanc": {"host": LOOPBACK, "port": orthanc.dicom_port,
                                    "ae_title": "ORTHANC", "modules": ["echo"],
                                    "labels": {"site": "vaxjo", "role": "partner"}}},
        }))
        exporters = []
        for interpreter in interpreters:
            port, process = stack.enter_context(
                exporter_process(config_file, interpreter.executable))
            exporters.append(Exporter(interpreter.description, ProbeClient(port), process.pid))
        for exporter in exporters:
            for _ in range(WARM_UP):
                exporter.client.get(PATH)
        print("| round | exporter under | whole ms | reported ms | overhead ms "
              "| user µs/request | system µs/request |")
        print("|---|---|---|---|---|---|---|")
        for round_number in range(rounds):
            order = exporters if round_number % 2 == 0 else exporters[::-1]
            samples: dict[str, tuple[list[float], list[float]]] = {
                exporter.name: ([], []) for exporter in exporters}
            cpu_before = {exporter.name: (exporter.user, exporter.system)
                          for exporter in exporters}
            for _ in range(requests // BLOCK):
                for exporter in order:
                    whole, reported = block(exporter, BLOCK)
                    samples[exporter.name][0].extend(whole)
                    samples[exporter.name][1].extend(reported)
            for exporter in exporters:
                whole, reported = samples[exporter.name]
                exporter.whole.extend(whole)
                exporter.reported.extend(reported)
                before = cpu_before[exporter.name]
                print(line(str(round_number), exporter.name, whole, reported,
                           exporter.user - before[0], exporter.system - before[1]), flush=True)
        for exporter in exporters:
            print(line("all", exporter.name, exporter.whole, exporter.reported,
                       exporter.user, exporter.system))


def line(label: str, name: str, whole: list[float], reported: list[float], user: float,
         system: float) -> str:
    """One table row: medians in ms, CPU seconds turned into µs per request."""
    overhead = median_ms(whole) - median_ms(reported)
    return (f"| {label} | {name} | {median_ms(whole):.3f} | {median_ms(reported):.3f} | "
            f"+{overhead:.3f} | {user / len(whole) * 1e6:.0f} | "
            f"{system / len(whole) * 1e6:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="each round swaps the order")
    parser.add_argument("--requests", type=int, default=3000,
                        help=f"per exporter and round, in blocks of {BLOCK}")
    add_option(parser)
    args = parser.parse_args()
    server = chosen(args)
    if server.executable == sys.executable:
        sys.exit(f"interpreters: nothing to compare, the exporter would run under "
                 f"{server.description}")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}; {max(args.rounds, 1)} rounds of "
          f"{max(args.requests, BLOCK)} requests per exporter")
    compare([server, ours("the benchmark's own")], max(args.rounds, 1), max(args.requests, BLOCK))


if __name__ == "__main__":
    main()
