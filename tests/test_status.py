"""The on-call status page: its data for healthy, single-fault and no-route
states, the page and /status.json over HTTP, and a real headless Chromium
against the running demo."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter import config as config_module
from exporter import routine
from exporter.reasons import Reason
from exporter.stats import Series, Snapshot
from exporter.web import oncall, oncall_html
from tests.support.realpeers import LOOPBACK, free_port, require, wait_for_port

ROOT = Path(__file__).parent.parent
CONFIG = config_module.load(ROOT / "examples" / "kronoberg.yml")
ARTIFACTS = ROOT / "test-artifacts"
NOW = 1_800_000_000.0


def snapshot(down: dict[str, Reason] | None = None, echo_ms: float = 2.0) -> Snapshot:
    """Every configured probe ran 5 s ago; targets in `down` failed with that reason."""
    down = down or {}
    series = {}
    for target in CONFIG.targets.values():
        for module in target.modules:
            reason = down.get(target.name)
            series[(target.name, module)] = Series(
                count=1, last_success=reason is None, last_time=NOW - 5,
                last_reason=reason, last_duration=echo_ms / 1000,
            )
    return Snapshot(series, True, NOW - 100, 0)


def test_healthy_state_has_no_faults_and_every_route_on_its_primary_path() -> None:
    result = oncall.build(CONFIG, snapshot(), NOW)
    assert result.faults == []
    assert {t.state for t in result.targets} == {"upp"}
    assert {r.status for r in result.routes} == {"primary"}
    assert {r.advice for r in result.routes} == {"skicka ordinarie väg"}
    z97117 = next(t for t in result.targets if t.name == "z97117")
    assert (z97117.title, z97117.role, z97117.site) == ("Z97117", "länkdator", "Växjö")
    assert z97117.echo_ms == 2.0 and z97117.checked_seconds_ago == 5.0
    assert {r.partner for r in result.receiving} >= {"Skåne", "Blekinge"}
    # Who is reached how comes from the routine section of the config.
    assert [name for name, _ in result.roles] == ["Arkivet", "LARS (jouren)",
                                                 "Administratörer", "IT"]


def test_a_single_partner_fault_gives_its_next_step_and_runbook() -> None:
    result = oncall.build(CONFIG, snapshot({"skane": Reason.CONNECT_TIMEOUT}), NOW)
    assert len(result.faults) == 1
    fault = result.faults[0]
    assert fault.runbook == "DicomPartnerUnreachable"
    explanation = routine.explanation(Reason.CONNECT_TIMEOUT, config=CONFIG)
    assert fault.what == f"DICOM till Skåne fungerar inte. {explanation}"
    assert fault.next_step.startswith(
        "1. ”Felsökning måste börja med att starta om länka-dator Z97117 (Växjö) och Z83680 "
        "(Ljungby).” 2. ”Därefter får ni ta kontakt med mottagande/sändande enhet")
    assert ("5. ”Om Region Skåne inte kan ta emot undersökningar kan vi prova skicka via "
            "Blekinge eller Halland.”") in fault.next_step
    skane = next(t for t in result.targets if t.name == "skane")
    assert (skane.state, skane.reason) == ("nere", "connect_timeout")
    routes = {r.name: r for r in result.routes}
    assert routes["vaxjo-skane"].advice == "skicka via Blekinge"
    assert routes["ljungby-skane"].advice == "skicka via Blekinge"
    assert routes["vaxjo-blekinge"].status == "primary"


def test_every_route_without_an_open_path_is_a_fault_with_its_own_steps() -> None:
    down = {name: Reason.REFUSED for name in ("z97117", "blekinge", "halland", "jonkoping")}
    result = oncall.build(CONFIG, snapshot(down), NOW)
    runbooks = [f.runbook for f in result.faults]
    assert runbooks.count("DicomLinkComputerDown") == 1
    assert runbooks.count("NoRouteAvailable") == 10  # every route of both sites
    faults = {f.what: f for f in result.faults if f.runbook == "NoRouteAvailable"}
    skane = faults["Växjö → Skåne: ingen väg är öppen."]
    # The routine's order: restart, ask the receiver, then the last resort for what is
    # down: Z97117 is (Skåne is not), so its DVD sentence, not Skåne's "move the patient".
    assert skane.next_step.index("starta om länka-dator") < skane.next_step.index(
        "ta kontakt med mottagande") < skane.next_step.index("”Bränna en DVD på dator")
    assert "skicka patienten" not in skane.next_step
    blekinge = faults["Ljungby → Blekinge: ingen väg är öppen."]
    assert "”Bränna en DVD på dator med Intellispace portal" in blekinge.next_step
    # Blekinge alone down: the routine has no DVD sentence for it; ours, marked.
    alone = oncall.build(CONFIG, snapshot({"blekinge": Reason.REFUSED}), NOW)
    [only] = [f for f in alone.faults if f.what == "Ljungby → Blekinge: ingen väg är öppen."]
    assert "Intellispace" not in only.next_step
    assert ("Bränn DVD på dator med IntelliSpace Portal i granskningen om undersökningen är "
            "akut (inte i rutinen).") in only.next_step
    routes = {r.name: r for r in result.routes}
    # The short advice is the config's words: marked as ours.
    assert routes["ljungby-skane"].advice == (
        "ingen väg: Ljungby bränner DVD på dator med IntelliSpace Portal i granskningen "
        "(inte i rutinen).")


def test_z97117_down_sends_vaxjo_via_ljungby_and_says_it_is_our_reading() -> None:
    result = oncall.build(CONFIG, snapshot({"z97117": Reason.CONNECT_TIMEOUT}), NOW)
    routes = {r.name: r for r in result.routes}
    vaxjo = routes["vaxjo-skane"]
    assert (vaxjo.status, vaxjo.advice) == ("fallback", "Ljungby skickar via Blekinge")
    assert vaxjo.next_step.startswith("Nu: Ljungby skickar via Blekinge. Så läser vi rutinen")
    assert "(inte i rutinen)" in vaxjo.next_step
    [fault] = result.faults
    assert fault.what.startswith("Länkdator Z97117 är ur funktion.")
    assert "”Ljungby skicka undersökningar via Blekinge, Halland eller Jönköping.”" in (
        fault.next_step)
    assert "”Vid akuta fall får de skicka DVD/CD.”" in fault.next_step


def test_z97117_and_blekinge_down_never_advise_blekinge() -> None:
    down = {"z97117": Reason.REFUSED, "blekinge": Reason.CONNECT_TIMEOUT}
    result = oncall.build(CONFIG, snapshot(down), NOW)
    advice = {r.name: r.advice for r in result.routes}
    assert advice["vaxjo-skane"] == "Ljungby skickar via Halland"
    assert advice["ljungby-skane"] == "skicka via Halland"
    # Not through Blekinge, and not to Blekinge round Z97117 either (issue 27): Halland
    # cannot forward to a Blekinge that is down, so there is no route to Blekinge.
    assert all("Blekinge" not in text for text in advice.values())
    assert {r.name for r in result.routes if r.status == "none"} == {
        "vaxjo-blekinge", "ljungby-blekinge"}
    # Blekinge's own outage is its own fault, not hidden behind Z97117.
    assert {f.runbook for f in result.faults} == {"DicomLinkComputerDown",
                                                  "DicomPartnerUnreachable",
                                                  "NoRouteAvailable"}


def test_stale_results_show_as_unknown_not_up() -> None:
    result = oncall.build(CONFIG, snapshot(), NOW + CONFIG.results_max_age + 10)
    assert {t.state for t in result.targets} == {"okänd"}
    assert {r.status for r in result.routes} == {"unknown"}


def test_the_page_says_state_in_words_and_needs_nothing_from_outside() -> None:
    page = oncall_html.render(oncall.build(CONFIG, snapshot({"skane": Reason.REFUSED}), NOW))
    assert '<html lang="sv">' in page
    assert "✖ NERE" in page and "✔ upp" in page  # text and symbol, not colour alone
    assert 'href="/runbooks/DicomPartnerUnreachable"' in page
    assert re.findall(r'(?:src|href)="(?:https?:)?//', page) == []  # no external resources
    assert "<link" not in page and "@import" not in page and "@font-face" not in page
    assert page.count("<h1>") == 1 and '<th scope="col">' in page


@pytest.fixture(scope="module")
def demo_process() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--log.level", "error", "demo",
         "--web.listen-address", f"{LOOPBACK}:{port}", "--probe.interval", "1s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def fetch(url: str, method: str = "GET") -> str:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
        return r.read().decode()


def test_status_json_has_the_same_data(demo_process: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = json.loads(fetch(f"{demo_process}/status.json"))
        if all(t["state"] == "upp" for t in data["targets"]):
            break
        time.sleep(0.5)
    assert {t["name"] for t in data["targets"]} == {
        "z97117", "z83680", "skane", "blekinge", "ostergotland", "jonkoping", "vastragotland",
        "halland"}
    assert all(t["state"] == "upp" for t in data["targets"])
    assert {r["status"] for r in data["routes"]} == {"primary"}
    assert data["faults"] == []


@pytest.mark.slow
def test_a_real_browser_shows_a_stopped_partner_with_the_next_step(demo_process: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=require("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900})  # a phone
            page.goto(f"{demo_process}/?refresh=2")
            assert page.locator("h1").inner_text() == "Bildöverföring till och från andra regioner"
            page.wait_for_function("document.querySelectorAll('.badge.ok').length > 8",
                                   timeout=20_000)
            page.evaluate("window.__notReloaded = true")

            fetch(f"{demo_process}/demo/peers/skane?state=down", "POST")
            fault = page.locator("li.fault", has_text="DICOM till Skåne fungerar inte")
            fault.wait_for(timeout=30_000)
            text = fault.inner_text()
            assert "Nästa steg: 1. ”Felsökning måste börja med att starta om" in text
            assert "kan vi prova skicka via Blekinge eller Halland.”" in text
            # The script swapped the content in place: no reload, no flicker.
            assert page.evaluate("window.__notReloaded") is True
            page.screenshot(path=str(ARTIFACTS / "status-page-partner-down.png"), full_page=True)

            fault.get_by_role("link").click()
            page.wait_for_load_state()
            assert page.url.endswith("/runbooks/DicomPartnerUnreachable")
            assert page.locator("h1").inner_text() == "DicomPartnerUnreachable"
            assert page.get_by_role("heading", name="Åtgärd").is_visible()
        finally:
            browser.close()
            fetch(f"{demo_process}/demo/peers/skane?state=up", "POST")
