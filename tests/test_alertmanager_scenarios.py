"""The scenario tables (alerts/scenarios.py) through a real Alertmanager running the shipped
alerts/alertmanager.yml: routing, inhibition, grouping, receivers and time of day.

The test copy of the shipped file differs only in receiver addresses (one sink per
receiver on 127.0.0.1, an SMTP sink for the mailbox) and shortened waits; a test
proves it. Alertmanager decides office hours by the real clock, so each scenario
pins the two time intervals to the scenario's wall-clock time (always/never), and a
separate test runs the shipped intervals unchanged against the real clock. The
alerts each stage fires are fed through the v2 API, all at once; the sinks record
every notification as it comes (no dedup); each stage must deliver exactly its
table, and nothing else may arrive.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import email
import email.policy
import json
import shutil
import socketserver
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from alerts import scenarios
from alerts.scenarios import LJ, SCENARIOS, SITES, VX, Notification, Scenario
from exporter import config as config_module
from exporter import routine
from exporter.route_state import HopState, RouteStatus, evaluate, monitor_only_rejection
from tests.support.realpeers import LOOPBACK, free_port, require

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "alerts" / "alertmanager.yml"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
WAITS = {"group_wait": "1s", "group_interval": "3s"}
GROUP_INTERVAL = 3.0
RECEIVERS = ("admin-pager", "arkivet", "lars", "it-mail", "deadman")
SITE_CONFIGS = {site: config_module.load(ROOT / "examples" / f"{site}.yml")
                for site, _ in SITES}
INSTANCE = dict(SITES)


# -- office hours, as the shipped time intervals define them -------------------------
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]


def _in_ranges(value: int, ranges: list[str], names: list[str] | None = None) -> bool:
    for each in ranges:
        low, _, high = each.partition(":")
        def number(text: str) -> int:
            return names.index(text) + (1 if names is _MONTHS else 0) if names else int(text)
        if number(low) <= value <= number(high or low):
            return True
    return False


def in_interval(config: dict, name: str, when: datetime.datetime) -> bool:
    """Alertmanager's time_intervals semantics, for the fields the shipped file uses."""
    interval = next(i for i in config["time_intervals"] if i["name"] == name)
    for spec in interval["time_intervals"]:
        local = when.astimezone(ZoneInfo(spec.get("location", "UTC")))
        checks = [
            "weekdays" not in spec or _in_ranges(local.weekday(), spec["weekdays"], _DAYS),
            "months" not in spec or _in_ranges(local.month, spec["months"], _MONTHS),
            "days_of_month" not in spec or _in_ranges(local.day, spec["days_of_month"]),
            "years" not in spec or _in_ranges(local.year, spec["years"]),
        ]
        if "times" in spec:
            minute = local.hour * 60 + local.minute
            checks.append(any(
                _minutes(t["start_time"]) <= minute < _minutes(t["end_time"])
                for t in spec["times"]))
        if all(checks):
            return True
    return False


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def communicator(config: dict, when: datetime.datetime) -> str:
    office = in_interval(config, "office_hours", when) and not in_interval(
        config, "holidays", when)
    return "arkivet" if office else "lars"


def shipped() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("when", "who"), [
    ("2026-11-28T03:00", "lars"),      # Saturday night
    ("2026-11-25T10:00", "arkivet"),   # Wednesday morning
    ("2026-11-25T06:59", "lars"),      # before office hours
    ("2026-11-25T16:00", "lars"),      # office hours end at 16:00
    ("2026-12-24T10:00", "lars"),      # julafton, a Thursday
    ("2026-06-19T10:00", "lars"),      # midsommarafton 2026, a Friday
    ("2026-03-30T07:30", "arkivet"),   # Monday after the switch to summer time
])
def test_office_hours_by_the_shipped_intervals(when: str, who: str) -> None:
    moment = datetime.datetime.fromisoformat(when).replace(tzinfo=STOCKHOLM)
    assert communicator(shipped(), moment) == who


# -- the test copy -------------------------------------------------------------
def copy_for_test(sinks: dict[str, str], smtp: str) -> dict:
    """The shipped file with sink addresses and short waits, nothing else."""
    config = copy.deepcopy(shipped())
    config["global"]["smtp_smarthost"] = smtp
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = sinks[receiver["name"]]
    def shorten(route: dict) -> None:
        for key, value in WAITS.items():
            if key in route:
                route[key] = value if route[key] != "0s" else "0s"
        for child in route.get("routes", []):
            shorten(child)
    shorten(config["route"])
    return config


