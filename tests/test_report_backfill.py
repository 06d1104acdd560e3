"""The monthly report and the dashboards on a real Prometheus with 35 days of history.

One Prometheus for the whole file: about 35 days of synthetic probe samples
at 60 s, backfilled with promtool, with known outages, a gap (an exporter
down), an outage across the end of October and the change from summer time
inside October. The report's figures are checked against values computed by
hand below, to 0.01 percentage points.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.backfill import HistoricalPrometheus, Series, openmetrics

pytestmark = pytest.mark.slow

ZONE = ZoneInfo("Europe/Stockholm")
STEP = 60.0


def at(text: str, zone: ZoneInfo | None = ZONE) -> float:
    """ "2026-10-10 12:00" in Stockholm (or UTC) as Unix seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone or ZoneInfo("UTC")
                                                             ).timestamp()


BEGIN, END = at("2026-09-30 00:00"), at("2026-11-04 00:00")  # 35 days of samples
OCTOBER = (at("2026-10-01 00:00"), at("2026-11-01 00:00"))   # holds the DST change
NOVEMBER_START = (at("2026-11-01 00:00"), at("2026-11-04 00:00"))
INSTANCE = {"vaxjo": "dicom-exporter.vaxjo.invalid:10104",
            "ljungby": "dicom-exporter.ljungby.invalid:10104"}

# [start, end) of each event.
GAP_ALL = (at("2026-10-20 06:00"), at("2026-10-20 08:00"))      # both Prometheus lost it
GAP_VAXJO = (at("2026-10-05 10:00"), at("2026-10-05 14:00"))    # Växjö's exporter down
Z_A = (at("2026-10-10 12:00"), at("2026-10-10 12:30"))          # z97117 down, both sites
Z_B = (at("2026-10-12 08:00"), at("2026-10-12 09:00"))          # z97117 echo, Ljungby only
Z_C = (at("2026-10-15 03:00"), at("2026-10-15 03:01"))          # one failed echo: > for 20s
Z_DST = (at("2026-10-25 00:30", None), at("2026-10-25 01:30", None))  # 02:30 CEST..02:30 CET
S_BLIP = (at("2026-10-07 09:00"), at("2026-10-07 09:01"))       # 60 s: not longer than 1m
S_D = (at("2026-10-18 14:00"), at("2026-10-18 16:10"))          # skane down, both sites
S_LJ = (at("2026-10-22 10:00"), at("2026-10-22 11:00"))         # skane from Ljungby only
S_EDGE = (at("2026-10-31 23:30"), at("2026-11-01 00:45"))       # across the month's end
J_STORE = (at("2026-10-08 00:00"), at("2026-10-08 06:00"))      # jonkoping store fails
STALE = (END - 3 * 3600, END - 2 * 3600)  # z97117 from Ljungby: no samples (stale)


def inside(t: float, *spans: tuple[float, float]) -> bool:
    for a, b in spans:  # a loop, not any(): called a million times
        if a <= t < b:
            return True
    return False


def probe_series(target: str, site: str, module: str, role: str, region: str, ae: str,
                 down: tuple[tuple[float, float], ...], since: float = BEGIN,
                 gaps: tuple[tuple[float, float], ...] = ()) -> Series:
    gaps += (GAP_ALL, GAP_VAXJO) if site == "vaxjo" else (GAP_ALL,)
    fast = role == "link_computer" and module in ("tcp", "echo")
    labels = {"job": "dicom_probe_link_computer" if fast else "dicom_probe",
              "instance": INSTANCE[site], "target": target, "module": module,
              "prober": "negotiate" if module == "negotiate_ct" else module,
              "site": site, "role": role, "region": region, "ae_title": ae}

    def value(t: float) -> float | None:
        if inside(t, *gaps):
            return None
        return 0.0 if inside(t, *down) else 1.0
    return Series("probe_success", labels, value, since)


