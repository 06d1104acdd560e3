"""Monitoring that survives the loss of a site (issue 16).

Two sites on loopback through the real Debian programs (tools/stack.py): each
with its exporter, its Prometheus and its Alertmanager, the Alertmanagers one
cluster. The slow tests share one stack and run in file order: both sites up
first, then Växjö is lost (SIGKILL of its three processes), then Ljungby's
Prometheus too. Intervals are scaled down (3 s); the shipped timings are
measured in benchmarks/detection.py.

Alertmanager HA promises at-least-once delivery: should a gossip message be
late, both cluster members may send the same notification. So "one page" is
counted as distinct notifications per Alertmanager group key (same group key,
status and alerts = the same notification), never deduplicated by the sink.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from exporter.app import Exporter
from exporter.cli import main as cli
from exporter.config.strict import parse_duration
from exporter.web import runbooks
from exporter.web import server as web_server
from tests.support.configs import make_config
from tests.support.promstack import wait_until
from tests.support.realpeers import require
from tests.support.twosites import am_alerts, cluster_formed, query, running_stack
from tools.generate import example
from tools.stack import Notification, Stack

ROOT = Path(__file__).parent.parent
PROMETHEUS_EXAMPLE = ROOT / "prometheus" / "prometheus.yml"
WATCHDOG_REPEAT = 3.0  # seconds between Watchdog notifications in the test stack


# -- The shipped examples agree with the monitoring config (no programs) -------

def example_jobs() -> dict[str, dict]:
    document = yaml.safe_load(PROMETHEUS_EXAMPLE.read_text(encoding="utf-8"))
    return {job["job_name"]: job for job in document["scrape_configs"]}


def test_prometheus_example_probes_link_computers_at_their_own_cadence() -> None:
    m = example()
    document = yaml.safe_load(PROMETHEUS_EXAMPLE.read_text(encoding="utf-8"))
    jobs = example_jobs()
    assert set(jobs) == {m.probe_job, m.link_computer_probe_job, m.exporter_job}
    link = jobs[m.link_computer_probe_job]
    assert link["scrape_interval"] == m.probe_interval_by_role["link_computer"]
    assert "scrape_interval" not in jobs[m.probe_job]
    assert document["global"]["scrape_interval"] == m.probe_interval_by_role["partner"]
    assert document["global"]["scrape_interval"] == m.probe_interval_by_role["relay"]
    assert document["global"]["evaluation_interval"] == m.evaluation_interval
    # The same relabel rule splits the targets: kept by one job, dropped by the other.
    reachability = re.search(r'"(.*)"', m.reachability).group(1)
    split = {"source_labels": ["role", "prober", "direction"],
             "regex": f"link_computer;({reachability});"}
    assert {**split, "action": "keep"} in link["relabel_configs"]
    assert {**split, "action": "drop"} in jobs[m.probe_job]["relabel_configs"]


def test_a_link_computer_blip_of_ten_seconds_cannot_last_a_whole_for() -> None:
    # A 10 s outage fails at most ceil(10 / interval) + 1 probes, each seen by
    # the rules for one interval: the `for:` must be longer than that.
    m = example()
    interval = parse_duration(m.probe_interval_by_role["link_computer"])
    evaluation = parse_duration(m.evaluation_interval)
    wait = parse_duration(m.for_by_role["link_computer"])
    seen_failing = (-(-10 // interval) + 1) * interval
    assert evaluation <= interval
    assert wait > seen_failing
    assert wait >= 3 * interval  # and a single lost probe is far from it


def test_both_prometheus_send_to_both_alertmanagers_without_the_replica_label() -> None:
    document = yaml.safe_load(PROMETHEUS_EXAMPLE.read_text(encoding="utf-8"))
    assert "replica" in document["global"]["external_labels"]
    assert "site" not in document["global"]["external_labels"]
    assert {"action": "labeldrop", "regex": "replica"} in (
        document["alerting"]["alert_relabel_configs"])
    targets = document["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert len(targets) == 2 and any("vaxjo" in t for t in targets) and any(
        "ljungby" in t for t in targets)


def test_alertmanager_drop_in_clusters_with_both_sites() -> None:
    text = (ROOT / "examples" / "systemd" / "prometheus-alertmanager.service.d"
            / "dicom-monitor.conf").read_text(encoding="utf-8")
    peers = re.findall(r"--cluster\.peer=(\S+)", text)
    assert len(peers) == 2 and any("vaxjo" in p for p in peers) and any(
        "ljungby" in p for p in peers)


@pytest.mark.slow
def test_the_drop_ins_load_cleanly_over_the_debian_units(tmp_path: Path) -> None:
    units = ("prometheus.service", "prometheus-alertmanager.service")
    for unit in units:
        shutil.copy(Path("/lib/systemd/system") / unit, tmp_path / unit)
        shutil.copytree(ROOT / "examples" / "systemd" / f"{unit}.d", tmp_path / f"{unit}.d")
    result = subprocess.run(
        [require("systemd-analyze"), "verify", *(str(tmp_path / unit) for unit in units)],
        capture_output=True, text=True, env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
    )
    assert result.returncode == 0, result.stderr
    assert "dicom-monitor.conf" not in result.stderr  # an unknown key is only a warning


# -- The exporter's external URL (no programs) ----------------------------------

def test_default_external_url_names_this_host_and_keeps_the_scheme() -> None:
    assert web_server.default_external_url("https://0.0.0.0:10104") == (
        f"https://{socket.getfqdn()}:10104")
    assert web_server.default_external_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_a_bad_external_url_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["serve", "--config.file", "examples/vaxjo.yml",
                                      "--web.external-url", "ftp://intranet/"])
    assert result.exit_code == 2
    assert "invalid external URL 'ftp://intranet/'" in result.output


def test_the_exporter_publishes_its_external_url_for_runbook_links() -> None:
    exporter = Exporter(make_config({"peer": {"port": 104, "ae_title": "PEER"}}))
    server, _ = web_server.start(exporter, ("127.0.0.1", 0),
                                 external_url="https://intranet.example/dicom/")
    try:
        # The URL's path is the route prefix (as blackbox_exporter takes it).
        with urllib.request.urlopen(f"{server.url}/dicom/metrics", timeout=10) as answer:
            text = answer.read().decode()
        assert 'dicom_exporter_web_info{external_url="https://intranet.example/dicom"} 1.0' in (
            text)
    finally:
        server.shutdown()
        server.server_close()


# -- Two sites through the real programs (slow, one shared stack) ----------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Link computers and rules every 3 s; the partners' probes, which no test
    # here needs, at the shipped 15 s to spare the simulated peers.
    yield from running_stack(tmp_path_factory, "two-sites", "3s",
                             watchdog_repeat=f"{WATCHDOG_REPEAT:g}s", resend_delay="2s",
                             partner_interval="15s")


def distinct(notes: list[Notification]) -> dict[str, set[tuple]]:
    """Notifications per group key, a duplicate of one (at-least-once) counted once."""
    groups: dict[str, set[tuple]] = {}
    for note in notes:
        content = (note.receiver, note.status, tuple(sorted(
            (a["fingerprint"], a["status"], a["startsAt"]) for a in note.alerts)))
        groups.setdefault(note.group_key, set()).add(content)
    return groups


def started(alert: dict) -> float:
    """An alert's startsAt as Unix time (Alertmanager writes up to nanoseconds)."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", alert["startsAt"]).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def live_sites(stack: Stack) -> list[str]:
    return [name for name, site in stack.sites.items() if site.prometheus.poll() is None]


