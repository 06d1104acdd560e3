"""The full chain with the real programs: simulated peers → two exporters →
Prometheus → Alertmanager → notification sink, and the dashboards' queries.

The stack runs both sites (tools/stack.py); these checks look at Växjö's
Prometheus and Alertmanager. Losing a site is tests/test_two_sites.py."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from exporter import metrics
from exporter.routine import itops as itops_words
from tests.support.promstack import wait_until
from tests.support.twosites import am_alerts, query, running_stack
from tools.stack import Stack

pytestmark = pytest.mark.slow  # starts real programs (see the module docstring)


ROOT = Path(__file__).parent.parent
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
# Series Prometheus makes itself, not the exporter.
PROMETHEUS_OWN = {"up", "ALERTS", "scrape_duration_seconds"}
VARIABLES = {"$site": "vaxjo|ljungby", "$partner": ".*", "$target": ".*",
             "$__rate_interval": "30s", "$__interval": "3s", "$__range": "5m"}
# Panels that need a failure to show anything: the stack runs healthy here;
# tests/test_report_backfill.py runs them on a history with outages.
# Panels that show outages only: empty on a stack where nothing failed yet.
ONLY_WITH_FAILURES = {("itops", itops_words.PANELS["outage_table"])}
RECORDED = {rule["record"] for path in sorted((ROOT / "alerts").glob("*.rules.yml"))
            for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"] if "record" in rule}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(tmp_path_factory, "stack", "3s", partner_interval="6s")


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                out.append((path.stem, panel["title"], target["expr"]))
    return out


def substitute(expr: str) -> str:
    for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def test_the_panels_allowed_to_be_empty_exist() -> None:
    """An exemption naming a panel that was renamed would exempt nothing."""
    titles = {(dashboard, title) for dashboard, title, _ in panel_queries()}
    assert ONLY_WITH_FAILURES <= titles, ONLY_WITH_FAILURES - titles


def test_every_metric_a_panel_uses_is_exposed() -> None:
    ours = {v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str)}
    ours |= {f"{metrics.PROBE_DURATION_HISTOGRAM}_bucket"}
    standard = {"process_resident_memory_bytes"}
    for dashboard, title, expr in panel_queries():
        used = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))
        unknown = used - ours - standard - PROMETHEUS_OWN - RECORDED
        assert not unknown, f"{dashboard}: {title}: {unknown}"


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    # Wait until both exporters were scraped for long enough for rate() windows.
    wait_until(lambda: len(query(stack.prometheus_url, "up == 1")) > 40, 60, "every scrape up")
    wait_until(lambda: query(stack.prometheus_url,
                             "increase(dicom_exporter_probes_total[30s]) > 2"),
               60, "a few probe rounds")
    def empty_panels() -> list[str]:
        return [f"{dashboard}: {title}: {expr}" for dashboard, title, expr in panel_queries()
                if (dashboard, title) not in ONLY_WITH_FAILURES
                and not query(stack.prometheus_url, substitute(expr))]

    # Windowed queries fill in as scrapes accumulate; a panel empty after a
    # minute of a running stack is empty for real.
    left = empty_panels()
    for _ in range(30):
        if not left:
            break
        time.sleep(2)
        left = empty_panels()
    assert left == []


def test_both_vantage_points_report(stack: Stack) -> None:
    found = query(stack.prometheus_url, 'probe_success{target="z97117"}')
    sites = {r["metric"]["site"] for r in found}
    assert sites == {"vaxjo", "ljungby"}


def test_a_dead_link_computer_pages_with_a_working_runbook_and_never_hides_a_partner(
    stack: Stack,
) -> None:
    wait_until(lambda: query(stack.prometheus_url,
                             'probe_success{target="skane", prober="echo"} == 1'),
               60, "Skåne up")
    stack.peers.set_state("z97117", "down")
    stack.peers.set_state("skane", "down")
    try:
        # Each vantage point's alert fires on its own evaluation: wait for Växjö's.
        down = wait_until(lambda: am_alerts(stack.alertmanager_url, "DicomLinkComputerDown",
                                            target="z97117", site="vaxjo"),
                          120, "DicomLinkComputerDown from Växjö in Alertmanager")
        alert = down[0]
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["ae_title"] == "Z97117"
        assert alert["annotations"]["summary"] == (
            "Länkdator Z97117 är ur funktion (sett från Växjö)")
        assert alert["annotations"]["reason"] == "refused"
        with urllib.request.urlopen(alert["annotations"]["runbook_url"], timeout=10) as page:
            assert page.status == 200
            assert "<h1>DicomLinkComputerDown</h1>" in page.read().decode()

        partner = wait_until(lambda: am_alerts(stack.alertmanager_url,
                                               "DicomPartnerUnreachable", target="skane"),
                             120, "DicomPartnerUnreachable in Alertmanager")
        # Partners are probed directly from the exporter host: Skåne's own outage is a
        # fault of its own and is delivered while Z97117 is down (issue 14).
        assert all(a["status"]["state"] == "active" for a in partner)
        for name in ("DicomLinkComputerDown", "DicomPartnerUnreachable"):
            wait_until(lambda name=name: [
                n for n in stack.sink.received if n.receiver == "admin-pager"
                and any(a["labels"]["alertname"] == name for a in n.alerts)], 60,
                f"the page for {name}")
        paged = {a["labels"]["alertname"] for n in stack.sink.received
                 if n.receiver == "admin-pager" for a in n.alerts}
        assert "NoRouteAvailable" not in paged  # Växjö → Skåne: Ljungby sends via Blekinge
    finally:
        stack.peers.set_state("z97117", "up")
        stack.peers.set_state("skane", "up")
    wait_until(lambda: not am_alerts(stack.alertmanager_url, "DicomLinkComputerDown",
                                     target="z97117"),
               90, "DicomLinkComputerDown to resolve")