def scenario() -> list[Series]:
    out = []
    for site in ("vaxjo", "ljungby"):
        stale = (STALE,) if site == "ljungby" else ()
        out.append(probe_series("z97117", site, "tcp", "link_computer", "kronoberg", "Z97117",
                                (Z_A, Z_DST), gaps=stale))
        echo_down = (Z_A, Z_C, Z_DST) + ((Z_B,) if site == "ljungby" else ())
        out.append(probe_series("z97117", site, "echo", "link_computer", "kronoberg",
                                "Z97117", echo_down, gaps=stale))
        skane_down = (S_BLIP, S_D, S_EDGE) + ((S_LJ,) if site == "ljungby" else ())
        out.append(probe_series("skane", site, "echo", "partner", "skane", "SKANE_PACS",
                                skane_down))
        # Failing in the last hours: a receiving probe is no part of availability.
        out.append(probe_series("skane", site, "negotiate_ct", "partner", "skane",
                                "SKANE_PACS", ((RECENT, END),), since=RECENT))
    out.append(probe_series("jonkoping", "vaxjo", "echo", "partner", "jonkoping",
                            "JONKOPING_PACS", ()))
    out.append(probe_series("jonkoping", "vaxjo", "store", "partner", "jonkoping",
                            "JONKOPING_PACS", (J_STORE,)))
    out += [d for s in out for d in probe_details(s)] + exporter_history()
    out += outage_alerts(out)
    out += [
        Series("ALERTS", {"alertname": "DicomEchoLatencyHigh", "alertstate": "firing",
                          "target": "skane", "site": "ljungby", "instance": INSTANCE["ljungby"],
                          "severity": "warning", "audience": "staff"},
               lambda t: 1.0 if inside(t, LATENCY_ALERT) else None),
        Series("ALERTS", {"alertname": "DicomExporterDown", "alertstate": "firing",
                          "instance": INSTANCE["vaxjo"], "job": "dicom_exporter",
                          "severity": "critical", "audience": "it"},
               lambda t: 1.0 if GAP_VAXJO[0] + STEP <= t < GAP_VAXJO[1] else None),
    ]
    return out


# The outage alerts as Prometheus writes them, evaluated once a minute here:
# ALERTS_FOR_STATE (its value the first evaluation that saw the failure) while
# pending or firing, ALERTS{alertstate="firing"} once the failure has lasted the
# role's for:. Per site, from the probe samples above.
FOR_SECONDS = {"link_computer": 20.0, "partner": 60.0}
OUTAGE_ALERT = {"link_computer": "DicomLinkComputerDown", "partner": "DicomPartnerUnreachable"}


def outage_alerts(series: list[Series]) -> list[Series]:
    probes: dict[tuple[str, str], list[Series]] = {}
    for s in series:
        labels = s.labels
        if s.name == "probe_success" and labels["module"] in ("tcp", "echo"):
            probes.setdefault((labels["target"], labels["site"]), []).append(s)
    times = [BEGIN + n * STEP for n in range(int((END - BEGIN) / STEP))]
    out = []
    for (name, _site), members in probes.items():
        role = members[0].labels["role"]
        if name == "jonkoping":
            continue  # never down
        if role == "partner":  # per probe series: every label of probe_success
            (echo,) = members
            labels = dict(echo.labels)
        else:  # min by (target, ae_title, site, instance)
            labels = {k: members[0].labels[k] for k in ("target", "ae_title", "site", "instance")}
        labels.update(alertname=OUTAGE_ALERT[role], severity="critical", audience="staff")
        active_at: dict[float, float] = {}
        since = None
        for t in times:
            values = [m.value(t) for m in members]
            if 0.0 in values:
                since = t if since is None else since
                active_at[t] = since
            else:
                since = None

        def state(t: float, active_at: dict[float, float] = active_at) -> float | None:
            return active_at.get(t)

        def firing(t: float, active_at: dict[float, float] = active_at,
                   wait: float = FOR_SECONDS[role]) -> float | None:
            return 1.0 if t in active_at and t - active_at[t] >= wait else None
        out.append(Series("ALERTS_FOR_STATE", labels, state))
        out.append(Series("ALERTS", {**labels, "alertstate": "firing"}, firing))
    return out


# The exporters' own series and the probes' details, for the dashboards' panels:
# the last six hours only (the panels are checked at END over their own ranges; the
# failure reasons from five days back, so the outage across the month's end has one).
RECENT = END - 6 * 3600
LATENCY_ALERT = (END - 2 * 3600, END)
TARGETS = {"z97117": ("link_computer", "kronoberg", "Z97117", ("tcp", "echo")),
           "skane": ("partner", "skane", "SKANE_PACS", ("echo", "negotiate_ct")),
           "jonkoping": ("partner", "jonkoping", "JONKOPING_PACS", ("echo", "store"))}


