"""Many failing probes of mixed reasons leave no threads, sockets or memory behind.

benchmarks/stability.py runs the same with 10,000 probes and prints figures.
"""

from __future__ import annotations

from exporter.app import Exporter
from exporter.reasons import Reason
from tests.support.configs import make_config
from tests.support.realpeers import free_port
from tests.support.stability import hostile_peers, resources, run_failures, settle

ROUNDS = 40  # x 7 kinds of failure = 280 probes


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
