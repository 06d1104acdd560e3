"""Detection time with the shipped settings: a link computer dies → a page.

Runs the full two-site stack (tools/stack.py: both exporters, both
Prometheus, the Alertmanager cluster) with the shipped intervals of
prometheus/prometheus.yml, the shipped `for:` and Alertmanager's group_wait.
Each round starts a fresh stack, stops the simulated Z97117 and prints how
long until the alert is firing in a Prometheus, until an Alertmanager holds
it, and until the pager receiver got the notification (median and max over
the rounds).

In the same stack Z97117 then comes back and, as soon as its alert is resolved
in Prometheus and Alertmanager, stops again: the second outage's time to the
pager and to the staff on duty (Arkivet or LARS), from the second stop.

Then the blips, which must never page: Z83680 down for less than one probe
interval (one lost probe) and for 10 s. Each reports how many failed probes
Prometheus recorded (at least one, or the blip proved nothing) and whether a
page came.

Run: .venv/bin/python -m benchmarks.detection [--rounds 5] [--blips 2]
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
from functools import partial
from typing import Any

import yaml

from exporter.config.strict import parse_duration
from tools.generate import example
from tools.stack import ROOT, Stack

M = example()
LINK_INTERVAL = parse_duration(M.probe_interval_by_role["link_computer"])
# The shipped Alertmanager's wait before a new group's first notification.
GROUP_WAIT = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text("utf-8"))[
    "route"]["group_wait"]
# Long enough for a page that was going to come: the `for:`, one evaluation,
# group_wait and the second Alertmanager's peer timeout, with room to spare.
# Who the second outage must reach: the administrators' pager and the staff on duty.
SECOND_RECEIVERS = {"second outage: pager notified": ("admin-pager",),
                    "second outage: staff notified": ("arkivet", "lars")}
QUIET_WAIT = parse_duration(M.for_by_role["link_computer"]) + parse_duration(GROUP_WAIT) + 35


def get(url: str, **params: str) -> Any:
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
    for site in stack.sites.values():
        alerts = get(f"{site.prometheus_url}/api/v1/alerts")["data"]["alerts"]
        if any(a["labels"]["alertname"] == "DicomLinkComputerDown"
               and a["labels"].get("target") == target and a["state"] == "firing"
               for a in alerts):
            return True
    return False


def in_alertmanager(stack: Stack, target: str) -> bool:
    for site in stack.sites.values():
        alerts = get(f"{site.alertmanager_url}/api/v2/alerts")
        if any(a["labels"]["alertname"] == "DicomLinkComputerDown"
               and a["labels"].get("target") == target for a in alerts):
            return True
    return False


def pages(stack: Stack, target: str, status: str = "firing",
          receivers: tuple[str, ...] = ("admin-pager",)) -> int:
    """How many notifications of `status` about `target` reached any of `receivers`."""
    return sum(1 for n in stack.sink.notifications(None, "DicomLinkComputerDown", target=target)
               if n.status == status and n.receiver in receivers)


def paged(stack: Stack, target: str) -> bool:
    return pages(stack, target) > 0


def more_pages(stack: Stack, target: str, receivers: tuple[str, ...], than: int) -> bool:
    return pages(stack, target, receivers=receivers) > than


def second_outage(stack: Stack, target: str) -> dict[str, float]:
    """The target comes back; as soon as its alert is resolved in Prometheus and in
    Alertmanager (before the resolved notification: Alertmanager sends that on the
    group's next flush) it stops again: seconds until the new outage's page, to the
    pager and to the staff, from the second stop."""
    stack.peers.set_state(target, "up")
    if wait(lambda: not firing_in_prometheus(stack, target)
            and not in_alertmanager(stack, target), 300) is None:
        return {}
    before = {who: pages(stack, target, receivers=receivers)
              for who, receivers in SECOND_RECEIVERS.items()}
    started = time.monotonic()
    stack.peers.set_state(target, "down")
    out = {}
    for who, receivers in SECOND_RECEIVERS.items():
        at = wait(partial(more_pages, stack, target, receivers, before[who]), 400)
        out[who] = (at - started) if at else float("nan")
    return out


def failed_probes(stack: Stack, target: str, seconds: float) -> int:
    """Failed reachability probes of `target` in the last `seconds`, both vantage points,
    as Växjö's Prometheus recorded them."""
    selector = (f'probe_success{{job="{M.link_computer_probe_job}", target="{target}"}}'
                f"[{int(seconds)}s]")
    result = get(f"{stack.prometheus_url}/api/v1/query", query=selector)["data"]["result"]
    return sum(1 for series in result for _, value in series["values"] if value == "0")


def started_and_settled() -> Stack:
    stack = Stack.start()
    up = 'probe_success{target="z97117", prober="tcp"} == 1'
    wait(lambda: len(get(f"{stack.prometheus_url}/api/v1/query", query=up)["data"]
                     ["result"]) == 2, 120)
    time.sleep(30)  # the Alertmanager cluster settles, the first scrapes are in
    return stack


def measure(rounds: int, blips: int) -> tuple[dict[str, list[float]], list[tuple[str, int, bool]]]:
    rows: dict[str, list[float]] = {"firing in Prometheus": [], "in Alertmanager": [],
                                    "pager notified": [],
                                    **{name: [] for name in SECOND_RECEIVERS}}
    blip_rows: list[tuple[str, int, bool]] = []
    # A fresh stack each round for the first outage; then, in the same stack,
    # a second outage that starts as soon as the first one resolved: its alert
    # group still exists in Alertmanager.
    for _ in range(rounds):
        stack = started_and_settled()
        try:
            started = time.monotonic()
            stack.peers.set_state("z97117", "down")
            for name, check in (("firing in Prometheus", firing_in_prometheus),
                                ("in Alertmanager", in_alertmanager), ("pager notified", paged)):
                at = wait(partial(check, stack, "z97117"), 300)
                rows[name].append((at - started) if at else float("nan"))
            second = second_outage(stack, "z97117")
            for name in SECOND_RECEIVERS:
                rows[name].append(second.get(name, float("nan")))
        finally:
            stack.stop()
    stack = started_and_settled()
    try:
        for name, seconds in ((f"down {LINK_INTERVAL * 0.8:g} s (one lost probe)",
                               LINK_INTERVAL * 0.8), ("down 10 s", 10.0)):
            for _ in range(blips):
                started = time.monotonic()
                stack.peers.set_state("z83680", "down")
                time.sleep(seconds)
                stack.peers.set_state("z83680", "up")
                came = wait(lambda: paged(stack, "z83680"), QUIET_WAIT) is not None
                failed = failed_probes(stack, "z83680", time.monotonic() - started + 5)
                blip_rows.append((name, failed, came))
    finally:
        stack.stop()
    return rows, blip_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blips", type=int, default=2, help="runs of each blip case")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # one line per failed probe is not wanted here
    rows, blips = measure(args.rounds, args.blips)
    print(f"Detection time, both sites up, shipped settings (link computers probed every "
          f"{M.probe_interval_by_role['link_computer']}, rules every {M.evaluation_interval}, "
          f"for: {M.for_by_role['link_computer']}, group_wait {GROUP_WAIT}), Z97117 stopped:")
    print("| stage | median s | max s | rounds |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        seen = [v for v in values if v == v]  # NaN: not within the wait
        if seen:
            print(f"| {name} | {statistics.median(seen):.1f} | {max(seen):.1f} | "
                  f"{len(seen)} of {len(values)} ({', '.join(f'{v:.1f}' for v in seen)}) |")
        else:
            print(f"| {name} | never | | 0 of {len(values)} |")
    print()
    print("| Z83680 blip | failed probes recorded (tcp and echo, both vantage points) | paged |")
    print("|---|---|---|")
    for name, failed, came in blips:
        print(f"| {name} | {failed} | {'YES' if came else 'no'} |")


if __name__ == "__main__":
    main()