def recent(name: str, labels: dict[str, str], value: float | Callable[[float], float]
           ) -> Series:
    """A series with samples in the last hours only."""
    return Series(name, labels, value if callable(value) else (lambda t: value), RECENT)


def counter(t: float) -> float:
    return (t - RECENT) / STEP


def exporter_history() -> list[Series]:
    out = []
    for site, instance in INSTANCE.items():
        own = {"job": "dicom_exporter", "instance": instance}
        out += [
            recent("dicom_exporter_web_info", {**own, "external_url": f"https://{instance}"}, 1),
            recent("dicom_exporter_probes_in_flight", own, 0),
            recent("dicom_exporter_config_last_reload_successful", own, 1),
            recent("process_resident_memory_bytes", own, 40e6),
            recent("dicom_route_active", {**own, "site": site, "route": f"{site}_skane",
                                          "partner": "skane", "region": "skane",
                                          "status": "direct", "path": "direkt"}, 1),
        ]
        for module, prober in (("tcp", "tcp"), ("echo", "echo"), ("store", "store"),
                               ("negotiate_ct", "negotiate")):
            out.append(recent("dicom_exporter_module_timeout_seconds",
                              {**own, "module": module, "prober": prober}, 5))
        for name, (role, region, ae, modules) in TARGETS.items():
            if name == "jonkoping" and site == "ljungby":
                continue
            labels = {"target": name, "role": role, "region": region, "ae_title": ae,
                      "site": site, "host": f"{name}.invalid", "port": "104"}
            out.append(recent("dicom_exporter_target_info", {**own, **labels}, 1))
            for module in modules:
                pair = {**own, "target": name, "module": module}
                out.append(recent("dicom_exporter_probes_total", pair, counter))
                out.append(recent("dicom_exporter_probe_failures_total",
                                  {**pair, "reason": "connect_timeout"},
                                  lambda t: counter(t) // 10))
                if module == "echo":
                    for le in ("0.01", "0.1", "+Inf"):
                        out.append(recent("dicom_exporter_probe_duration_seconds_bucket",
                                          {**pair, "le": le}, counter))
    return out


def probe_details(success: Series) -> list[Series]:
    """What one /probe scrape carries beside probe_success, for the same labels."""
    labels = dict(success.labels)

    def when_known(value: float) -> Callable[[float], float | None]:
        return lambda t: None if success.value(t) is None else value

    def failed(t: float) -> float | None:
        v = success.value(t)
        return None if v is None else 1.0 - v
    def reason(t: float) -> float | None:
        """Every sample in the last five days; before, only the failed ones (what the
        outage table reads), to keep the history small."""
        value = failed(t)
        return value if t >= END - 5 * 86400 or value == 1.0 else None
    out = [Series("probe_duration_seconds", labels, when_known(0.02), RECENT),
           Series("scrape_duration_seconds", labels, when_known(0.03), RECENT),
           Series("probe_dicom_failure_reason", {**labels, "reason": "connect_timeout"},
                  reason, BEGIN)]
    if labels["prober"] != "tcp":
        out.append(Series("probe_dicom_phase_duration_seconds", {**labels, "phase": "echo"},
                          when_known(0.004), RECENT))
        out.append(Series("probe_dicom_dimse_status", labels, when_known(0), RECENT))
    return out


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoricalPrometheus]:
    workdir = tmp_path_factory.mktemp("backfill")
    history = workdir / "history.om"
    times = [BEGIN + n * STEP for n in range(int((END - BEGIN) / STEP))]
    openmetrics(scenario(), times, history)
    server = HistoricalPrometheus(workdir, history)
    try:
        yield server
    finally:
        server.stop()


CONFIG = Path(__file__).parent.parent / "examples" / "kronoberg.yml"


def report(prometheus: HistoricalPrometheus, start: str, end: str, fmt: str) -> str:
    """`dicom-exporter report` as IT operations run it."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "report", f"--prometheus.url={prometheus.base}",
         f"--config.file={CONFIG}", f"--from={start}", f"--to={end}", f"--format={fmt}"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def october(prometheus: HistoricalPrometheus) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(report(prometheus, "2026-10-01", "2026-11-01", "json"))
    return data


def close(reported: float | None, expected: float) -> bool:
    """Equal to 0.01 percentage points."""
    return reported is not None and abs(reported - expected) * 100 < 0.01


def by_target(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["target"]: t for t in data["targets"]}


# Hand-computed figures for October (31 days and the extra hour of 25 October).
OCT_SECONDS = 31 * 86400 + 3600
UNKNOWN_ALL = 2 * 3600                 # GAP_ALL
UNKNOWN_VAXJO = UNKNOWN_ALL + 4 * 3600  # and GAP_VAXJO


def availability(down: float, unknown: float, length: float = OCT_SECONDS) -> float:
    return (length - down - unknown) / (length - unknown)


def test_october_figures_equal_the_hand_computed_ones(october: dict[str, Any]) -> None:
    targets = by_target(october)
    assert sorted(targets) == ["jonkoping", "skane", "z97117"]

    z = targets["z97117"]
    z_down = 1800 + 60 + 3600  # A, C, the DST hour
    assert close(z["availability"], availability(z_down, UNKNOWN_ALL))
    assert close(z["sites"]["vaxjo"]["availability"], availability(z_down, UNKNOWN_VAXJO))
    assert close(z["sites"]["ljungby"]["availability"],
                 availability(z_down + 3600, UNKNOWN_ALL))  # and B, seen only from Ljungby
    assert z["outage_count"] == 3
    assert z["longest_outage_seconds"] == 3600
    assert z["downtime_seconds"] == z_down
    assert z["mttr_seconds"] == pytest.approx(z_down / 3)
    assert z["unknown_seconds"] == UNKNOWN_ALL
    assert z["sites"]["vaxjo"]["unknown_seconds"] == UNKNOWN_VAXJO
    dst = max(z["outages"], key=lambda o: o["seconds"])
    assert (dst["start"], dst["end"]) == ("2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00")
    # Firing from the second evaluation (for: 20s, evaluated every minute) to the
    # first sample up, from each site that saw it: not C (one evaluation, pending).
    run_a = ("DicomLinkComputerDown", "2026-10-10T12:01:00+02:00", "2026-10-10T12:30:00+02:00")
    run_b = ("DicomLinkComputerDown", "2026-10-12T08:01:00+02:00", "2026-10-12T09:00:00+02:00")
    run_dst = ("DicomLinkComputerDown", "2026-10-25T02:31:00+02:00",
               "2026-10-25T02:30:00+01:00")
    assert [(a["alertname"], a["start"], a["end"]) for a in z["alerts_firing"]] == [
        run_a, run_a, run_b, run_dst, run_dst]

    s = targets["skane"]
    s_down = 60 + 7800 + 1800  # the blip, D, October's part of the edge outage
    assert close(s["availability"], availability(s_down, UNKNOWN_ALL))
    assert close(s["sites"]["ljungby"]["availability"],
                 availability(s_down + 3600, UNKNOWN_ALL))
    assert s["outage_count"] == 2  # the 60 s blip is not longer than for: 1m
    assert s["longest_outage_seconds"] == 7800
    assert s["downtime_seconds"] == 7800 + 1800
    assert s["mttr_seconds"] == 7800  # the edge outage did not end in October
    edge = s["outages"][-1]
    assert edge["lasts_beyond_period"] and edge["end"] == "2026-11-01T00:00:00+01:00"
    assert s["store_success"] is None

    j = targets["jonkoping"]
    assert j["availability"] == 1.0 and j["outage_count"] == 0
    assert j["unknown_seconds"] == UNKNOWN_VAXJO
    assert close(j["store_success"], availability(6 * 3600, UNKNOWN_VAXJO))


def test_the_outage_across_the_month_end_counts_in_the_next_period_from_its_start(
        prometheus: HistoricalPrometheus) -> None:
    targets = by_target(json.loads(report(prometheus, "2026-11-01", "2026-11-04", "json")))
    s = targets["skane"]
    length = 3 * 86400
    assert close(s["availability"], availability(2700, 0, length))
    assert s["outage_count"] == 1 and s["unknown_seconds"] == 0
    (outage,) = s["outages"]
    assert outage["began_before_period"] and outage["seconds"] == 2700
    assert s["mttr_seconds"] is None
    assert targets["z97117"]["availability"] == 1.0


def test_the_other_alerts_say_they_are_not_notifications(october: dict[str, Any]) -> None:
    (other,) = october["other_alerts_firing"]
    assert other["alertname"] == "DicomExporterDown" and other["seconds"] == 4 * 3600 - 60
    assert any("inte detsamma som en skickad avisering" in note for note in october["notes"])


def test_markdown_and_html_show_the_same_figures_with_a_decimal_comma(
        prometheus: HistoricalPrometheus) -> None:
    """Both rendered from one read of Prometheus (the CLI's path is the JSON's, above)."""
    from exporter import config as config_module
    from exporter.availability import figures, render
    from exporter.availability import prometheus as reader

    config = config_module.load(str(CONFIG))
    names = render.Names({k: site.name for k, site in config.sites.items()},
                         dict(config.routine.regions))
    probes, alerts = reader.fetch(reader.Client(prometheus.base),
                                  'job=~"dicom_probe|dicom_probe_link_computer"', *OCTOBER)
    built = figures.build(probes, alerts, *OCTOBER, {"link_computer": 20, "partner": 60})
    pages = {"md": render.markdown(built, names), "html": render.html_page(built, names)}
    expected = f"{availability(60 + 7800 + 1800, UNKNOWN_ALL) * 100:.2f}".replace(".", ",")
    for page in pages.values():
        assert f"{expected} %" in page
        assert "2026-10-25 02:30 CEST" in page and "2026-10-25 02:30 CET" in page
    assert pages["html"].count("<svg") == 3


# -- every dashboard panel's queries on the same Prometheus ---------------------------
DASHBOARDS = sorted((Path(__file__).parent.parent / "grafana" / "dashboards").glob("*.json"))
# Recording rules backfilled over the history's last two hours: every panel reads them
# at its end (over 30 days they average what there is), and each hour costs seconds.
RECORDING_SECONDS = 2 * 3600
OUTAGE_DAYS = 31  # the IT dashboard's 30 days, and its first step's window
# (dashboard uid, panel title): why the panel may be empty on this history.
MAY_BE_EMPTY: dict[tuple[str, str], str] = {}
LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$")


def grafana_range(board: dict) -> float:
    """The dashboard's default time range (now-6h, now-30d) in seconds."""
    amount, unit = re.fullmatch(r"now-(\d+)([mhd])", board["time"]["from"]).groups()
    return int(amount) * {"m": 60, "h": 3600, "d": 86400}[unit]


def expand(expr: str, values: dict[str, str], range_seconds: float, interval: str = "1m"
           ) -> str:
    """Grafana's variables: every query variable as all its values, the built-in ones as
    Grafana sets them for the dashboard's default range."""
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return (expr.replace("$__rate_interval", "5m").replace("$__interval", interval)
            .replace("$__range", f"{int(range_seconds)}s"))


# Grafana's step for a range query: the range over the panel's points (a panel about
# 1,000 pixels wide), never below the query's own minimum interval.
GRAFANA_POINTS = 1000
DURATION = re.compile(r"(\d+)([smhd])")


def grafana_step(query: dict, range_seconds: float) -> float:
    least = query.get("interval") or "15s"
    amount, unit = DURATION.fullmatch(least).groups()  # type: ignore[union-attr]
    return max(int(amount) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit],
               math.ceil(range_seconds / GRAFANA_POINTS))


