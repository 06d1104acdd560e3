"""Scenarios through the whole chain (issue 14): simulated peers, both sites'
exporters, real Prometheus with the shipped rules, clustered real
Alertmanagers with the shipped routing, and a sink per receiver.

The hand-written table of alerts/scenarios.py says what must arrive; here the
alerts come from real probes and real rule evaluation, not from the v2 API.
Link computers are probed and the rules evaluated every 3 s (the shipped
`for:`, group_wait and group_interval are kept, so a page takes as long as in
production once the probe has failed). Alertmanager decides office hours by
the real clock, so the stack pins the two time intervals to the scenario's
time of day. The tests share one stack and run in file order: the blip first,
on a quiet stack, then Z97117 dies (its resolved notifications would arrive a
group_interval later and would fall into any scenario after it).

Two clustered Alertmanagers deliver at least once, so a notification sent by
both is counted once here (same receiver, group and content); the sink
itself deduplicates nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import yaml

from alerts.scenarios import SCENARIOS
from exporter.config.strict import parse_duration
from tests.support.promstack import wait_until
from tests.support.twosites import cluster_formed, get_json, query, running_stack
from tools.stack import ROOT, Notification, Stack

pytestmark = pytest.mark.slow

INTERVAL = 3.0  # seconds between link-computer probes and rule evaluations here
Z97117_NIGHT = next(s for s in SCENARIOS if s.name == "Z97117 dies on a Saturday night")
# Saturday 03:00 in Stockholm, written by hand: outside office hours, no public
# holiday, so the routine's communicator is LARS ("LARS under jouren").
NIGHT = {"office_hours": False, "holidays": False}
COMMUNICATOR = "lars"
BLIP = 10.0  # seconds Z83680 is down


def shipped_alertmanager() -> dict:
    return yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text("utf-8"))


GROUP_WAIT = parse_duration(shipped_alertmanager()["route"]["group_wait"])


def link_computer_for() -> float:
    rules = yaml.safe_load((ROOT / "alerts" / "dicom.rules.yml").read_text("utf-8"))
    return next(parse_duration(rule["for"]) for group in rules["groups"]
                for rule in group["rules"] if rule.get("alert") == "DicomLinkComputerDown")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(tmp_path_factory, "fullstack", f"{INTERVAL:g}s",
                             resend_delay="2s", partner_interval="15s",
                             pinned_intervals=NIGHT)


def seen_up_from_both_sites(stack: Stack, target: str) -> None:
    """Both exporters' probes of `target` succeed, in both sites' Prometheus."""
    wait_until(lambda: cluster_formed(stack), 60, "the Alertmanager cluster to form")
    up = f'probe_success{{target="{target}", prober="tcp"}} == 1'
    for site in stack.sites.values():
        wait_until(lambda site=site: len(query(site.prometheus_url, up)) == 2, 120,
                   f"both vantage points seeing {target} up in {site.name}'s Prometheus")


def key(labels: dict[str, str]) -> str:
    """An alert's key in the scenario tables: route, target@site, site or instance."""
    if labels.get("route"):
        return labels["route"]
    if labels.get("target"):
        return f"{labels['target']}@{labels.get('site', '')}"
    return labels.get("site") or labels.get("instance", "")


def as_table_row(note: Notification) -> str:
    """A delivered notification in the form of an alerts/scenarios.py row."""
    firing = {key(a["labels"]): a["annotations"].get("next_step", "")
              for a in note.alerts if a["status"] == "firing"}
    resolved = sorted(key(a["labels"]) for a in note.alerts if a["status"] == "resolved")
    names = sorted({a["labels"]["alertname"] for a in note.alerts})
    return json.dumps({"receiver": note.receiver, "alertname": ",".join(names),
                       "alerts": firing, "resolved": resolved},
                      sort_keys=True, ensure_ascii=False)


def delivered_since(stack: Stack, since: float) -> list[Notification]:
    """Every notification after `since` (monotonic) but the dead man's switch's."""
    return [n for n in stack.sink.notifications() if n.received_at > since
            and n.receiver != "deadman"]


def firing_in_prometheus(prometheus_url: str, seconds: float) -> list[dict]:
    """Alerts but the Watchdog that fired at any time in the last `seconds`."""
    window = math.ceil(seconds)
    return query(prometheus_url, f'max_over_time(ALERTS{{alertstate="firing", '
                                 f'alertname!="Watchdog"}}[{window}s])')


def samples(prometheus_url: str, target: str, began: float) -> list[str]:
    """Every probe_success sample of `target` since a minute before `began`, as
    seconds after it: what a failed timing assertion needs to be explained."""
    window = math.ceil(time.time() - began) + 60
    return [f"{r['metric'].get('site')} {r['metric'].get('module')}: "
            + " ".join(f"{float(t) - began:+.1f}={v}" for t, v in r["values"])
            for r in query(prometheus_url, f'probe_success{{target="{target}"}}[{window}s]')]


