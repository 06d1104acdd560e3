"""Many failing probes of mixed reasons leave no threads, sockets or memory behind.

benchmarks/stability.py runs the same with 10,000 probes and prints figures.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from exporter.app import Exporter
from exporter.reasons import Reason
from tests.conftest import free_port, make_config
from tests.hostile import ScriptedPeer, read_pdu, reject_association, reset, send_abort

ROUNDS = 40  # x 7 kinds of failure = 280 probes


def resources() -> tuple[int, int, float]:
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return threading.active_count(), fds, rss / 1024


def drain(conn: socket.socket) -> None:
    """Say nothing until the probe gives up and closes (or aborts)."""
    conn.settimeout(10)
    while conn.recv(4096):
        pass


def settle(peers: dict[str, ScriptedPeer]) -> None:
    for peer in peers.values():
        peer.join_connections(timeout=10)


def hostile_peers() -> dict[str, ScriptedPeer]:
    def garbage(peer, conn):
        conn.recv(4096)
        conn.sendall(b"\x00garbage" * 8)

    def rst(peer, conn):
        read_pdu(conn)
        reset(conn)

    def abort(peer, conn):
        read_pdu(conn)
        send_abort(conn)

    def silent(peer, conn):
        read_pdu(conn)
        drain(conn)

    def header_stall(peer, conn):
        read_pdu(conn)
        conn.sendall(b"\x02\x00\x00\x00\x01\x00")
        drain(conn)

    return {
        "garbage": ScriptedPeer(garbage, backlog=64),
        "rst": ScriptedPeer(rst, backlog=64),
        "rejected": ScriptedPeer(lambda p, c: reject_association(c, 1, 1, 3), backlog=64),
        "aborted": ScriptedPeer(abort, backlog=64),
        "silent": ScriptedPeer(silent, backlog=64),
        "header_stall": ScriptedPeer(header_stall, backlog=64),
    }


def run_failures(exporter: Exporter, rounds: int) -> dict[Reason | None, int]:
    names = [t for t in exporter.config.targets] * rounds
    seen: dict[Reason | None, int] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for report in pool.map(lambda name: exporter.probe(name, "echo"), names):
            seen[report.reason] = seen.get(report.reason, 0) + 1
    return seen


def test_failing_probes_return_threads_fds_and_memory_to_baseline() -> None:
    peers = hostile_peers()
    targets = {name: {"port": peer.port, "ae_title": "PEER", "modules": ["echo"]}
               for name, peer in peers.items()}
    targets["closed"] = {"port": free_port(), "ae_title": "PEER", "modules": ["echo"]}
    modules = {"echo": {"prober": "echo", "timeout": "300ms"}}
    exporter = Exporter(make_config(targets, modules))
    try:
        run_failures(exporter, 3)  # warm up caches and lazily created objects
        settle(peers)
        before = resources()
        seen = run_failures(exporter, ROUNDS)
        settle(peers)
        after = resources()
    finally:
        for peer in peers.values():
            peer.close()
    assert None not in seen, "every probe here must fail"
    assert set(seen) == {Reason.PROTOCOL_ERROR, Reason.RESET, Reason.REJECTED_CALLING_AE,
                         Reason.ABORTED, Reason.ASSOCIATION_TIMEOUT, Reason.REFUSED}
    assert sum(seen.values()) == ROUNDS * len(targets)
    threads, fds, rss = after
    assert threads <= before[0], f"threads {before[0]} -> {threads}"
    assert fds <= before[1], f"open fds {before[1]} -> {fds}"
    assert rss - before[2] < 8, f"RSS grew {rss - before[2]:.1f} MiB"
    assert exporter.stats.snapshot().in_flight == 0