def run_panel_query(prometheus: HistoricalPrometheus, query: dict, values: dict[str, str],
                    range_seconds: float, at_time: float) -> dict[str, Any]:
    """One target of a panel as Grafana sends it: an instant query at `at_time`, or a
    range query over the dashboard's range ending there, at Grafana's step."""
    if query.get("instant", False):
        return prometheus.api("/api/v1/query", query=expand(query["expr"], values,
                                                            range_seconds),
                              time=f"{at_time:.0f}")
    step = grafana_step(query, range_seconds)
    return prometheus.api("/api/v1/query_range",
                          query=expand(query["expr"], values, range_seconds, f"{step}s"),
                          start=f"{at_time - range_seconds:.0f}", end=f"{at_time:.0f}",
                          step=f"{step}")


def variable_values(prometheus: HistoricalPrometheus, board: dict, at_time: float
                    ) -> dict[str, str]:
    values: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = expand(variable["query"]["query"], values, grafana_range(board))
        match = LABEL_VALUES.match(query)
        assert match, f"{board['uid']}: variable {variable['name']}: {query}"
        selector, label = match.groups()
        params = {"start": f"{at_time - grafana_range(board):.0f}", "end": f"{at_time:.0f}"}
        if selector:
            params["match[]"] = selector
        found = prometheus.api(f"/api/v1/label/{label}/values", **params)["data"]
        assert found, f"{board['uid']}: variable {variable['name']} has no values"
        values[variable["name"]] = "|".join(re.escape(v) for v in found)
    return values