@pytest.mark.slow
def test_every_exporter_serves_every_runbook(stack: Stack) -> None:
    names = [*runbooks.names(), runbooks.INDEX]
    assert "DicomExporterDown" in names and "Watchdog" in names
    for site in stack.sites.values():
        for name in names:
            with urllib.request.urlopen(f"{site.exporter_url}/runbooks/{name}",
                                        timeout=10) as page:
                assert page.status == 200, (site.name, name)


@pytest.mark.slow
def test_the_watchdog_reaches_the_dead_mans_switch(stack: Stack) -> None:
    notes = wait_until(lambda: stack.sink.notifications("deadman", "Watchdog"), 90,
                       "the Watchdog at the dead man's switch")
    assert all(a["labels"]["alertname"] == "Watchdog" and "replica" not in a["labels"]
               for note in notes for a in note.alerts)


@pytest.mark.slow
def test_with_both_sites_up_one_outage_is_one_notification_per_receiver(stack: Stack) -> None:
    wait_until(lambda: cluster_formed(stack), 60, "the Alertmanager cluster to form")
    up = 'probe_success{target="z83680", prober="tcp"} == 1'
    for site in stack.sites.values():
        wait_until(lambda site=site: len(query(site.prometheus_url, up)) == 2, 120,
                   f"both vantage points seeing Z83680 in {site.name}'s Prometheus")
    stack.peers.set_state("z83680", "down")
    try:
        def paged() -> list[Notification]:
            return stack.sink.notifications("admin-pager", "DicomLinkComputerDown",
                                            target="z83680")
        # Both vantage points see Z83680 down within a probe interval, well
        # inside group_wait: one group (alertname, target), both alerts in it.
        wait_until(lambda: paged(), 120, "the page for Z83680")
        # The second cluster member waits its peer timeout (15 s) before it
        # would send what the first already sent: give it that time to err.
        time.sleep(20)
        notes = [n for n in paged() if n.status == "firing"]
        groups = distinct(notes)
        assert len(groups) == 1, groups
        contents = next(iter(groups.values()))
        assert len(contents) == 1, f"{len(contents)} different notifications: {contents}"
        for note in notes:
            # Both Prometheus sent each alert; without `replica` they are one.
            assert sorted(a["labels"]["site"] for a in note.alerts) == ["ljungby", "vaxjo"]
            assert all("replica" not in a["labels"] for a in note.alerts)
        for site in stack.sites.values():
            assert len(am_alerts(site.alertmanager_url, "DicomLinkComputerDown",
                                 target="z83680", site="vaxjo")) == 1
        mail = stack.sink.notifications("it-mail", "DicomLinkComputerDown")
        assert mail == []  # critical goes to the pager only
    finally:
        stack.peers.set_state("z83680", "up")