def test_a_ten_second_blip_of_z83680_fails_probes_and_pages_nobody(stack: Stack) -> None:
    seen_up_from_both_sites(stack, "z83680")
    since, began = time.monotonic(), time.time()
    stack.peers.set_state("z83680", "down")
    try:
        time.sleep(BLIP)
    finally:
        stack.peers.set_state("z83680", "up")
    # Had the blip been long enough to page, the page would have been sent by
    # now: `for:` counted from the first failed evaluation, then group_wait.
    quiet_until = since + BLIP + link_computer_for() + GROUP_WAIT + 3 * INTERVAL
    time.sleep(max(0.0, quiet_until - time.monotonic()))
    window = math.ceil(time.time() - began) + 2 * INTERVAL
    for site in stack.sites.values():
        # Probes are 0 or 1: count minus sum is the number of failed probes.
        failed = query(site.prometheus_url,
                       f'sum(count_over_time(probe_success{{target="z83680"}}[{window:g}s])'
                       f' - sum_over_time(probe_success{{target="z83680"}}[{window:g}s]))')
        assert failed and float(failed[0]["value"][1]) >= 1, (site.name, failed)
        fired = firing_in_prometheus(site.prometheus_url, window)
        assert fired == [], (site.name, fired, samples(site.prometheus_url, "z83680", began))
    assert [as_table_row(n) for n in delivered_since(stack, since)] == []


def test_z97117_dies_at_night_and_exactly_the_table_arrives(stack: Stack) -> None:
    (stage,) = Z97117_NIGHT.stages
    assert datetime.fromisoformat(Z97117_NIGHT.when).strftime("%a %H") == "Sat 03"
    expected = {json.dumps(
        {"receiver": COMMUNICATOR if n.receiver == "communicators" else n.receiver,
         "alertname": n.alertname, "alerts": dict(n.alerts), "resolved": sorted(n.resolved)},
        sort_keys=True, ensure_ascii=False) for n in stage.expected}
    assert set(stage.down) == {"z97117"}  # what the simulated peers can do: refuse
    seen_up_from_both_sites(stack, "z97117")
    since, went_down = time.monotonic(), time.time()
    stack.peers.set_state("z97117", "down")
    try:
        def arrived() -> bool:
            rows = {as_table_row(n) for n in delivered_since(stack, since)}
            return expected <= rows or bool(rows - expected)
        wait_until(arrived, 180, "the notifications of the table (or one not in it)")
        # The second cluster member waits its peer timeout (15 s) before it
        # sends what the first may not have: give a duplicate or a straggler
        # that time to arrive, and to show up below.
        time.sleep(20)
        notes = delivered_since(stack, since)
        rows = {as_table_row(n) for n in notes}
        assert rows == expected, (f"missing: {sorted(expected - rows)}\n"
                                  f"not in the table: {sorted(rows - expected)}")
        # One notification per receiver and group, whichever member sent it.
        contents: dict[tuple[str, str], set[str]] = {}
        for note in notes:
            contents.setdefault((note.receiver, note.group_key), set()).add(as_table_row(note))
        assert all(len(c) == 1 for c in contents.values()), contents
        assert len(contents) == len(expected)
        # Nothing else is on its way: every alert Alertmanager would still
        # notify about is one of the table's.
        wanted = {(n.alertname, k) for n in stage.expected for k in n.alerts}
        for site in stack.sites.values():
            active = get_json(f"{site.alertmanager_url}/api/v2/alerts?active=true"
                              "&inhibited=false&silenced=false")
            pending = {(a["labels"]["alertname"], key(a["labels"]))  # type: ignore[index]
                       for a in active if a["labels"]["alertname"] != "Watchdog"}  # type: ignore
            assert pending == wanted, site.name
        for site in stack.sites.values():
            outage_is_recorded(site.prometheus_url, went_down)
    finally:
        stack.peers.set_state("z97117", "up")


def outage_is_recorded(prometheus_url: str, went_down: float) -> None:
    """The outage table's recording rules, from the shipped rules' real evaluation:
    Z97117 is out since the last site's first failed probe, to within an evaluation
    or two: of any probe the page reads (the CT negotiation may fail first), and
    no later than the first failed tcp or echo (the monthly report's start)."""
    window = math.ceil(time.time() - went_down) + 10

    def began(probers: str) -> float:
        """When the last site saw its first failure of these probes."""
        first: dict[str, float] = {}
        for series in query(prometheus_url, f'probe_success{{target="z97117", '
                                            f'prober=~"{probers}", '
                                            f'direction!="receive"}}[{window}s]'):
            failed = [float(t) for t, value in series["values"] if value == "0"]
            site = series["metric"]["site"]
            first[site] = min([*failed, first.get(site, math.inf)])
        assert sorted(first) == ["ljungby", "vaxjo"], first
        return max(first.values())
    (start,) = query(prometheus_url, 'target_reason:dicom_outage:start{target="z97117"}')
    (last,) = query(prometheus_url,
                    'target_reason:dicom_outage:last_evaluation{target="z97117"}')
    assert start["metric"]["reason"] == last["metric"]["reason"] == "refused", start
    # activeAt is whole seconds, from the first evaluation that read the sample.
    earliest, report = began(".+"), began("tcp|echo")
    assert earliest - 1 <= float(start["value"][1]) <= report + 3 * INTERVAL, (
        start, earliest, report)
    assert float(start["value"][1]) < float(last["value"][1]) <= time.time()
