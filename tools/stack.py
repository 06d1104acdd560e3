"""The whole monitoring chain on loopback: peers → exporters → Prometheus →
Alertmanager → a notification sink, as production runs it.

One simulated peer per Kronoberg target, two exporters (the Växjö and
Ljungby vantage points, examples/vaxjo.yml and examples/ljungby.yml) probing
them, the Debian `prometheus` with alerts/ and examples/prometheus.yml, and
the Debian `prometheus-alertmanager` with alerts/alertmanager.yml whose
receivers are pointed at an in-process sink that prints every notification.
Everything listens on 127.0.0.1 and keeps its data in a temporary folder.

It reads the repository's alerts/ and examples/, so it runs from a checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
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

import yaml

from exporter.app import Exporter
from exporter.demo.embedded import loopback_config, peer_switch, simulate
from exporter.demo.simulated import LOOPBACK, PeerSet
from exporter.web import server as web_server

ROOT = Path(__file__).resolve().parent.parent
SITES = ("vaxjo", "ljungby")
EXAMPLE_EXPORTERS = {"vaxjo": "dicom-exporter.vaxjo.invalid:10104",
                     "ljungby": "dicom-exporter.ljungby.invalid:10104"}
SHIPPED_INTERVAL = "15s"


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
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
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


def prometheus_config(exporters: dict[str, str], interval: str, alertmanager: str | None
                      ) -> str:
    """examples/prometheus.yml with each site's exporter at its loopback address.

    Sites not in `exporters` are dropped; without `alertmanager`, so is alerting.
    """
    document = yaml.safe_load((ROOT / "examples" / "prometheus.yml").read_text("utf-8"))
    document["global"].update(scrape_interval=interval, evaluation_interval=interval,
                              scrape_timeout=interval)
    document["rule_files"] = [str(ROOT / "alerts" / "dicom.rules.yml")]
    if alertmanager is None:
        del document["alerting"]
    else:
        document["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    wanted = {EXAMPLE_EXPORTERS[site] for site in exporters}
    for job in document["scrape_configs"]:
        if "http_sd_configs" in job:
            job["http_sd_configs"] = [sd for sd in job["http_sd_configs"]
                                      if any(address in sd["url"] for address in wanted)]
        for static in job.get("static_configs", []):
            static["targets"] = [t for t in static["targets"] if t in wanted]
    text = yaml.safe_dump(document, allow_unicode=True)
    for site, address in exporters.items():
        text = text.replace(EXAMPLE_EXPORTERS[site], address)
    if ".invalid" in text:
        raise StackError("a host under .invalid is left: every address must be on loopback")
    return text


def alertmanager_config(sink: str) -> str:
    """alerts/alertmanager.yml with every receiver sent to the local sink instead."""
    document = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text("utf-8"))
    document.pop("global", None)
    document["templates"] = [str(ROOT / "alerts" / "templates" / "*.tmpl")]
    for receiver in document["receivers"]:
        name = receiver["name"]
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        receiver["webhook_configs"] = [{"url": f"{sink}/{name}", "send_resolved": True}]
    return yaml.safe_dump(document, allow_unicode=True)


@dataclass
class Notification:
    receiver: str
    status: str
    alerts: list[dict]


class Sink(ThreadingHTTPServer):
    """Stands in for the pager gateway, mail and dead man's switch: records all."""

    daemon_threads = True

    def __init__(self, echo: Callable[[str], None] | None) -> None:
        self.received: list[Notification] = []
        self.lock = threading.Lock()
        self.echo = echo
        super().__init__((LOOPBACK, 0), _SinkHandler)


class _SinkHandler(BaseHTTPRequestHandler):
    server: Sink

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        receiver = self.path.strip("/")
        note = Notification(receiver, body.get("status", ""), body.get("alerts", []))
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


