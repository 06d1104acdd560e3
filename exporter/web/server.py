"""The exporter's HTTP endpoints, blackbox_exporter style.

Connections are read and answered by a bounded pool of threads waiting on
one epoll (exporter.web.connections), so idle or slow clients cost no thread
and real scrapes keep being answered under load; a probe that waits out its
timeout holds one thread, never /metrics. /probe only ever contacts targets named in
the config: the target parameter is a name, not an address.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from exporter.app import Exporter, Overloaded, UnknownProbe
from exporter.config.webconfig import WebConfig
from exporter.metrics import WebInfoCollector, probe_page
from exporter.reasons import Reason
from exporter.web import oncall, oncall_html, runbooks
from exporter.web.connections import Connection, ConnectionLoop, Limits
from exporter.web.oncall import OnCallStatus

logger = logging.getLogger("dicom_exporter.http")
DEFAULT_LISTEN = ":10104"
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
TEXT = "text/plain; charset=utf-8"
MAX_QUERY_FIELDS = 32
MAX_REFRESH_SECONDS = 86400
MAX_RUNBOOK_NAME = 128
# File descriptors kept free of HTTP connections: probes, config files, logs.
FD_HEADROOM = 128

# Extra pages (the demo's peer switches): path prefix -> handler(request, method).
ExtraEndpoint = Callable[["Handler", str], None]
Address = tuple[str, int]


class ListenError(OSError):
    """A listen address that cannot be bound; the message names it."""


def fit_limits(limits: Limits, probes: int) -> Limits:
    """Keep the connection cap below the file-descriptor limit, leaving room for probes."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits
    room = max(16, soft - FD_HEADROOM - probes)
    workers = max(limits.workers, probes + 8)
    return dataclasses.replace(limits, max_connections=min(limits.max_connections, room),
                               workers=workers)


def bind(address: Address) -> socket.socket:
    """A listening socket; an empty host listens on IPv6 and IPv4 where IPv6 exists."""
    host, port = address
    text = format_address(host, port)
    try:
        if host == "":
            if socket.has_dualstack_ipv6():
                return socket.create_server(("::", port), family=socket.AF_INET6,
                                            dualstack_ipv6=True, backlog=1024)
            return socket.create_server(("0.0.0.0", port), backlog=1024)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, _, _, _, sockaddr = infos[0]
        return socket.create_server(sockaddr[:2] if family == socket.AF_INET else sockaddr,
                                    family=family, backlog=1024)
    except (OSError, UnicodeError) as exc:
        reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
        raise ListenError(f"cannot listen on {text}: {reason}") from None


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Server:
    """The listeners, the connection loop and what the handlers need."""

    def __init__(
        self,
        address: Address | Iterable[Address],
        exporter: Exporter,
        extra_endpoints: dict[str, ExtraEndpoint] | None = None,
        web: WebConfig | None = None,
        limits: Limits | None = None,
        external_url: str | None = None,
        route_prefix: str | None = None,
    ) -> None:
        self.exporter = exporter
        self.extra_endpoints = extra_endpoints or {}
        if web is not None:
            exporter.live.serve_web(web)
        addresses = [address] if isinstance(address, tuple) else list(address)
        listeners: list[socket.socket] = []
        try:
            for each in addresses:
                listeners.append(bind(each))
        except ListenError:
            for listener in listeners:
                listener.close()
            raise
        self.server_address = listeners[0].getsockname()
        self.addresses = [listener.getsockname() for listener in listeners]
        self.limits = fit_limits(limits or Limits(), exporter.limits.total)
        self.loop = ConnectionLoop(listeners, self._respond, lambda: self.web.ssl_context,
                                   self.limits,
                                   lambda sock: self.web.allows_peer(sock.getpeercert()))
        self.pages = PageCache(exporter.metrics.page, lambda: exporter.stats.version)
        self.external_url = (external_url or default_external_url(self.url)).rstrip("/")
        # Every endpoint and link lives under the external URL's path (or
        # --web.route-prefix), as blackbox_exporter and Prometheus do it.
        self.prefix = normal_prefix(route_prefix if route_prefix is not None
                                    else urlsplit(self.external_url).path)
        # Published on /metrics so alert rules link to runbooks where people reach them.
        self._web_info = WebInfoCollector(self.external_url)
        exporter.runtime.register(self._web_info)

    @property
    def web(self) -> WebConfig:
        """The running web config; its reloads belong to `exporter.live`."""
        return self.exporter.live.current.web

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def urls(self) -> list[str]:
        scheme = "https" if self.web.ssl_context is not None else "http"
        return [f"{scheme}://{format_address(*sockname[:2])}" for sockname in self.addresses]

    def reload(self) -> str | None:
        """What SIGHUP and POST /-/reload both do (`Live.reload`): None, or the
        problems, one per line."""
        return self.exporter.live.reload()

    def serve_forever(self) -> None:
        self.loop.run()

    def shutdown(self) -> None:
        self.loop.shutdown()

    def wait_answered(self, timeout: float) -> bool:
        return self.loop.wait_answered(timeout)

    def server_close(self) -> None:
        self.loop.close()
        with contextlib.suppress(KeyError):
            self.exporter.runtime.unregister(self._web_info)

    def _respond(self, request: bytes, connection: Connection) -> tuple[bytes, bool]:
        handler = Handler(request, connection.peer, self, connection.after)
        return handler.wfile.getvalue(), not handler.close_connection


