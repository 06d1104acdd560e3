"""Detection time with the shipped defaults: a link computer dies → a page.

Runs the full stack (exporter/stack.py) with the shipped 15 s scrape and
evaluation interval, the shipped `for:` and Alertmanager's group_wait, stops
the simulated Z97117 and prints how long until the alert is firing in
Prometheus, until Alertmanager holds it, and until the pager receiver got the
notification. It also stops one probe's worth of Z83680 (down for less than a
scrape interval) and reports whether that page came: it must not.

Run: .venv/bin/python -m benchmarks.detection [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import urllib.parse
import urllib.request
from collections.abc import Callable

from tools.stack import SHIPPED_INTERVAL, Stack


def get(url: str, **params: str) -> object:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(url + query, timeout=10) as answer:
        return json.load(answer)


def wait(check: Callable[[], object], timeout: float) -> float | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return time.monotonic()
        time.sleep(0.2)
    return None


def firing_in_prometheus(stack: Stack, target: str) -> bool:
    alerts = get(f"{stack.prometheus_url}/api/v1/alerts")["data"]["alerts"]
    return any(a["labels"]["alertname"] == "DicomLinkComputerDown"
               and a["labels"].get("target") == target and a["state"] == "firing"
               for a in alerts)


def in_alertmanager(stack: Stack, target: str) -> bool:
    alerts = get(f"{stack.alertmanager_url}/api/v2/alerts")
    return any(a["labels"]["alertname"] == "DicomLinkComputerDown"
               and a["labels"].get("target") == target for a in alerts)


def paged(stack: Stack, target: str) -> bool:
    return any(n.receiver == "admin-pager" and any(
        a["labels"]["alertname"] == "DicomLinkComputerDown"
        and a["labels"].get("target") == target and a["status"] == "firing"
        for a in n.alerts) for n in stack.sink.received)


def resolved(stack: Stack, target: str) -> bool:
    return any(n.receiver == "admin-pager" and n.status == "resolved" and any(
        a["labels"].get("target") == target for a in n.alerts) for n in stack.sink.received)


def measure(rounds: int) -> tuple[dict[str, list[float]], bool]:
    """Seconds from stopping Z97117 to each stage, per round; and whether a
    single lost probe of Z83680 paged (it must not)."""
    rows: dict[str, list[float]] = {"firing in Prometheus": [], "in Alertmanager": [],
                                    "pager notified": []}
    stack = Stack.start(SHIPPED_INTERVAL)
    try:
        up = 'probe_success{target="z97117"} == 1'
        wait(lambda: get(f"{stack.prometheus_url}/api/v1/query", query=up)["data"]["result"],
             120)
        for _ in range(rounds):
            started = time.monotonic()
            stack.peers.set_state("z97117", "down")
            for name, check in (("firing in Prometheus", firing_in_prometheus),
                                ("in Alertmanager", in_alertmanager), ("pager notified", paged)):
                at = wait(lambda check=check: check(stack, "z97117"), 300)
                rows[name].append((at - started) if at else float("nan"))
            stack.peers.set_state("z97117", "up")
            # Until the resolved notice went out, Alertmanager would treat a new
            # outage as the one it already paged for: wait for it between rounds.
            wait(lambda: resolved(stack, "z97117"), 400)
            stack.sink.received.clear()
        # One lost probe: Z83680 down for 10 s, shorter than one scrape interval.
        stack.peers.set_state("z83680", "down")
        time.sleep(10)
        stack.peers.set_state("z83680", "up")
        flapped = wait(lambda: paged(stack, "z83680"), 120) is not None
    finally:
        stack.stop()
    return rows, flapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # one line per failed probe is not wanted here
    rows, flapped = measure(args.rounds)
    print(f"Detection time with the shipped defaults (scrape and evaluation {SHIPPED_INTERVAL}, "
          "for: 45s, group_wait 10s), Z97117 stopped:")
    print("| stage | median s | max s | rounds |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        seen = [v for v in values if v == v]  # NaN: not within the wait
        if seen:
            print(f"| {name} | {statistics.median(seen):.1f} | {max(seen):.1f} | "
                  f"{len(seen)} of {len(values)} |")
        else:
            print(f"| {name} | never | | 0 of {len(values)} |")
    print(f"Z83680 down for 10 s (one lost probe) paged: {'YES' if flapped else 'no'}")


if __name__ == "__main__":
    main()
