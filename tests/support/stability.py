"""Peers failing in mixed ways and a resource reading: for the stability test and benchmark."""

from __future__ import annotations

import gc
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from exporter.app import Exporter
from exporter.reasons import Reason
from tests.support.hostile import ScriptedPeer, read_pdu, reject_association, reset, send_abort


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
    def garbage(peer: ScriptedPeer, conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"\x00garbage" * 8)

    def rst(peer: ScriptedPeer, conn: socket.socket) -> None:
        read_pdu(conn)
        reset(conn)

    def abort(peer: ScriptedPeer, conn: socket.socket) -> None:
        read_pdu(conn)
        send_abort(conn)

    def silent(peer: ScriptedPeer, conn: socket.socket) -> None:
        read_pdu(conn)
        drain(conn)

    def header_stall(peer: ScriptedPeer, conn: socket.socket) -> None:
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
    """Every target `rounds` times, as many at once as the exporter allows of one
    peer: more threads than that would let the slow targets (silent, stalled)
    pile up past the per-target limit whenever the fast ones finish early, and
    the probes refused as Overloaded would be counted as failures."""
    names = [t for t in exporter.config.targets] * rounds
    seen: dict[Reason | None, int] = {}
    with ThreadPoolExecutor(max_workers=exporter.limits.per_target) as pool:
        for report in pool.map(lambda name: exporter.probe(name, "echo"), names):
            seen[report.reason] = seen.get(report.reason, 0) + 1
    return seen