def pinned(config: dict, when: datetime.datetime) -> dict:
    """The scenario's clock: office_hours and holidays always or never, as the shipped
    intervals say for that wall-clock time."""
    out = copy.deepcopy(config)
    always, never = [{}], [{"years": ["1999"]}]
    for interval in out["time_intervals"]:
        inside = in_interval(config, interval["name"], when)
        interval["time_intervals"] = always if inside else never
    return out


def _masked(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["global"]["smtp_smarthost"] = "*"
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = "*"
    def mask(route: dict) -> None:
        for key in WAITS:
            if key in route and route[key] != "0s":
                route[key] = "*"
        for child in route.get("routes", []):
            mask(child)
    mask(config["route"])
    return config


def test_the_test_copy_differs_only_in_receiver_addresses_and_waits() -> None:
    ours = copy_for_test(dict.fromkeys(RECEIVERS, "http://127.0.0.1:1/x"), "127.0.0.1:2")
    assert ours != shipped()
    assert _masked(ours) == _masked(shipped())
    when = datetime.datetime(2026, 11, 28, 3, 0, tzinfo=STOCKHOLM)
    scenario_copy = pinned(ours, when)
    assert {k: v for k, v in scenario_copy.items() if k != "time_intervals"} == {
        k: v for k, v in ours.items() if k != "time_intervals"}


# -- sinks -----------------------------------------------------------------------
class Sink:
    """Records every notification a receiver gets, in arrival order. No dedup."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.lock = threading.Lock()

    def add(self, item: dict) -> None:
        with self.lock:
            self.received.append(item)

    def take(self) -> list[dict]:
        with self.lock:
            out, self.received = self.received, []
        return out


def _webhook_server(sink: Sink, receiver: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            sink.add(_from_webhook(receiver, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((LOOPBACK, 0), Handler)


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for Alertmanager without TLS or auth."""

    sink: Sink

    def handle(self) -> None:
        self.wfile.write(b"220 sink ESMTP\r\n")
        data: list[bytes] = []
        while line := self.rfile.readline(65536):
            verb = line[:4].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                while (chunk := self.rfile.readline(65536)) not in (b".\r\n", b""):
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                self.sink.add(_from_mail(b"".join(data)))
                data = []
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb == b"EHLO":
                self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")


def _key(labels: dict[str, str]) -> str:
    if labels.get("route"):
        return labels["route"]
    if labels.get("target"):
        return f"{labels['target']}@{labels.get('site', '')}"
    if labels.get("site"):
        return labels["site"]
    return labels.get("instance", "")


def _from_webhook(receiver: str, body: dict) -> dict:
    firing = {_key(a["labels"]): a["annotations"].get("next_step", "")
              for a in body["alerts"] if a["status"] == "firing"}
    resolved = sorted(_key(a["labels"]) for a in body["alerts"] if a["status"] == "resolved")
    return {"receiver": receiver, "alertname": body["groupLabels"].get("alertname", ""),
            "alerts": firing, "resolved": resolved}


def _from_mail(raw: bytes) -> dict:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    firing, resolved, names = {}, [], set()
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith(("LARM:", "ÅTGÄRDAT:")):
            blocks.append([])
        if blocks:
            blocks[-1].append(line)
    for lines in blocks:
        step = next((ln[len("Nästa steg: "):] for ln in lines if ln.startswith("Nästa steg: ")),
                    "")
        meta = next(ln for ln in lines if ln.startswith("Larm: "))
        fields = dict(part.split(": ", 1) for part in meta.split("  ") if ": " in part)
        names.add(fields["Larm"])
        labels = {"route": fields.get("Väg", ""), "target": fields.get("Mål", ""),
                  "site": fields.get("Plats", ""), "instance": fields.get("Exporter", "")}
        if lines[0].startswith("LARM:"):
            firing[_key(labels)] = step
        else:
            resolved.append(_key(labels))
    return {"receiver": "it-mail", "alertname": ",".join(sorted(names)), "alerts": firing,
            "resolved": sorted(resolved)}


@contextlib.contextmanager
def running_sinks() -> Iterator[tuple[dict[str, Sink], dict[str, str], str]]:
    recorded = {name: Sink() for name in RECEIVERS}
    servers: list[socketserver.BaseServer] = []
    urls = {}
    for name in RECEIVERS:
        if name == "it-mail":
            continue
        server = _webhook_server(recorded[name], name)
        servers.append(server)
        urls[name] = f"http://{LOOPBACK}:{server.server_address[1]}/{name}"
    handler = type("Handler", (_SMTPHandler,), {"sink": recorded["it-mail"]})
    smtp_server = socketserver.ThreadingTCPServer((LOOPBACK, 0), handler)
    smtp_server.daemon_threads = True
    servers.append(smtp_server)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield recorded, urls, f"{LOOPBACK}:{smtp_server.server_address[1]}"
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


class Alertmanager:
    def __init__(self, workdir: Path, config: dict) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(ROOT / "alerts" / "templates", workdir / "templates",
                        dirs_exist_ok=True)
        path = workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process = subprocess.Popen(
            [require("prometheus-alertmanager"), f"--config.file={path}",
             f"--storage.path={workdir / 'data'}",
             f"--web.listen-address={LOOPBACK}:{self.port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=(workdir / "alertmanager.log").open("wb"),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / "alertmanager.log").read_text()) from None
                time.sleep(0.1)

    def post(self, alerts: list[dict]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- what the rules fire in a state (the input) -----------------------------------------
def _probe_labels(config: config_module.Config, name: str, site: str) -> dict[str, str]:
    target = config.targets[name]
    return {"job": "dicom_probe", "instance": INSTANCE[site], "target": name,
            "module": "echo", "prober": "echo", "ae_title": target.ae_title,
            **{k: v for k, v in target.labels.items()}}


def fired(down: dict[str, str], exporter_down: tuple[str, ...]) -> dict[str, dict]:
    """Every alert the rules fire for this state, from both vantage points: id -> alert."""
    alerts: dict[str, dict] = {}

    def add(name: str, labels: dict[str, str], next_step: str = "") -> None:
        labels = {"alertname": name, **labels}
        annotations = {"summary": name, "description": name}
        if next_step:
            annotations["next_step"] = next_step
        alerts[json.dumps(labels, sort_keys=True)] = {"labels": labels,
                                                      "annotations": annotations}

    for site, instance in SITES:
        if instance in exporter_down:
            continue
        config = SITE_CONFIGS[site]
        hops = {name: (HopState.DOWN if name in down else HopState.UP)
                for name in config.targets}
        for name, reason in down.items():  # as route_state.route_hop_states reads them
            if name in config.targets and monitor_only_rejection(
                    config, config.targets[name], "echo", routine.Reason(reason)):
                hops[name] = HopState.UNKNOWN
        partners = [t for t in config.targets.values()
                    if t.labels.get("role") in ("partner", "relay")]
        for name, reason in down.items():
            target = config.targets.get(name)
            if target is None:
                continue
            labels = _probe_labels(config, name, site)
            fault = routine.target_fault(config, target, "echo", routine.Reason(reason))
            if fault is None:
                continue
            extra = {"severity": "critical", "audience": "staff"}
            if fault.situation == "link_computer_down":
                add(fault.runbook, {k: labels[k] for k in ("target", "ae_title", "site",
                                                            "instance")} | extra,
                    fault.next_step)
            elif fault.situation in ("partner_rejects", "receiver_rejects"):
                add(fault.runbook, labels | extra | {"reason": reason}, fault.next_step)
            else:
                add(fault.runbook, labels | extra, fault.next_step)
        if partners and all(t.name in down for t in partners):
            add("DicomAllPartnersFailing",
                {"site": site, "instance": instance, "severity": "critical",
                 "audience": "staff"},
                routine.next_step(config, "all_partners_failing", site))
        for route in config.routes.values():
            state = evaluate(route, hops)
            base = {"job": "dicom_exporter", "instance": instance, "route": route.name,
                    "site": site, "partner": route.partner,
                    "region": config.targets[route.partner].labels["region"],
                    "audience": "staff"}
            if state.status is RouteStatus.FALLBACK and state.active is not None:
                add("RouteOnFallback", base | {"status": "fallback", "severity": "warning",
                                               "path": state.active.path.name},
                    routine.fallback_next_step(config, route, state.active.path,
                                               state.down_hops))
            elif state.status is RouteStatus.NONE:
                add("NoRouteAvailable", base | {"status": "none", "severity": "critical",
                                                "path": route.last_resort},
                    routine.no_route_next_step(config, route, state.down_hops))
    for instance in exporter_down:
        add("DicomExporterDown", {"job": "dicom_exporter", "instance": instance,
                                  "severity": "critical", "audience": "it"})
        for name in ("skane", "z97117"):  # its probes go silent too
            add("DicomProbeScrapeFailing", {"job": "dicom_probe", "instance": instance,
                                            "target": name, "module": "echo",
                                            "severity": "warning", "audience": "it"})
    return alerts


def _payload(alerts: dict[str, dict], ended: bool) -> list[dict]:
    now = datetime.datetime.now(datetime.UTC)
    ends = now - datetime.timedelta(seconds=1) if ended else now + datetime.timedelta(hours=1)
    return [{**alert, "endsAt": ends.isoformat().replace("+00:00", "Z"),
             "generatorURL": "http://127.0.0.1/scenario"} for alert in alerts.values()]


def _expected(notification: Notification, who: str) -> dict:
    receiver = who if notification.receiver == "communicators" else notification.receiver
    return {"receiver": receiver, "alertname": notification.alertname,
            "alerts": dict(notification.alerts), "resolved": sorted(notification.resolved)}


def _canonical(items: list[dict]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True, ensure_ascii=False) for item in items)


def run(scenario: Scenario, sinks: tuple, tmp_path: Path) -> None:
    recorded, urls, smtp = sinks
    for sink in recorded.values():
        sink.take()
    when = datetime.datetime.fromisoformat(scenario.when).replace(tzinfo=STOCKHOLM)
    base = copy_for_test(urls, smtp)
    who = communicator(base, when)
    manager = Alertmanager(tmp_path / "am", pinned(base, when))
    try:
        previous: dict[str, dict] = {}
        for index, stage in enumerate(scenario.stages):
            now = fired(stage.down, scenario.exporter_down)
            gone = {k: v for k, v in previous.items() if k not in now}
            manager.post(_payload(now, ended=False) + _payload(gone, ended=True))
            previous = now
            expected = _canonical([_expected(n, who) for n in stage.expected])
            got: list[dict] = []
            deadline = time.monotonic() + 60
            while len(got) < len(expected) and time.monotonic() < deadline:
                time.sleep(0.2)
                for sink in recorded.values():
                    got.extend(sink.take())
            # Nothing else: two more group intervals with no further notification.
            time.sleep(2 * GROUP_INTERVAL + 1)
            for sink in recorded.values():
                got.extend(sink.take())
            missing = [e for e in expected if e not in _canonical(got)]
            extra = [g for g in _canonical(got) if g not in expected]
            assert _canonical(got) == expected, (
                f"{scenario.name}, stage {index + 1}\nmissing: {missing}\nextra: {extra}")
    finally:
        manager.stop()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario, tmp_path: Path) -> None:
    with running_sinks() as sinks:
        run(scenario, sinks, tmp_path)


def test_the_shipped_time_intervals_route_by_the_real_clock(tmp_path: Path) -> None:
    """No pinning: the real Alertmanager, the real clock, the shipped intervals."""
    with running_sinks() as sinks:
        _real_clock(sinks, tmp_path)


def _real_clock(sinks: tuple, tmp_path: Path) -> None:
    recorded, urls, smtp = sinks
    base = copy_for_test(urls, smtp)
    manager = Alertmanager(tmp_path / "am", base)
    try:
        before = datetime.datetime.now(STOCKHOLM)
        who = communicator(base, before)
        manager.post(_payload(fired({"z83680": "refused"}, ()), ended=False))
        wanted = {who, "admin-pager"}
        got: list[dict] = []
        deadline = time.monotonic() + 60
        while {g["receiver"] for g in got} < wanted and time.monotonic() < deadline:
            time.sleep(0.2)
            for sink in recorded.values():
                got.extend(sink.take())
        after = datetime.datetime.now(STOCKHOLM)
        if communicator(base, after) != who:
            pytest.skip("office hours began or ended during the test")
        link = [g for g in got if g["alertname"] == "DicomLinkComputerDown"]
        assert {g["receiver"] for g in link} == wanted
    finally:
        manager.stop()


def test_every_scenario_expects_something_or_is_the_blip() -> None:
    assert all(stage.expected for s in SCENARIOS for stage in s.stages)
    assert "0" in scenarios.BLIP_Z83680.split()  # the blip has a failed probe
    assert VX != LJ