@dataclass
class Stack:
    workdir: Path
    peers: PeerSet
    exporters: dict[str, tuple[Exporter, web_server.Server]]
    prometheus: subprocess.Popen
    prometheus_url: str
    alertmanager: subprocess.Popen
    alertmanager_url: str
    sink: Sink
    _temp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @classmethod
    def start(cls, interval: str = SHIPPED_INTERVAL, workdir: Path | None = None,
              echo: Callable[[str], None] | None = None) -> Stack:
        for needed in ("alerts/dicom.rules.yml", "alerts/alertmanager.yml",
                       "examples/prometheus.yml", "examples/vaxjo.yml"):
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
            exporters = {}
            for site in SITES:
                source = ROOT / "examples" / f"{site}.yml"
                config, _ = loopback_config(yaml.safe_load(source.read_text("utf-8")), peers,
                                            f"{source.name} (stack, on loopback)")
                exporter = Exporter(config)
                server, _ = web_server.start(exporter, (LOOPBACK, 0), {"/demo": peer_switch(peers)})
                started.append(server.shutdown)
                exporters[site] = (exporter, server)
            sink = Sink(echo)
            threading.Thread(target=sink.serve_forever, daemon=True).start()
            started.append(sink.shutdown)
            sink_url = f"http://{LOOPBACK}:{sink.server_address[1]}"

            am_port = _free_port()
            (workdir / "alertmanager.yml").write_text(alertmanager_config(sink_url), "utf-8")
            alertmanager = subprocess.Popen(
                [alertmanager_bin, f"--config.file={workdir / 'alertmanager.yml'}",
                 f"--storage.path={workdir / 'alertmanager-data'}",
                 f"--web.listen-address={LOOPBACK}:{am_port}",
                 "--cluster.listen-address="],  # no gossip: a single local instance
                stdout=subprocess.DEVNULL, stderr=(workdir / "alertmanager.log").open("wb"),
            )
            started.append(lambda: stop_process(alertmanager))
            am_url = f"http://{LOOPBACK}:{am_port}"
            _wait_ready(f"{am_url}/-/ready", alertmanager)

            prom_port = _free_port()
            addresses = {site: f"{LOOPBACK}:{server.server_address[1]}"
                         for site, (_, server) in exporters.items()}
            (workdir / "prometheus.yml").write_text(
                prometheus_config(addresses, interval, f"{LOOPBACK}:{am_port}"), "utf-8")
            prometheus = subprocess.Popen(
                [prometheus_bin, f"--config.file={workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                 f"--web.listen-address={LOOPBACK}:{prom_port}"],
                stdout=subprocess.DEVNULL, stderr=(workdir / "prometheus.log").open("wb"),
            )
            started.append(lambda: stop_process(prometheus))
            prom_url = f"http://{LOOPBACK}:{prom_port}"
            _wait_ready(f"{prom_url}/-/ready", prometheus)
        except BaseException:
            for stop in reversed(started):
                with contextlib.suppress(Exception):
                    stop()
            if temp is not None:
                temp.cleanup()
            raise
        return cls(workdir, peers, exporters, prometheus, prom_url, alertmanager, am_url, sink,
                   temp)

    def exporter_url(self, site: str) -> str:
        return self.exporters[site][1].url

    def stop(self) -> None:
        stop_process(self.prometheus)
        stop_process(self.alertmanager)
        for _, server in self.exporters.values():
            server.shutdown()
            server.server_close()
        self.sink.shutdown()
        self.sink.server_close()
        self.peers.stop()
        if self._temp is not None:
            self._temp.cleanup()


def stop_process(process: subprocess.Popen) -> None:
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
    """Run peers, both exporters, Prometheus and Alertmanager on 127.0.0.1.

    Needs the Debian packages prometheus and prometheus-alertmanager, and a
    checkout of the repository (it reads alerts/ and examples/).
    """
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=main.__doc__)
    parser.add_argument("--fast", action="store_true",
                        help=f"scrape and evaluate every {FAST_INTERVAL}, not the shipped 15 s")
    fast = parser.parse_args(argv).fast
    echo = functools.partial(print, flush=True)
    try:
        running = Stack.start(FAST_INTERVAL if fast else SHIPPED_INTERVAL, echo=echo)
    except StackError as exc:
        print(f"cannot start the stack: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        echo("Simulated peers on 127.0.0.1: "
             + ", ".join(f"{n}:{p.port}" for n, p in running.peers.peers.items()))
        for site in running.exporters:
            echo(f"Exporter {site:<8} {running.exporter_url(site)}/")
        echo(f"Prometheus       {running.prometheus_url}/alerts")
        echo(f"Alertmanager     {running.alertmanager_url}/#/alerts")
        echo(f"Dashboards       grafana/dashboards/*.json (import into Grafana, "
             f"datasource {running.prometheus_url})")
        echo("Take a simulated peer down (up|down|reject), from either exporter:")
        echo(f"  curl -X POST '{running.exporter_url('vaxjo')}/demo/peers/z97117?state=down'")
        echo("Notifications the pager, mail and dead man's switch would get are printed "
             "below. Stop with Ctrl-C.")
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
