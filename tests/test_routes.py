"""Route state: the example's routes, the freshness rule, the CLI table, and the
whole chain with simulated peers and a real Prometheus evaluating the route
alerts (every combination of hop states: tests/test_route_truth.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import config as config_module
from exporter.app import Exporter
from exporter.config.topology import PRIMARY_NAME
from exporter.demo.embedded import Demo
from exporter.reasons import Reason
from exporter.route_state import HopState, RouteStatus, current, hop_states
from exporter.stats import Series, Snapshot
from exporter.web import server as web_server
from tests.support.promstack import Prometheus, wait_until
from tests.support.realpeers import LOOPBACK

EXAMPLE = Path(__file__).parent.parent / "examples" / "kronoberg.yml"
CONFIG = config_module.load(EXAMPLE)
HOPS = sorted({hop for r in CONFIG.routes.values() for p in r.paths for hop in p.hops})


def test_the_example_carries_the_routines_routes() -> None:
    routes = CONFIG.routes
    assert routes["vaxjo-skane"].primary.hops == ("z97117", "skane")
    assert routes["ljungby-skane"].primary.hops == ("z83680", "z97117", "skane")
    assert [(p.name, p.when_down) for p in routes["vaxjo-skane"].fallbacks] == [
        ("skicka via Blekinge", ("skane",)), ("skicka via Halland", ("skane",)),
        ("Ljungby skickar via Blekinge", ("z97117", "skane")),
        ("Ljungby skickar via Halland", ("z97117", "skane")),
        ("Ljungby skickar via Jönköping", ("z97117",))]
    assert [(p.name, p.when_down) for p in routes["ljungby-skane"].fallbacks] == [
        ("skicka via Blekinge", ("z97117", "skane")), ("skicka via Halland", ("z97117", "skane")),
        ("skicka via Jönköping", ("z97117",)), ("Växjö skickar", ("z83680",))]
    assert "Så läser vi rutinen" in routes["vaxjo-skane"].fallbacks[2].note
    assert routes["ljungby-skane"].fallbacks[0].assumed == "Blekinge skickar vidare till Skåne"
    assert "DVD" in routes["vaxjo-skane"].last_resort
    assert len(HOPS) == 8


def snapshot(results: dict[tuple[str, str], tuple[bool, float]]) -> Snapshot:
    series = {key: Series(count=1, last_success=ok, last_time=at)
              for key, (ok, at) in results.items()}
    return Snapshot(series, True, 0.0, 0)


def test_a_hop_is_up_only_when_every_module_is_a_fresh_success() -> None:
    now = 10_000.0
    fresh, stale = now - 10, now - CONFIG.results_max_age - 1
    modules = CONFIG.targets["z97117"].modules
    all_up = {("z97117", m): (True, fresh) for m in modules}
    assert hop_states(CONFIG, snapshot(all_up), now)["z97117"] is HopState.UP
    one_down = {**all_up, ("z97117", "echo"): (False, fresh)}
    assert hop_states(CONFIG, snapshot(one_down), now)["z97117"] is HopState.DOWN
    one_stale = {**all_up, ("z97117", "echo"): (True, stale)}
    assert hop_states(CONFIG, snapshot(one_stale), now)["z97117"] is HopState.UNKNOWN
    stale_failure = {**all_up, ("z97117", "echo"): (False, stale)}
    assert hop_states(CONFIG, snapshot(stale_failure), now)["z97117"] is HopState.UNKNOWN
    assert hop_states(CONFIG, snapshot({}), now)["z97117"] is HopState.UNKNOWN


def test_stale_results_never_count_as_up() -> None:
    now = 10_000.0
    old = now - CONFIG.results_max_age - 1
    everything_once_up = {(t.name, m): (True, old)
                          for t in CONFIG.targets.values() for m in t.modules}
    for state in current(CONFIG, snapshot(everything_once_up), now):
        assert state.status is RouteStatus.UNKNOWN


def test_receive_side_targets_call_with_the_partners_ae_title() -> None:
    target = CONFIG.targets["z97117.from.skane"]
    assert target.probe_calling_ae == "SKANE_PACS"
    assert (target.host, target.port, target.ae_title) == ("z97117.vaxjo.invalid", 104, "Z97117")
    assert target.labels["partner"] == "skane" and target.labels["direction"] == "receive"
    assert target.modules == ("receive_echo",)
    assert "receive_echo" not in CONFIG.targets["z97117"].modules


@pytest.fixture
def demo() -> Iterator[Demo]:
    simulation = Demo.start()
    yield simulation
    simulation.stop()


def probe_all(exporter: Exporter) -> None:
    for target in exporter.config.targets.values():
        for module in target.modules:
            exporter.probe(target.name, module)


def active(exporter: Exporter) -> dict[str, tuple[str, str]]:
    text = generate_latest(exporter.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == "dicom_route_active":
            for sample in family.samples:
                out[sample.labels["route"]] = (sample.labels["status"], sample.labels["path"])
    return out


def test_stopping_z97117_then_the_relays_in_metrics(demo: Demo) -> None:
    exporter = Exporter(demo.config)
    probe_all(exporter)
    before = active(exporter)
    assert before["ljungby-skane"] == ("primary", PRIMARY_NAME)
    assert before["vaxjo-skane"] == ("primary", PRIMARY_NAME)

    demo.peers.set_state("z97117", "down")
    probe_all(exporter)
    after = active(exporter)
    assert after["ljungby-skane"] == ("fallback", "skicka via Blekinge")
    # The routine read for the whole region: Ljungby sends Växjö's studies too.
    assert after["vaxjo-skane"] == ("fallback", "Ljungby skickar via Blekinge")

    for relay in ("blekinge", "halland", "jonkoping"):
        demo.peers.set_state(relay, "down")
    probe_all(exporter)
    assert active(exporter)["ljungby-skane"] == (
        "none", CONFIG.routes["ljungby-skane"].last_resort)


def test_a_partner_removed_from_a_receivers_list_is_rejected(demo: Demo) -> None:
    exporter = Exporter(demo.config)
    callers = tuple(t.calls_us_as for t in demo.config.targets.values() if t.calls_us_as)
    demo.peers.peers["z83680"].accept_only(
        (*(c for c in callers if c != "SKANE_PACS"), "KRONOBERG_MON"))
    assert exporter.probe("z83680.from.skane", "receive_echo").reason is (
        Reason.REJECTED_CALLING_AE)
    assert exporter.probe("z83680.from.blekinge", "receive_echo").success
    assert exporter.probe("z83680", "echo").success


def test_routes_command_prints_the_table_in_swedish(demo: Demo, tmp_path: Path) -> None:
    config_file = tmp_path / "demo.yml"
    config_file.write_text(demo.config_text, encoding="utf-8")
    demo.peers.set_state("z97117", "down")
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--log.level", "error", "routes",
         "--config.file", str(config_file)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr  # every route has a path
    lines = result.stdout.splitlines()
    assert "Ljungby → Skåne: skicka via Blekinge" in lines
    assert "Växjö → Skåne: Ljungby skickar via Blekinge" in lines
    marked = [line for line in lines if line.startswith("  * skicka via Blekinge")]
    assert marked and "öppen" in marked[0] and "Z83680 upp → BLEKINGE_PACS upp" in marked[0]
    assert any("Z97117 NERE" in line for line in lines)


@pytest.mark.slow
def test_route_alerts_in_a_real_prometheus(demo: Demo, tmp_path: Path) -> None:
    exporter = Exporter(demo.config)
    server, _ = web_server.start(exporter, (LOOPBACK, 0))
    prometheus = None
    try:
        prometheus = Prometheus(tmp_path, f"{LOOPBACK}:{server.server_address[1]}")
        wait_until(lambda: prometheus.query(
            'dicom_route_active{route="ljungby-skane", status="primary"}'), 120,
            "ljungby-skane on its primary path")

        callers = tuple(t.calls_us_as for t in demo.config.targets.values() if t.calls_us_as)
        demo.peers.peers["z83680"].accept_only(
            (*(c for c in callers if c != "SKANE_PACS"), "KRONOBERG_MON"))
        receive = wait_until(lambda: prometheus.alerts("ReceiverRejectsPartner"), 120,
                             "ReceiverRejectsPartner")
        assert {a["labels"]["target"] for a in receive} == {"z83680.from.skane"}

        demo.peers.set_state("z97117", "down")
        # The first open fallback that answers Z97117: Blekinge (a probe of Blekinge that
        # times out on a loaded machine would briefly make it Halland, also right).
        fallback = wait_until(lambda: [
            a for a in prometheus.alerts("RouteOnFallback")
            if a["labels"]["route"] == "ljungby-skane"
            and a["labels"]["path"] == "skicka via Blekinge"], 120, "RouteOnFallback")[0]
        assert fallback["annotations"]["summary"] == "Ljungby → Skåne: skicka via Blekinge"

        for relay in ("blekinge", "halland", "jonkoping"):
            demo.peers.set_state(relay, "down")
        none = wait_until(lambda: [
            a for a in prometheus.alerts("NoRouteAvailable")
            if a["labels"]["route"] == "ljungby-skane"], 120, "NoRouteAvailable")[0]
        assert none["labels"]["severity"] == "critical"
        assert none["annotations"]["summary"] == "Ljungby → Skåne: ingen väg öppen"
        assert "DVD" in none["annotations"]["description"]  # the last resort, as configured
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("order", [("blekinge", "z97117"), ("z97117", "blekinge")])
def test_the_demo_with_blekinge_and_z97117_down_advises_nothing_through_or_to_blekinge(
        demo: Demo, order: tuple[str, str]) -> None:
    """Issue 27's demo case, either order, with simulated peers and real probes."""
    exporter = Exporter(demo.config)
    demo.peers.set_state(order[0], "down")
    probe_all(exporter)
    first = active(exporter)
    if order[0] == "z97117":  # only Z97117 down: Ljungby sends to Jönköping directly
        assert first["vaxjo-jonkoping"] == ("fallback", "Ljungby skickar till Jönköping")
        assert first["ljungby-jonkoping"] == ("fallback", "skicka direkt till Jönköping")
    else:
        assert first["vaxjo-blekinge"][0] == "none"
    demo.peers.set_state(order[1], "down")
    probe_all(exporter)
    both = active(exporter)
    for name, (_, path) in both.items():
        chosen = [p for p in demo.config.routes[name].paths if p.name == path]
        assert not chosen or "blekinge" not in chosen[0].hops, (name, path)
    # NoRouteAvailable for Blekinge: the route metric it fires on stays "none".
    assert both["vaxjo-blekinge"] == ("none", CONFIG.routes["vaxjo-blekinge"].last_resort)
    assert both["ljungby-blekinge"] == ("none", CONFIG.routes["ljungby-blekinge"].last_resort)
    assert both["vaxjo-skane"] == ("fallback", "Ljungby skickar via Halland")