@pytest.fixture(scope="module")
def with_recording_rules(prometheus: HistoricalPrometheus, tmp_path_factory: pytest.TempPathFactory
                         ) -> HistoricalPrometheus:
    """The generated recording rules, backfilled over the history's last two hours."""
    from exporter import config as config_module
    from exporter.monitoring import outages, pack, slo
    config = config_module.load(str(Path(__file__).parent.parent / "examples" / "kronoberg.yml"))
    monitoring = pack.load(config)
    folder = tmp_path_factory.mktemp("rules")
    rules = folder / "recording.yml"
    rules.write_text(json.dumps({"groups": slo.recording_groups(monitoring)}))
    prometheus.backfill_rules(rules, END - RECORDING_SECONDS, END)
    # The outage table's rules read only the outage alerts' series: the whole month.
    outage_rules = folder / "outages.yml"
    outage_rules.write_text(json.dumps({"groups": [outages.group(monitoring)]}))
    prometheus.backfill_rules(outage_rules, END - OUTAGE_DAYS * 86400, END)
    return prometheus


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_returns_data_on_the_history(
        with_recording_rules: HistoricalPrometheus, path: Path) -> None:
    prometheus = with_recording_rules
    board = json.loads(path.read_text(encoding="utf-8"))
    values = variable_values(prometheus, board, END)
    queries = [(panel["title"], t) for panel in board["panels"]
               for t in panel.get("targets", [])]
    queries += [(f"annotation {a['name']}", {**a, "instant": True})
                for a in board["annotations"]["list"] if a.get("expr")]
    empty, failed = [], []
    for title, query in queries:
        answer = run_panel_query(prometheus, query, values, grafana_range(board), END - 60)
        if answer.get("status") != "success":
            failed.append(f"{title}: {answer.get('error')}")
        elif not answer["data"]["result"] and (board["uid"], title) not in MAY_BE_EMPTY:
            empty.append(f"{title}: {query['expr']}")
    assert not failed, "\n".join(failed)
    assert not empty, "queries that return nothing:\n" + "\n".join(empty)


