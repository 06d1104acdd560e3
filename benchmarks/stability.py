"""10,000 failing probes of mixed reasons: do threads, sockets and memory come back?

Uses the hostile peers of tests/support/stability.py (garbage, RST, rejection,
A-ABORT, silence, a PDU header and a stall, a closed port), run in a child
process so that only the exporter is measured, probes them on eight threads
and prints the exporter's threads, open file descriptors and RSS before,
after and in between.

Run: .venv/bin/python -m benchmarks.stability [--probes N]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time
from multiprocessing.connection import Connection

from exporter.app import Exporter
from tests.support.configs import make_config
from tests.support.realpeers import free_port
from tests.support.stability import hostile_peers, resources, run_failures


def serve_peers(connection: Connection) -> None:
    """In a child process: the hostile peers, so their memory is not counted."""
    peers = hostile_peers()
    connection.send({name: peer.port for name, peer in peers.items()})
    connection.recv()  # until the parent is done
    for peer in peers.values():
        peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=10_000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # one line per failed probe is not wanted here
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=serve_peers, args=(child,))
    process.start()
    ports = parent.recv()
    targets = {name: {"port": port, "ae_title": "PEER", "modules": ["echo"]}
               for name, port in ports.items()}
    targets["closed"] = {"port": free_port(), "ae_title": "PEER", "modules": ["echo"]}
    exporter = Exporter(make_config(targets, {"echo": {"prober": "echo", "timeout": "300ms"}}))
    rounds = max(1, args.probes // len(targets))
    print("| after probes | threads | open fds | RSS MiB | seconds |")
    print("|---|---|---|---|---|")
    try:
        run_failures(exporter, 3)
        started = time.monotonic()
        threads, fds, rss = resources()
        print(f"| 0 (baseline) | {threads} | {fds} | {rss:.1f} | 0 |")
        done = 0
        for step in range(5):
            chunk = rounds // 5 + (rounds % 5 if step == 4 else 0)
            run_failures(exporter, chunk)
            done += chunk * len(targets)
            time.sleep(0.5)  # let the last timed-out connections close
            threads, fds, rss = resources()
            print(f"| {done} | {threads} | {fds} | {rss:.1f} | "
                  f"{time.monotonic() - started:.0f} |")
    finally:
        parent.send("stop")
        process.join(timeout=30)


if __name__ == "__main__":
    main()
