"""The whole monitoring chain on loopback, two sites as production runs it:
peers → exporters → Prometheus → clustered Alertmanagers → a notification sink.

One simulated peer per Kronoberg target (in this process). Each site (Växjö,
Ljungby) has its own exporter (`python -m exporter serve` with
examples/vaxjo.yml or ljungby.yml pointed at the peers), its own Debian
`prometheus` (prometheus/prometheus.yml: scrapes both exporters, sends to both
Alertmanagers, external label `replica` dropped from alerts) and its own
Debian `prometheus-alertmanager` (alerts/alertmanager.yml, receivers pointed
at an in-process sink that records every notification), the two
Alertmanagers gossiping as one cluster. Every site's programs are separate
processes, so a test can SIGKILL a whole site. Everything listens on
127.0.0.1 and keeps its data in a temporary folder.

It reads the repository's alerts/ and examples/, so it runs from a checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from exporter.demo.embedded import loopback_config, simulate
from exporter.demo.simulated import LOOPBACK, PeerSet

ROOT = Path(__file__).resolve().parent.parent
SITES = ("vaxjo", "ljungby")
EXAMPLE_EXPORTERS = {"vaxjo": "dicom-exporter.vaxjo.invalid:10104",
                     "ljungby": "dicom-exporter.ljungby.invalid:10104"}
LINK_COMPUTER_JOB = "dicom_probe_link_computer"
# prometheus/prometheus.yml's external label `replica` comes from this variable,
# expanded by Prometheus with this flag (as the shipped systemd drop-in does).
REPLICA_VARIABLE = "DICOM_MONITOR_REPLICA"
PROMETHEUS_FLAGS = ("--enable-feature=expand-external-labels",)
# Each exporter is probed by both Prometheus: twice the shipped default (4).
MAX_PER_TARGET = 8


class StackError(RuntimeError):
    """The stack cannot start: a program or a repository file is missing."""


def _program(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise StackError(f"{' or '.join(names)} is not installed (Debian package: see README)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise StackError(f"the program behind {url} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.2)
    raise StackError(f"{url} not ready after {timeout}s")


def prometheus_config(exporters: dict[str, str], interval: str | None,
                      alertmanagers: list[str] | None, partner_interval: str | None = None
                      ) -> str:
    """prometheus/prometheus.yml with each site's exporter at its loopback address.

    `interval` replaces every scrape and evaluation interval (the shipped
    ones when None); `partner_interval`, if given, that of every probe job
    but the link computers'. Sites not in `exporters` are dropped; without
    `alertmanagers`, so is alerting.
    """
    document = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text("utf-8"))
    if interval is not None:
        document["global"].update(scrape_interval=interval, evaluation_interval=interval,
                                  scrape_timeout=interval)
        for job in document["scrape_configs"]:
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
            if partner_interval and job.get("metrics_path") == "/probe" and (
                    job["job_name"] != LINK_COMPUTER_JOB):
                job.update(scrape_interval=partner_interval, scrape_timeout=interval)
    document["rule_files"] = [str(ROOT / "alerts" / name)
                              for name in ("dicom.rules.yml", "dicom.calendar.rules.yml")]
    if alertmanagers is None:
        del document["alerting"]
    else:
        document["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = alertmanagers
    wanted = {EXAMPLE_EXPORTERS[site] for site in exporters}
    for job in document["scrape_configs"]:
        if "http_sd_configs" in job:
            job["http_sd_configs"] = [dict(sd) for sd in job["http_sd_configs"]
                                      if any(address in sd["url"] for address in wanted)]
        for static in job.get("static_configs", []):
            static["targets"] = [t for t in static["targets"] if t in wanted]
    text = yaml.safe_dump(document, allow_unicode=True)
    for site, address in exporters.items():
        text = text.replace(EXAMPLE_EXPORTERS[site], address)
    if ".invalid" in text:
        raise StackError("a host under .invalid is left: every address must be on loopback")
    return text


def alertmanager_config(sink: str, watchdog_repeat: str | None = None,
                        pinned_intervals: dict[str, bool] | None = None) -> str:
    """alerts/alertmanager.yml with every receiver sent to the local sink instead.

    `watchdog_repeat` shortens how often the dead man's switch hears the
    Watchdog (tests prove it stops without waiting minutes). `pinned_intervals`
    (time interval name -> inside) makes those intervals always or never
    match, so a scenario's time of day does not depend on the real clock.
    Routes, receivers and inhibitions are otherwise the shipped ones.
    """
    document = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text("utf-8"))
    for interval in document.get("time_intervals", []):
        if pinned_intervals is not None and interval["name"] in pinned_intervals:
            inside = pinned_intervals[interval["name"]]
            interval["time_intervals"] = [{}] if inside else [{"years": ["1999"]}]
    document.pop("global", None)
    document["templates"] = [str(ROOT / "alerts" / "templates" / "*.tmpl")]
    for receiver in document["receivers"]:
        name = receiver["name"]
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        receiver["webhook_configs"] = [{"url": f"{sink}/{name}", "send_resolved": True}]
    if watchdog_repeat is not None:
        for route in document["route"].get("routes", []):
            if 'alertname="Watchdog"' in route.get("matchers", []):
                route.update(group_interval=watchdog_repeat, repeat_interval=watchdog_repeat)
    return yaml.safe_dump(document, allow_unicode=True)


@dataclass
class Notification:
    receiver: str
    status: str
    alerts: list[dict[str, Any]]
    group_key: str = ""
    sender: str = ""  # externalURL of the Alertmanager that sent it
    received_at: float = 0.0  # time.monotonic()


class Sink(ThreadingHTTPServer):
    """Stands in for the pager gateway, mail and dead man's switch: records all.

    It deduplicates nothing: whatever the Alertmanagers send is recorded.
    """

    daemon_threads = True

    def __init__(self, echo: Callable[[str], None] | None) -> None:
        self.received: list[Notification] = []
        self.lock = threading.Lock()
        self.echo = echo
        super().__init__((LOOPBACK, 0), _SinkHandler)

    def notifications(self, receiver: str | None = None, alertname: str | None = None,
                      **labels: str) -> list[Notification]:
        """What arrived so far, for one receiver and alert (labels of any alert in it)."""
        with self.lock:
            received = list(self.received)
        return [n for n in received if receiver in (None, n.receiver) and any(
            alertname in (None, a["labels"].get("alertname"))
            and all(a["labels"].get(k) == v for k, v in labels.items()) for a in n.alerts)]


class _SinkHandler(BaseHTTPRequestHandler):
    server: Sink

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        receiver = self.path.strip("/")
        note = Notification(receiver, body.get("status", ""), body.get("alerts", []),
                            body.get("groupKey", ""), body.get("externalURL", ""),
                            time.monotonic())
        with self.server.lock:
            self.server.received.append(note)
        if self.server.echo is not None:
            for alert in note.alerts:
                if alert["labels"].get("alertname") != "Watchdog":
                    self.server.echo(
                        f"[{receiver}] {alert['status']}: {alert['labels'].get('alertname')} "
                        f"{alert['annotations'].get('summary', '')} "
                        f"{alert['annotations'].get('runbook_url', '')}")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", "0")
        self.end_headers()


class PeerSwitch(ThreadingHTTPServer):
    """POST /peers/NAME?state=up|down|reject: take a simulated peer down or up."""

    daemon_threads = True

    def __init__(self, peers: PeerSet) -> None:
        self.peers = peers
        super().__init__((LOOPBACK, 0), _SwitchHandler)


class _SwitchHandler(BaseHTTPRequestHandler):
    server: PeerSwitch

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self, status: HTTPStatus, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        name = parts.path.removeprefix("/peers/")
        state = parse_qs(parts.query).get("state", [""])[-1]
        try:
            self.server.peers.set_state(name, state)
        except KeyError:
            self._answer(HTTPStatus.NOT_FOUND, f"no simulated peer {name!r}\n")
        except ValueError as exc:
            self._answer(HTTPStatus.BAD_REQUEST, f"{exc}\n")
        else:
            self._answer(HTTPStatus.OK, f"{name} is {state}\n")


@dataclass
class Site:
    """One site's monitoring: its exporter, Prometheus and Alertmanager processes."""

    name: str
    exporter: subprocess.Popen[bytes]
    exporter_url: str
    prometheus: subprocess.Popen[bytes]
    prometheus_url: str
    alertmanager: subprocess.Popen[bytes]
    alertmanager_url: str

    @property
    def processes(self) -> tuple[subprocess.Popen[bytes], ...]:
        return (self.exporter, self.prometheus, self.alertmanager)

    def kill(self) -> None:
        """The site is lost: SIGKILL every process of it, no clean shutdown."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait()

    def stop(self) -> None:
        for process in (self.prometheus, self.alertmanager, self.exporter):
            stop_process(process)


def _start(command: list[str], log: Path, env: dict[str, str] | None = None
           ) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                env={**os.environ, **(env or {})})


@dataclass
class Stack:
    workdir: Path
    peers: PeerSet
    sites: dict[str, Site]
    sink: Sink
    switch: PeerSwitch
    _temp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, interval: str | None = None, workdir: Path | None = None,
              echo: Callable[[str], None] | None = None,
              watchdog_repeat: str | None = None, resend_delay: str | None = None,
              partner_interval: str | None = None,
              pinned_intervals: dict[str, bool] | None = None) -> Stack:
        """Start both sites.

        `interval`: every scrape and evaluation interval (None: the shipped
        ones of prometheus/prometheus.yml); `partner_interval`: that of the probe
        jobs but the link computers' (the simulated peers share one process:
        two Prometheus probing everything every few seconds starve them).
        `resend_delay`: how often Prometheus
        re-sends a firing alert (its default 1m); an alert it stops sending
        ends in Alertmanager after four of these. `watchdog_repeat` and
        `pinned_intervals`: see alertmanager_config.
        """
        for needed in ("alerts/dicom.rules.yml", "alerts/alertmanager.yml",
                       "prometheus/prometheus.yml", "examples/vaxjo.yml"):
            if not (ROOT / needed).exists():
                raise StackError(f"{needed} not found: run the stack from a checkout")
        prometheus_bin = _program("prometheus")
        alertmanager_bin = _program("prometheus-alertmanager", "alertmanager")
        temp = None
        if workdir is None:
            temp = tempfile.TemporaryDirectory(prefix="dicom-stack-")
            workdir = Path(temp.name)
        started: list[Callable[[], None]] = []
        try:
            kronoberg = yaml.safe_load((ROOT / "examples" / "kronoberg.yml").read_text("utf-8"))
            peers = simulate(kronoberg)
            started.append(peers.stop)
            switch = PeerSwitch(peers)
            threading.Thread(target=switch.serve_forever, daemon=True).start()
            started.append(switch.shutdown)
            sink = Sink(echo)
            threading.Thread(target=sink.serve_forever, daemon=True).start()
            started.append(sink.shutdown)
            sink_url = f"http://{LOOPBACK}:{sink.server_address[1]}"

            ports = {site: {kind: _free_port() for kind in
                            ("exporter", "prometheus", "alertmanager", "cluster")}
                     for site in SITES}
            exporters = {site: f"{LOOPBACK}:{ports[site]['exporter']}" for site in SITES}
            alertmanagers = [f"{LOOPBACK}:{ports[site]['alertmanager']}" for site in SITES]
            peers_flags = [f"--cluster.peer={LOOPBACK}:{ports[site]['cluster']}"
                           for site in SITES]
            (workdir / "alertmanager.yml").write_text(
                alertmanager_config(sink_url, watchdog_repeat, pinned_intervals), "utf-8")
            (workdir / "prometheus.yml").write_text(
                prometheus_config(exporters, interval, alertmanagers, partner_interval), "utf-8")
            processes: dict[str, dict[str, subprocess.Popen[bytes]]] = {site: {} for site in SITES}
            for site in SITES:
                folder = workdir / site
                folder.mkdir(exist_ok=True)
                source = ROOT / "examples" / f"{site}.yml"
                _, text = loopback_config(yaml.safe_load(source.read_text("utf-8")), peers,
                                          f"{source.name} (stack, on loopback)")
                (folder / "exporter.yml").write_text(text, "utf-8")
                exporter = processes[site]["exporter"] = _start(
                    [sys.executable, "-m", "exporter", "--log.level=warn", "serve",
                     f"--config.file={folder / 'exporter.yml'}",
                     f"--web.listen-address={exporters[site]}",
                     f"--web.external-url=http://{exporters[site]}",
                     # Two Prometheus probe every target through each exporter.
                     f"--probe.max-per-target={MAX_PER_TARGET}"], folder / "exporter.log")
                started.append(functools.partial(stop_process, exporter))
                alertmanager = processes[site]["alertmanager"] = _start(
                    [alertmanager_bin, f"--config.file={workdir / 'alertmanager.yml'}",
                     f"--storage.path={folder / 'alertmanager-data'}",
                     f"--web.listen-address={LOOPBACK}:{ports[site]['alertmanager']}",
                     f"--web.external-url=http://{LOOPBACK}:{ports[site]['alertmanager']}",
                     f"--cluster.listen-address={LOOPBACK}:{ports[site]['cluster']}",
                     *peers_flags], folder / "alertmanager.log")
                started.append(functools.partial(stop_process, alertmanager))
            for site in SITES:
                _wait_ready(f"http://{exporters[site]}/-/healthy", processes[site]["exporter"])
                _wait_ready(f"http://{LOOPBACK}:{ports[site]['alertmanager']}/-/ready",
                            processes[site]["alertmanager"])
            # Prometheus reads the targets from the exporters' /sd at start, so
            # it starts once they answer (else the first SD refresh is a minute off).
            for site in SITES:
                folder = workdir / site
                prometheus = processes[site]["prometheus"] = _start(
                    [prometheus_bin, f"--config.file={workdir / 'prometheus.yml'}",
                     f"--storage.tsdb.path={folder / 'prometheus-data'}",
                     f"--web.listen-address={LOOPBACK}:{ports[site]['prometheus']}",
                     *PROMETHEUS_FLAGS,
                     *([f"--rules.alert.resend-delay={resend_delay}"] if resend_delay else [])],
                    folder / "prometheus.log", {REPLICA_VARIABLE: site})
                started.append(functools.partial(stop_process, prometheus))
            sites = {site: Site(site, processes[site]["exporter"], f"http://{exporters[site]}",
                                processes[site]["prometheus"],
                                f"http://{LOOPBACK}:{ports[site]['prometheus']}",
                                processes[site]["alertmanager"],
                                f"http://{LOOPBACK}:{ports[site]['alertmanager']}")
                     for site in SITES}
            for running in sites.values():
                _wait_ready(f"{running.prometheus_url}/-/ready", running.prometheus)
        except BaseException:
            for stop in reversed(started):
                with contextlib.suppress(Exception):
                    stop()
            if temp is not None:
                temp.cleanup()
            raise
        return cls(workdir, peers, sites, sink, switch, temp)

    # The Växjö site's programs: where single-site checks look.
    @property
    def prometheus_url(self) -> str:
        return self.sites["vaxjo"].prometheus_url

    @property
    def alertmanager_url(self) -> str:
        return self.sites["vaxjo"].alertmanager_url

    @property
    def switch_url(self) -> str:
        return f"http://{LOOPBACK}:{self.switch.server_address[1]}"

    def exporter_url(self, site: str) -> str:
        return self.sites[site].exporter_url

    def stop(self) -> None:
        for site in self.sites.values():
            site.stop()
        for server in (self.sink, self.switch):
            server.shutdown()
            server.server_close()
        self.peers.stop()
        if self._temp is not None:
            self._temp.cleanup()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate, and kill what does not stop within ten seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The simulated peers are pynetdicom SCPs in one process: a few seconds between
# scrapes keeps them from eating the CPU the probes measure.
FAST_INTERVAL = "3s"


def main(argv: list[str] | None = None) -> int:
    """Run peers and both sites (exporter, Prometheus, Alertmanager) on 127.0.0.1.

    Needs the Debian packages prometheus and prometheus-alertmanager, and a
    checkout of the repository (it reads alerts/ and examples/).
    """
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=main.__doc__)
    parser.add_argument("--fast", action="store_true",
                        help=f"scrape and evaluate every {FAST_INTERVAL}, not the shipped "
                             "intervals")
    fast = parser.parse_args(argv).fast
    echo = functools.partial(print, flush=True)
    try:
        running = Stack.start(FAST_INTERVAL if fast else None, echo=echo,
                              resend_delay=FAST_INTERVAL if fast else None)
    except StackError as exc:
        print(f"cannot start the stack: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        echo("Simulated peers on 127.0.0.1: "
             + ", ".join(f"{n}:{p.port}" for n, p in running.peers.peers.items()))
        for name, site in running.sites.items():
            echo(f"{name:<8} exporter {site.exporter_url}/  Prometheus "
                 f"{site.prometheus_url}/alerts  Alertmanager {site.alertmanager_url}/#/alerts")
        echo(f"Dashboards: grafana/dashboards/*.json (import into Grafana, "
             f"datasource {running.prometheus_url})")
        echo("Take a simulated peer down (up|down|reject):")
        echo(f"  curl -X POST '{running.switch_url}/peers/z97117?state=down'")
        echo("Lose a site: kill -9 its three processes: "
             + ", ".join(f"{name} {' '.join(str(p.pid) for p in site.processes)}"
                         for name, site in running.sites.items()))
        echo("Notifications the pager, mail and dead man's switch would get are printed "
             "below. Stop with Ctrl-C.")
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