def test_a_stale_probe_shows_as_unknown_not_as_its_last_value(
        prometheus: HistoricalPrometheus) -> None:
    """The overview's link-computer tiles in the hour Ljungby's probes of Z97117 went stale."""
    board = json.loads((DASHBOARDS[0].parent / "overview.json").read_text(encoding="utf-8"))
    (tile,) = [p for p in board["panels"] if p["title"] == "Länkadatorer"]
    assert tile["options"]["reduceOptions"]["calcs"] == ["last"]
    unknown = {m["options"]["-1"]["text"] for m in tile["fieldConfig"]["defaults"]["mappings"]
               if m["type"] == "value"}
    assert unknown == {"okänd"}
    query = expand(tile["targets"][0]["expr"], {"site": ".*", "partner": ".*"}, 6 * 3600)
    answer = prometheus.api("/api/v1/query", query=query, time=f"{STALE[0] + 1800:.0f}")
    values = {(r["metric"]["target"], r["metric"]["site"]): r["value"][1]
              for r in answer["data"]["result"]}
    assert values[("z97117", "ljungby")] == "-1"
    assert values[("z97117", "vaxjo")] == "1"


# -- the outage table: Grafana's transformations, done here by their documented rules ---
def table_rows(answer: dict[str, Any], ref_id: str) -> list[dict[str, Any]]:
    """A range query in table format as Grafana's Prometheus source makes it: a row per
    series and step, with Time (ms), the labels and `Value #<refId>`."""
    return [{"Time": float(t) * 1000, **{k: v for k, v in series["metric"].items()
                                         if k != "__name__"},
             f"Value #{ref_id}": float(value)}
            for series in answer["data"]["result"] for t, value in series["values"]]


