"""The exporter's HTTP endpoints, blackbox_exporter style.

One thread per request (ThreadingHTTPServer), so a probe that waits out its
timeout never holds up /metrics or another probe. /probe only ever contacts
targets named in the config: the target parameter is a name, not an address.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from exporter import __version__
from exporter.app import Exporter, Overloaded, UnknownProbe
from exporter.config.webconfig import WebConfig
from exporter.metrics import WebInfoCollector, render_probe
from exporter.web import oncall, oncall_html, runbooks
from exporter.web.oncall import OnCallStatus

logger = logging.getLogger("dicom_exporter.http")
DEFAULT_LISTEN = ":10104"
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
TEXT = "text/plain; charset=utf-8"
TLS_HANDSHAKE_TIMEOUT = 10.0

# Extra pages (the demo's peer switches): path prefix -> handler(request, method).
ExtraEndpoint = Callable[["Handler", str], None]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        exporter: Exporter,
        extra_endpoints: dict[str, ExtraEndpoint] | None = None,
        web: WebConfig | None = None,
        external_url: str | None = None,
    ) -> None:
        self.exporter = exporter
        self.extra_endpoints = extra_endpoints or {}
        self.web = web or WebConfig()
        super().__init__(address, Handler)
        if self.web.ssl_context is not None:
            # The handshake happens in the request's own thread (Handler.setup),
            # so a slow or silent client never holds up accept().
            self.socket = self.web.ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False)
        self.external_url = (external_url or default_external_url(self.url)).rstrip("/")
        # Published on /metrics so alert rules link to runbooks where people reach them.
        self._web_info = WebInfoCollector(self.external_url)
        exporter.registry.register(self._web_info)

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(KeyError):
            self.exporter.registry.unregister(self._web_info)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        scheme = "https" if self.web.ssl_context is not None else "http"
        return f"{scheme}://{host}:{port}"


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = f"dicom-exporter/{__version__}"
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, flushed once per request, and with
    # Nagle off: otherwise the client's delayed ACK adds 40 ms to each answer.
    wbufsize = -1

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(TLS_HANDSHAKE_TIMEOUT)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            logger.debug("connection dropped", extra={"fields": {"error": str(exc)}})

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format % args)

    # -- responses ---------------------------------------------------------
    def reply(self, status: int, body: bytes | str, content_type: str = TEXT) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (e.g. its scrape timeout passed): nothing to answer.
                logger.debug("client went away before the answer", extra={"fields": {
                    "path": self.path}})
                self.close_connection = True

    # -- dispatch ----------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        if not self.server.web.authorized(self.headers.get("Authorization")):
            self.send_response(HTTPStatus.UNAUTHORIZED)
            self.send_header("WWW-Authenticate", 'Basic realm="dicom-exporter"')
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"Unauthorized\n")
            return
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        self.url_path = parts.path
        endpoints: dict[str, Callable[[str], None]] = {
            "/probe": self._probe,
            "/metrics": self._metrics,
            "/sd": self._sd,
            "/-/healthy": self._healthy,
            "/-/ready": self._healthy,
            "/-/reload": self._reload,
            "/": self._landing,
            "/status.json": self._status_json,
        }
        handler = endpoints.get(self.url_path)
        if handler is not None:
            handler(method)
            return
        if self.url_path == "/runbooks" or self.url_path.startswith("/runbooks/"):
            self._runbook(self.url_path.removeprefix("/runbooks").lstrip("/"))
            return
        for prefix, extra in self.server.extra_endpoints.items():
            if self.url_path.startswith(prefix):
                extra(self, method)
                return
        self.reply(HTTPStatus.NOT_FOUND, "not found\n")

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    # -- endpoints ---------------------------------------------------------
    def _probe(self, method: str) -> None:
        target, module = self.param("target"), self.param("module")
        if not target or not module:
            self.reply(HTTPStatus.BAD_REQUEST, "target and module parameters are required\n")
            return
        scrape_timeout = None
        header = self.headers.get(SCRAPE_TIMEOUT_HEADER)
        if header:
            try:
                scrape_timeout = float(header)
            except ValueError:
                self.reply(HTTPStatus.BAD_REQUEST, f"bad {SCRAPE_TIMEOUT_HEADER}: {header!r}\n")
                return
        try:
            report = self.server.exporter.probe(target, module, scrape_timeout)
        except UnknownProbe as exc:
            self.reply(HTTPStatus.BAD_REQUEST, f"{exc}\n")
            return
        except Overloaded as exc:
            status = HTTPStatus.TOO_MANY_REQUESTS if exc.per_target else (
                HTTPStatus.SERVICE_UNAVAILABLE)
            self.reply(status, f"{exc}\n")
            return
        metrics = render_probe(report)
        if self.param("debug") == "true":
            text = "Logs for the probe:\n" + "\n".join(report.log)
            text += "\n\nMetrics that would have been returned:\n" + metrics.decode()
            self.reply(HTTPStatus.OK, text)
            return
        self.reply(HTTPStatus.OK, metrics, CONTENT_TYPE_LATEST)

    def _metrics(self, method: str) -> None:
        body = generate_latest(self.server.exporter.registry)
        self.reply(HTTPStatus.OK, body, CONTENT_TYPE_LATEST)

    def _sd(self, method: str) -> None:
        config = self.server.exporter.config
        groups = []
        for target in config.targets.values():
            for module in target.modules:
                labels = {
                    **target.labels,
                    "module": module,
                    "prober": config.modules[module].prober,
                    "ae_title": target.ae_title,
                    "__param_module": module,
                }
                groups.append({"targets": [target.name], "labels": labels})
        self.reply(HTTPStatus.OK, json.dumps(groups, indent=1), "application/json")

    def _healthy(self, method: str) -> None:
        self.reply(HTTPStatus.OK, "Healthy\n")

    def _reload(self, method: str) -> None:
        if method != "POST":
            self.reply(HTTPStatus.METHOD_NOT_ALLOWED, "use POST to reload\n")
            return
        problems = self.server.exporter.reload()
        if problems is None:
            self.reply(HTTPStatus.OK, "reloaded\n")
        else:
            self.reply(
                HTTPStatus.BAD_REQUEST,
                f"failed to reload config, keeping the running one:\n{problems}\n",
            )

    def _runbook(self, name: str) -> None:
        if self.url_path == "/runbooks":
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", "/runbooks/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        page = runbooks.render(name or runbooks.INDEX)
        if page is None:
            self.reply(HTTPStatus.NOT_FOUND, "no such runbook\n")
            return
        self.reply(HTTPStatus.OK, page, "text/html; charset=utf-8")

    def _oncall(self) -> OnCallStatus:
        exporter = self.server.exporter
        return oncall.build(exporter.config, exporter.stats.snapshot(), time.time())

    def _landing(self, method: str) -> None:
        refresh = self.param("refresh") or ""
        seconds = int(refresh) if refresh.isdigit() else oncall_html.REFRESH_SECONDS
        page = oncall_html.render(self._oncall(), seconds)
        self.reply(HTTPStatus.OK, page, "text/html; charset=utf-8")

    def _status_json(self, method: str) -> None:
        body = json.dumps(dataclasses.asdict(self._oncall()), ensure_ascii=False, indent=1)
        self.reply(HTTPStatus.OK, body, "application/json; charset=utf-8")


def default_external_url(listen_url: str) -> str:
    """The listen URL, with this host's name where it listens on every interface.

    As Prometheus' own --web.external-url default: a wildcard address is no
    place a browser can go, the host name is.
    """
    parts = urlsplit(listen_url)
    host = parts.hostname or ""
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{parts.port}"


def check_external_url(text: str) -> str:
    """An absolute http(s) URL without query or fragment; raises ValueError otherwise."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or (
            parts.fragment):
        raise ValueError(f"invalid external URL {text!r} (use e.g. https://host:10104)")
    return text.rstrip("/")


def parse_listen_address(text: str) -> tuple[str, int]:
    """Prometheus-style `host:port`; an empty host means all interfaces."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {text!r} (use host:port, e.g. :10104)")
    return host.strip("[]"), int(port)


def start(
    exporter: Exporter,
    address: tuple[str, int],
    extra_endpoints: dict[str, ExtraEndpoint] | None = None,
    web: WebConfig | None = None,
    external_url: str | None = None,
) -> tuple[Server, threading.Thread]:
    server = Server(address, exporter, extra_endpoints, web, external_url)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return server, thread