PAGE_MAX_AGE = 1.0
# Methods of RFC 9110 we do not serve: 405; anything else is 501.
KNOWN_METHODS = {"PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
ALLOWED_METHODS = "GET, HEAD, POST"
METHOD_NOT_ALLOWED = "method not allowed\n"


class PageCache:
    """/metrics rendered once for every request that comes while nothing changed.

    At 500 targets the page is 2 MB and takes 10 ms to render: 300 clients
    asking at once (or pipelining, and never reading) cost 3 s of the one
    interpreter the probes share, and a copy each. A page is reused while the
    statistics have not moved on (no probe recorded, no reload) and it is
    less than PAGE_MAX_AGE old (the process and runtime figures in it), and
    one render at a time serves everyone who waits for it.
    """

    def __init__(self, render: Callable[[], bytes], version: Callable[[], object],
                 max_age: float = PAGE_MAX_AGE) -> None:
        self._render, self._version, self.max_age = render, version, max_age
        self._lock = threading.Lock()  # one render at a time
        self._pages: dict[bool, tuple[object, float, bytes]] = {}

    def get(self, gzipped: bool = False) -> bytes:
        page = self._fresh(gzipped)
        if page is not None:
            return page
        with self._lock:
            page = self._fresh(gzipped)  # rendered while this one waited
            if page is None:
                version, now = self._version(), time.monotonic()
                plain = self._fresh(False) if gzipped else None
                page = plain if plain is not None else self._render()
                if plain is None:
                    self._pages[False] = (version, now, page)
                if gzipped:
                    page = gzip.compress(page, compresslevel=6)
                    self._pages[True] = (version, now, page)
            return page

    def _fresh(self, gzipped: bool) -> bytes | None:
        entry = self._pages.get(gzipped)
        if entry is None or entry[0] != self._version() or (
                time.monotonic() - entry[1] >= self.max_age):
            return None
        return entry[2]


class Headers(dict[str, str]):
    """Request headers by lower-cased name, first occurrence kept, as Message.get does.

    Parsed from the head the connection loop has already bounded; the email
    parser behind http.client.parse_headers cost a third of a /probe answer.
    """

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


MAX_HEADERS = 100


_DATE: list[tuple[int, str]] = [(0, "")]
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


class Handler(BaseHTTPRequestHandler):
    """One request, parsed from bytes already read whole, answered into a buffer."""

    server: Server  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    wfile: io.BytesIO
    raw_requestline: bytes

    def __init__(self, request: bytes, client_address: tuple[Any, ...], server: Server,
                 after: list[Callable[[], None]]) -> None:
        # Not BaseHTTPRequestHandler.__init__: the connection loop owns the socket.
        self.client_address = client_address
        # Run by the connection loop once the answer is written (see Connection.after).
        self.after = after
        self.server = server
        # One view of the configs for the whole request, whatever a reload does meanwhile.
        self.live = server.exporter.live.current
        self.rfile = io.BytesIO(request)
        self.wfile = io.BytesIO()
        self.close_connection = True
        self.handle_one_request()
        if not self.wfile.getbuffer().nbytes:
            self.close_connection = True

    def parse_request(self) -> bool:
        """The request line and headers, without the email parser (see Headers)."""
        self.command = None  # type: ignore[assignment]
        # Not default_request_version (HTTP/0.9, which is not served): a request
        # line too broken to give a version still gets a status line and headers,
        # not a bare HTML body.
        self.request_version = self.protocol_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if len(words) != 3:
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request syntax")
            return False
        command, path, version = words
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "Only HTTP/1.0 and 1.1")
            return False
        self.command, self.request_version = command, version
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = Headers()
        # The rest of the head, decoded at once (the connection loop bounded it);
        # the body, if any, follows the blank line and is never read.
        for count, line in enumerate(str(self.rfile.read(), "iso-8859-1").split("\n")):
            line = line.rstrip("\r")
            if not line:
                break
            if count >= MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            name, _, value = line.partition(":")
            headers.setdefault(name.lower(), value.strip())
        self.headers = headers  # type: ignore[assignment]
        connection = (headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (
            version == "HTTP/1.0" and connection != "keep-alive")
        return True

    def send_response(self, code: int, message: str | None = None) -> None:
        # No Server header: it would only tell a scanner the Python version.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())
        for name, value in {"X-Content-Type-Options": "nosniff",
                            **self.live.web.headers}.items():
            self.send_header(name, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if logger.isEnabledFor(logging.DEBUG):  # formatting costs even when not logged
            super().log_request(code, size)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format % args, extra={"fields": {"client": str(self.client_address[0])}})

    def date_time_string(self, timestamp: float | None = None) -> str:
        now = int(time.time()) if timestamp is None else int(timestamp)
        cached = _DATE[0]
        if cached[0] != now:  # formatted once a second, not once a request
            cached = (now, super().date_time_string(now))
            _DATE[0] = cached
        return cached[1]

    # -- responses ---------------------------------------------------------
    def reply(self, status: int, body: bytes | str, content_type: str = TEXT,
              headers: dict[str, str] | None = None) -> None:
        """The whole answer in one write; send_header's per-line encoding and
        checks were a tenth of a /probe answer's cost."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        if self.server.prefix and content_type.startswith("text/html"):
            # Our pages link root-relative ("/runbooks/", "/metrics"): under a
            # route prefix they get it here, in one place.
            mark = self.server.prefix.encode()
            data = data.replace(b'href="/', b'href="' + mark + b"/").replace(
                b'action="/', b'action="' + mark + b"/")
        self.log_request(status)
        lines = [f"{self.protocol_version} {int(status)} {_PHRASES.get(status, '')}\r\n"
                 f"Date: {self.date_time_string()}\r\n{self.live.web.answer_lines}"
                 f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"]
        if headers:
            for name, value in headers.items():
                lines.append(f"{name}: {value}\r\n")
                if name.lower() == "connection" and value.lower() in ("close", "keep-alive"):
                    self.close_connection = value.lower() == "close"  # as send_header does
        lines.append("\r\n")
        self.wfile.write("".join(lines).encode("latin-1"))
        if self.command != "HEAD":
            self.wfile.write(data)

    # -- dispatch ----------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Plain text like every other answer, never the standard library's HTML."""
        self.close_connection = True
        text = message or _PHRASES.get(code, "error")
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command in KNOWN_METHODS:
            # PUT on /-/reload is a method we know and do not allow, as GET there is.
            self.reply(HTTPStatus.METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED,
                       headers={"Allow": ALLOWED_METHODS, "Connection": "close"})
            return
        self.reply(code, f"{text}\n", headers={"Connection": "close"})

    def _dispatch(self, method: str) -> None:
        # Rate limit and authentication first: nothing of the request is looked at before.
        gate = self.live.gate
        if not gate.allow():
            self.reply(HTTPStatus.TOO_MANY_REQUESTS, "rate limit exceeded\n")
            return
        if not gate.authorized(self.headers.get("Authorization")):
            self.reply(HTTPStatus.UNAUTHORIZED, "Unauthorized\n",
                       headers={"WWW-Authenticate": 'Basic realm="dicom-exporter"'})
            return
        self.url_path, query = split_target(self.path)
        prefix = self.server.prefix
        if prefix:  # under --web.external-url's path: nothing outside it is ours
            if self.url_path != prefix and not self.url_path.startswith(prefix + "/"):
                self.reply(HTTPStatus.NOT_FOUND, "not found\n")
                return
            self.url_path = self.url_path[len(prefix):] or "/"
        try:
            self.query = parse_query(query)
        except ValueError:
            self.reply(HTTPStatus.BAD_REQUEST, f"more than {MAX_QUERY_FIELDS} query parameters\n")
            return
        repeated = sorted(name for name, values in self.query.items() if len(values) > 1)
        if repeated:  # target=a&target=b: which one was meant is not ours to guess
            self.reply(HTTPStatus.BAD_REQUEST,
                       f"query parameter given more than once: {repeated[0][:64]!r}\n")
            return
        try:
            self._route(method)
        except Exception as exc:  # a bug must cost one 500, not the connection
            logger.error("request failed", exc_info=True, extra={"fields": {
                "path": self.url_path[:200], "error": repr(exc)[:200]}})
            self.wfile = io.BytesIO()
            self.close_connection = True
            self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error, see the exporter log\n",
                       headers={"Connection": "close"})  # say so: the client must reconnect

    def _route(self, method: str) -> None:
        endpoint = ENDPOINTS.get(self.url_path)
        if endpoint is not None:
            endpoint(self, method)
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
                scrape_timeout = float(header) if len(header) <= 32 else float("nan")
            except ValueError:
                scrape_timeout = float("nan")
            if not 0 < scrape_timeout < 1e9:  # also NaN and inf
                self.reply(HTTPStatus.BAD_REQUEST, f"bad {SCRAPE_TIMEOUT_HEADER}: {header!r}\n")
                return
        debug = self.param("debug") == "true"
        started = time.perf_counter()
        try:
            report = self.server.exporter.probe(target, module, scrape_timeout, self.after,
                                                log=debug)
        except UnknownProbe as exc:
            self.reply(HTTPStatus.BAD_REQUEST, f"{exc}\n")
            return
        except Overloaded as exc:
            status = HTTPStatus.TOO_MANY_REQUESTS if exc.per_target else (
                HTTPStatus.SERVICE_UNAVAILABLE)
            self.reply(status, f"{exc}\n")
            return
        if report.reason is Reason.SHUTDOWN:  # no probe_success 0 for an alert to see
            self.reply(HTTPStatus.SERVICE_UNAVAILABLE,
                       "probe interrupted: the exporter is shutting down\n")
            return
        # The probe's own wall time, our processing included (W3C Server-Timing):
        # what the request spent beyond it is HTTP and exposition.
        timing = {"Server-Timing": f"probe;dur={(time.perf_counter() - started) * 1000:.3f}"}
        metrics = probe_page(report)
        if debug:
            text = "Logs for the probe:\n" + "\n".join(report.context.log)
            text += "\n\nMetrics that would have been returned:\n" + metrics.decode()
            self.reply(HTTPStatus.OK, text, headers=timing)
            return
        self.reply(HTTPStatus.OK, metrics, CONTENT_TYPE_LATEST, timing)

    def _metrics(self, method: str) -> None:
        if accepts_gzip(self.headers.get("Accept-Encoding", "")):
            self.reply(HTTPStatus.OK, self.server.pages.get(gzipped=True), CONTENT_TYPE_LATEST,
                       {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
            return
        self.reply(HTTPStatus.OK, self.server.pages.get(), CONTENT_TYPE_LATEST,
                   {"Vary": "Accept-Encoding"})

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
        problems = self.server.reload()
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
            self.send_header("Location", f"{self.server.prefix}/runbooks/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        page = runbooks.render(name or runbooks.INDEX) if len(name) <= MAX_RUNBOOK_NAME else None
        if page is None:
            self.reply(HTTPStatus.NOT_FOUND, "no such runbook\n")
            return
        self.reply(HTTPStatus.OK, page, "text/html; charset=utf-8")

    def _oncall(self) -> OnCallStatus:
        exporter = self.server.exporter
        return oncall.build(exporter.config, exporter.stats.snapshot(), time.time())

    def _landing(self, method: str) -> None:
        refresh = self.param("refresh")
        seconds = oncall_html.REFRESH_SECONDS
        if refresh is not None:
            # isdigit() alone lets "²" through to int(); length keeps int() cheap.
            if not (refresh.isascii() and refresh.isdigit() and len(refresh) <= 6
                    and 1 <= int(refresh) <= MAX_REFRESH_SECONDS):
                self.reply(HTTPStatus.BAD_REQUEST,
                           f"refresh must be whole seconds, 1 to {MAX_REFRESH_SECONDS}\n")
                return
            seconds = int(refresh)
        page = oncall_html.render(self._oncall(), seconds)
        self.reply(HTTPStatus.OK, page, "text/html; charset=utf-8")

    def _status_json(self, method: str) -> None:
        body = json.dumps(dataclasses.asdict(self._oncall()), ensure_ascii=False, indent=1)
        self.reply(HTTPStatus.OK, body, "application/json; charset=utf-8")


# The endpoints by path; /runbooks/ and the extra endpoints are matched by prefix.
ENDPOINTS: dict[str, Callable[[Handler, str], None]] = {
    "/probe": Handler._probe,
    "/metrics": Handler._metrics,
    "/sd": Handler._sd,
    "/-/healthy": Handler._healthy,
    "/-/ready": Handler._healthy,
    "/-/reload": Handler._reload,
    "/": Handler._landing,
    "/status.json": Handler._status_json,
}


def split_target(target: str) -> tuple[str, str]:
    """The path and query of a request target, as urlsplit gives them.

    An origin-form target ("/probe?...", what every client sends) is cut
    where urlsplit would cut it, without its work; anything else goes to it.
    """
    if target.startswith("/") and not target.startswith("//"):
        path, _, query = target.partition("#")[0].partition("?")
        return path, query
    parts = urlsplit(target)
    return parts.path, parts.query


def parse_query(query: str) -> dict[str, list[str]]:
    """parse_qs(query, max_num_fields=MAX_QUERY_FIELDS), field for field.

    Its per-field unquoting is a quarter of a /probe request's parsing; here
    only a field with something to unquote (`%` or `+`) pays for it.
    """
    if query.count("&") + 1 > MAX_QUERY_FIELDS:
        raise ValueError("Max number of fields exceeded")
    fields: dict[str, list[str]] = {}
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if not equals or not value:  # as parse_qs without keep_blank_values
            continue
        if "%" in item or "+" in item:
            name, value = unquote(name.replace("+", " ")), unquote(value.replace("+", " "))
        if name in fields:
            fields[name].append(value)
        else:
            fields[name] = [value]
    return fields


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (and does not give it q=0)."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip()
            return not quality or quality.strip("0.") != ""
    return False


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


def normal_prefix(text: str) -> str:
    """A route prefix as "/dicom" (no trailing slash), or "" for the root."""
    text = text.strip()
    return ("/" + text.strip("/")) if text.strip("/") else ""


def check_external_url(text: str) -> str:
    """An absolute http(s) URL without query or fragment; raises ValueError otherwise."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or (
            parts.fragment):
        raise ValueError(f"invalid external URL {text!r} (use e.g. https://host:10104)")
    return text.rstrip("/")


def parse_listen_address(text: str) -> Address:
    """Prometheus-style `host:port`; an empty host means all interfaces, `[::1]:port` IPv6."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {text!r} (use host:port, e.g. :10104)")
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        raise ValueError(f"invalid listen address {text!r} (write IPv6 as [::1]:10104)")
    return host[1:-1] if host.startswith("[") else host, int(port)


def start(
    exporter: Exporter,
    address: Address | Iterable[Address],
    extra_endpoints: dict[str, ExtraEndpoint] | None = None,
    web: WebConfig | None = None,
    limits: Limits | None = None,
    external_url: str | None = None,
    route_prefix: str | None = None,
) -> tuple[Server, threading.Thread]:
    server = Server(address, exporter, extra_endpoints, web, limits, external_url,
                    route_prefix)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return server, thread