def merge(frames: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """`merge`: rows with equal values in every field but the values are one row."""
    fields = sorted({k for rows in frames for row in rows for k in row
                     if not k.startswith("Value #")})
    merged: dict[tuple, dict[str, Any]] = {}
    for rows in frames:
        for row in rows:
            merged.setdefault(tuple(row.get(k) for k in fields), {}).update(row)
    return list(merged.values())


REDUCERS: dict[str, Callable[[list[Any]], Any]] = {
    "max": lambda values: max(v for v in values if v is not None),
    "uniqueValues": lambda values: list(dict.fromkeys(v for v in values if v is not None)),
}


def group_by(rows: list[dict[str, Any]], options: dict) -> list[dict[str, Any]]:
    """`groupBy`: one row per distinct value of the group fields; each aggregated field
    becomes `<name> (<calculation>)`; fields with no option are dropped."""
    keys = [k for k, o in options["fields"].items() if o["operation"] == "groupby"]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        row = dict(zip(keys, key, strict=True))
        for name, option in options["fields"].items():
            if option["operation"] == "aggregate":
                for calc in option["aggregations"]:
                    row[f"{name} ({calc})"] = REDUCERS[calc]([m.get(name) for m in members])
        out.append(row)
    return out


def transform(rows: list[dict[str, Any]], steps: list[dict]) -> list[dict[str, Any]]:
    """The panel's transformations after `merge`, in order."""
    for step in steps:
        options = step["options"]
        if step["id"] == "groupBy":
            rows = group_by(rows, options)
        elif step["id"] == "calculateField":
            binary = options["binary"]
            assert options["mode"] == "binary" and binary["operator"] == "-"
            rows = [{**r, options["alias"]: r[binary["left"]] - r[binary["right"]]}
                    for r in rows]
        elif step["id"] == "organize":
            rows = [{options["renameByName"].get(k, k): v for k, v in r.items()
                     if not options.get("excludeByName", {}).get(k)} for r in rows]
        elif step["id"] == "sortBy":
            (by,) = options["sort"]
            rows = sorted(rows, key=lambda r: r[by["field"]], reverse=by["desc"])
        else:
            raise AssertionError(f"no rule here for Grafana's {step['id']}")
    return rows


def test_the_outage_table_has_one_row_per_outage_as_the_report_counts_them(
        with_recording_rules: HistoricalPrometheus) -> None:
    """The outages of the 30 days before END, from at least one site and longer than
    the role's for:, each with its start, end, length and reason. Start is the first
    evaluation that saw the last site fail (the first failed sample here, as the
    report's); end is the last evaluation that saw every site still down, one minute
    (one evaluation here) before the report's end, the first sample up. Left out:
    Z_B and S_LJ (one site only), Z_C and S_BLIP (never firing: one failed sample)."""
    prometheus = with_recording_rules
    board = json.loads((DASHBOARDS[0].parent / "itops.json").read_text(encoding="utf-8"))
    (panel,) = [p for p in board["panels"] if p["type"] == "table"]
    assert panel["transformations"][0]["id"] == "merge"
    values = variable_values(prometheus, board, END)
    frames = []
    for query in panel["targets"]:
        assert not query["instant"] and query["format"] == "table"
        answer = run_panel_query(prometheus, query, values, grafana_range(board), END)
        assert answer["status"] == "success", answer
        frames.append(table_rows(answer, query["refId"]))
    rows = transform(merge(frames), panel["transformations"][1:])

    def row(target: str, span: tuple[float, float]) -> dict[str, Any]:
        end = span[1] - STEP
        return {"Mål": target, "Början": span[0] * 1000, "Slut": end * 1000,
                "Längd": (end - span[0]) * 1000, "Orsak": ["connect_timeout"]}
    assert rows == [row("skane", S_EDGE), row("z97117", Z_DST), row("skane", S_D),
                    row("z97117", Z_A)]
    overrides = {o["matcher"]["options"]: o["properties"][0]["value"]
                 for o in panel["fieldConfig"]["overrides"]}
    assert overrides == {"Början": "dateTimeAsIso", "Slut": "dateTimeAsIso", "Längd": "ms"}