@pytest.mark.slow
def test_losing_vaxjo_still_pages_a_z97117_outage_once_from_ljungby(stack: Stack) -> None:
    wait_until(lambda: cluster_formed(stack), 60, "the Alertmanager cluster to form")
    vaxjo, ljungby = stack.sites["vaxjo"], stack.sites["ljungby"]
    vaxjo.kill()
    assert [p.returncode for p in vaxjo.processes] == [-signal.SIGKILL] * 3
    lost_at, lost_wall = time.monotonic(), time.time()
    stack.peers.set_state("z97117", "down")
    try:
        def paged() -> list[Notification]:
            # The outage that started after the loss (not a page from before it).
            return [n for n in stack.sink.notifications(
                "admin-pager", "DicomLinkComputerDown", target="z97117")
                if all(started(a) > lost_wall for a in n.alerts)]
        wait_until(paged, 180, "the page for Z97117 after losing Växjö")
        time.sleep(20)  # room for a duplicate, as above
        notes = [n for n in paged() if n.status == "firing"]
        groups = distinct(notes)
        assert len(groups) == 1, groups  # only Ljungby's vantage point is left
        assert len(next(iter(groups.values()))) == 1
        alert = notes[0].alerts[0]
        assert alert["labels"]["site"] == "ljungby"
        assert {n.sender for n in notes} == {ljungby.alertmanager_url}
        assert all(n.received_at > lost_at for n in notes)
    finally:
        stack.peers.set_state("z97117", "up")


@pytest.mark.slow
def test_the_lost_exporter_is_reported_with_a_runbook_the_other_site_serves(
    stack: Stack,
) -> None:
    vaxjo, ljungby = stack.sites["vaxjo"], stack.sites["ljungby"]
    vaxjo.kill()  # already lost in the test above; idempotent when run alone
    lost = vaxjo.exporter_url.removeprefix("http://")
    down = wait_until(lambda: am_alerts(ljungby.alertmanager_url, "DicomExporterDown",
                                        instance=lost), 150,
                      "DicomExporterDown for Växjö's exporter")
    link = down[0]["annotations"]["runbook_url"]
    assert link == f"{ljungby.exporter_url}/runbooks/DicomExporterDown"
    with urllib.request.urlopen(link, timeout=10) as page:
        assert "<h1>DicomExporterDown</h1>" in page.read().decode()


@pytest.mark.slow
def test_the_watchdog_stops_when_both_prometheus_are_gone(stack: Stack) -> None:
    ljungby = stack.sites["ljungby"]
    stack.sites["vaxjo"].kill()
    # With Växjö lost, Ljungby's Prometheus alone keeps the switch fed.
    since = time.monotonic()
    wait_until(lambda: [n for n in stack.sink.notifications("deadman", "Watchdog")
                        if n.received_at > since], 60, "a Watchdog from Ljungby alone")
    ljungby.prometheus.send_signal(signal.SIGKILL)
    ljungby.prometheus.wait()
    assert live_sites(stack) == []
    # Prometheus stops re-sending; the alert ends in Alertmanager after four
    # resend delays, then the dead man's switch hears nothing more.
    wait_until(lambda: not am_alerts(ljungby.alertmanager_url, "Watchdog"), 60,
               "the Watchdog to end in Alertmanager")
    time.sleep(2 * WATCHDOG_REPEAT)  # a notification already on its way may land
    before = len(stack.sink.notifications("deadman", "Watchdog"))
    time.sleep(5 * WATCHDOG_REPEAT)
    assert len(stack.sink.notifications("deadman", "Watchdog")) == before
