"""Issue 30, item 1: a web config reload fails closed. An empty file, or one
that would turn TLS or basic auth off (or TLS on: a change of scheme), is
refused by every reload path (POST /-/reload, the watcher, SIGHUP) with one
error line and the reload gauge at 0; HTTPS and authentication keep running."""

from __future__ import annotations

import http.client as httpclient
import logging
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from exporter.app import Exporter
from exporter.config import webconfig
from exporter.web import server as web_server
from tests.support.configs import make_config
from tests.support.realpeers import LOOPBACK, free_port
from tests.support.webauth import basic, users_yaml
from tests.test_web_config_hardening import CERT, KEY

RELOAD_GAUGE = "dicom_exporter_config_last_reload_successful"
AUTH = {"Authorization": basic("prometheus", "secret")}


def _users() -> dict:
    return yaml.safe_load(users_yaml(prometheus="secret"))


def _tls() -> dict:
    return {"tls_server_config": {"cert": CERT, "key": KEY}}


def _client() -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=CERT)
    context.check_hostname = False
    return context


def request(server: web_server.Server, method: str, path: str, tls: bool,
            headers: dict[str, str] | None = None) -> tuple[int, str]:
    host, port = server.server_address[:2]
    connection = (httpclient.HTTPSConnection(host, port, timeout=10, context=_client())
                  if tls else httpclient.HTTPConnection(host, port, timeout=10))
    try:
        connection.request(method, path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.fixture
def exporter() -> Exporter:
    return Exporter(make_config({"peer": {"port": 9, "ae_title": "PEER", "modules": ["tcp"]}}))


def _serve(exporter: Exporter, path: Path, document: dict) -> web_server.Server:
    path.write_text(yaml.safe_dump(document))
    server, _ = web_server.start(exporter, (LOOPBACK, 0), web=webconfig.load(path))
    return server


@pytest.fixture
def secure(exporter: Exporter, tmp_path: Path) -> Iterator[tuple[web_server.Server, Path]]:
    path = tmp_path / "web.yml"
    server = _serve(exporter, path, {**_tls(), **_users()})
    yield server, path
    server.shutdown()
    server.server_close()


def _still_secure(server: web_server.Server) -> None:
    assert request(server, "GET", "/-/healthy", tls=True, headers=AUTH)[0] == 200
    assert request(server, "GET", "/-/healthy", tls=True)[0] == 401
    with pytest.raises((httpclient.HTTPException, OSError)):
        request(server, "GET", "/-/healthy", tls=False)
    assert server.url.startswith("https://")
    assert server.exporter.registry.get_sample_value(RELOAD_GAUGE) == 0


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


BAD = {
    "empty": "",
    "only comments": "# emptied by config management\n",
    "tls off": None,  # users only
    "auth off": None,  # TLS only
}


def _bad(kind: str) -> str:
    if kind == "tls off":
        return yaml.safe_dump(_users())
    if kind == "auth off":
        return yaml.safe_dump(_tls())
    return BAD[kind]


@pytest.mark.parametrize("kind", list(BAD))
def test_post_reload_refuses_a_web_config_that_opens_the_exporter(
        secure: tuple[web_server.Server, Path], kind: str,
        caplog: pytest.LogCaptureFixture) -> None:
    server, path = secure
    path.write_text(_bad(kind))
    with caplog.at_level(logging.INFO, logger="dicom_exporter"):
        status, body = request(server, "POST", "/-/reload", tls=True, headers=AUTH)
    assert status == 400 and "refused at reload" in body, body
    errors = _refusals(caplog)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].getMessage() == "web config reload refused, keeping the running one"
    _still_secure(server)


def test_the_watcher_refuses_a_truncated_web_config(
        secure: tuple[web_server.Server, Path], caplog: pytest.LogCaptureFixture) -> None:
    server, path = secure
    stop = threading.Event()
    try:
        with caplog.at_level(logging.INFO, logger="dicom_exporter"):
            server.exporter.live.watch_web(stop, interval=0.02)
            path.write_text("")
            deadline = time.monotonic() + 10
            while server.exporter.registry.get_sample_value(RELOAD_GAUGE) != 0:
                assert time.monotonic() < deadline, "the watcher never read the empty file"
                time.sleep(0.02)
            time.sleep(0.1)  # later turns see no new change: no second line
        assert len(_refusals(caplog)) == 1
        _still_secure(server)
    finally:
        stop.set()


def test_turning_tls_on_at_reload_is_refused_as_a_change_of_scheme(
        exporter: Exporter, tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    server = _serve(exporter, path, _users())
    try:
        path.write_text(yaml.safe_dump({**_tls(), **_users()}))
        status, body = request(server, "POST", "/-/reload", tls=False, headers=AUTH)
        assert status == 400 and "changes the listener's scheme" in body
        assert request(server, "GET", "/-/healthy", tls=False, headers=AUTH)[0] == 200
        assert server.url.startswith("http://")
    finally:
        server.shutdown()
        server.server_close()


def test_a_good_change_after_a_refusal_is_applied_and_sets_the_gauge_back(
        secure: tuple[web_server.Server, Path]) -> None:
    server, path = secure
    path.write_text("")
    assert server.reload() is not None
    path.write_text(yaml.safe_dump({**_tls(), **yaml.safe_load(users_yaml(other="pw"))}))
    assert server.reload() is None
    assert server.exporter.registry.get_sample_value(RELOAD_GAUGE) == 1
    other = {"Authorization": basic("other", "pw")}
    assert request(server, "GET", "/-/healthy", tls=True, headers=other)[0] == 200


def test_sighup_refuses_a_truncated_web_config(tmp_path: Path) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text(yaml.safe_dump({"modules": {"tcp": {"prober": "tcp", "timeout": "1s"}},
                                      "targets": {}}))
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({**_tls(), **_users()}))
    port = free_port()
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "serve", "--config.file", str(config),
             "--web.config.file", str(web), "--web.listen-address", f"{LOOPBACK}:{port}"],
            stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 30
        while "Listening on" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        web.write_text("")
        process.send_signal(signal.SIGHUP)
        while "reload refused" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        connection = httpclient.HTTPSConnection(LOOPBACK, port, timeout=10, context=_client())
        connection.request("GET", "/metrics", headers=AUTH)
        answer = connection.getresponse()
        page = answer.read().decode()
        connection.close()
        assert answer.status == 200
        assert f"{RELOAD_GAUGE} 0.0" in page
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    lines = [line for line in log.read_text().splitlines() if "level=error" in line]
    assert len(lines) == 1 and "the file is empty" in lines[0], lines
