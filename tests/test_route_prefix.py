"""Issue 31, item 4 (the web part): the route prefix from --web.external-url (or
--web.route-prefix) puts every endpoint and link under it, and every 4xx/5xx
answer is plain text."""

from __future__ import annotations

import http.client as httpclient
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from exporter.app import Exporter
from exporter.web import server as web_server
from tests.support.configs import make_config
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    connection = httpclient.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return (answer.status, {k.lower(): v for k, v in answer.getheaders()},
                answer.read().decode())
    finally:
        connection.close()


@pytest.fixture
def prefixed(tmp_path: Path) -> Iterator[int]:
    """`serve --web.external-url http://127.0.0.1:PORT/dicom`, as a user runs it."""
    config = tmp_path / "exporter.yml"
    config.write_text(yaml.safe_dump({
        "modules": {"tcp": {"prober": "tcp", "timeout": "1s"}},
        "targets": {"peer": {"host": LOOPBACK, "port": 9, "ae_title": "PEER",
                             "modules": ["tcp"],
                             "labels": {"site": "vaxjo", "role": "partner"}}}}))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "serve", "--config.file", str(config),
         "--web.listen-address", f"{LOOPBACK}:{port}",
         "--web.external-url", f"http://{LOOPBACK}:{port}/dicom"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_the_external_urls_path_is_the_route_prefix(prefixed: int) -> None:
    status, headers, body = get(prefixed, "/dicom/metrics")
    assert status == 200 and "dicom_exporter_" in body
    assert get(prefixed, "/metrics")[0] == 404
    assert get(prefixed, "/dicom/-/healthy")[0] == 200
    status, headers, page = get(prefixed, "/dicom/")
    assert status == 200 and "text/html" in headers["content-type"]
    links = re.findall(r'(?:href|action)="([^"]+)"', page)
    assert links and all(link.startswith("/dicom/") for link in links
                         if link.startswith("/")), links
    for link in {link for link in links if link.startswith("/dicom/")}:
        assert get(prefixed, link)[0] == 200, link
    status, headers, _ = get(prefixed, "/dicom/runbooks")
    assert status == 301 and headers["location"] == "/dicom/runbooks/"
    runbook_index = get(prefixed, "/dicom/runbooks/")[2]
    assert 'href="/dicom/' in runbook_index and 'href="/runbooks' not in runbook_index


def test_the_route_prefix_flag_overrides_the_external_urls_path() -> None:
    exporter = Exporter(make_config({"peer": {"port": 9, "ae_title": "PEER",
                                              "modules": ["tcp"]}}))
    server, _ = web_server.start(exporter, (LOOPBACK, 0),
                                 external_url="https://proxy.invalid/outer/dicom",
                                 route_prefix="/dicom")
    try:
        port = server.server_address[1]
        assert get(port, "/dicom/-/healthy")[0] == 200
        assert get(port, "/outer/dicom/-/healthy")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("PUT", "/-/reload", 405), ("DELETE", "/metrics", 405), ("GET", "/-/reload", 405),
    ("GET", "/nowhere", 404), ("GET", "/probe", 400), ("POST", "/-/reload", 400),
])
def test_every_error_answer_is_plain_text(method: str, path: str, status: int) -> None:
    """PUT on /-/reload answered with the standard library's HTML error page."""
    exporter = Exporter(make_config({"peer": {"port": 9, "ae_title": "PEER",
                                              "modules": ["tcp"]}}))
    server, _ = web_server.start(exporter, (LOOPBACK, 0))
    try:
        code, headers, body = get(server.server_address[1], path, method)
        assert code == status
        assert headers["content-type"] == "text/plain; charset=utf-8", headers
        assert "<" not in body and body.endswith("\n") and len(body.splitlines()) >= 1
    finally:
        server.shutdown()
        server.server_close()
