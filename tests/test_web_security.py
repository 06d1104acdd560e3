"""--web.config.file (TLS, client certificates, bcrypt basic auth), probe limits,
and that nothing but configured targets is ever contacted."""

from __future__ import annotations

import base64
import http.client as httpclient
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml

from exporter.app import Exporter, ProbeLimits
from exporter.config import ConfigError, webconfig
from exporter.web import server as web_server
from tests.support.configs import make_config
from tests.support.hostile import ScriptedPeer, read_pdu
from tests.support.pki import make_cert
from tests.support.realpeers import LOOPBACK

PASSWORD = "rätt-lösenord"


def serve(web: webconfig.WebConfig | None, limits: ProbeLimits | None = None,
          targets: dict | None = None) -> web_server.Server:
    config = make_config(targets or {"peer": {"port": 1, "ae_title": "PEER",
                                              "modules": ["tcp"]}})
    server, _ = web_server.start(Exporter(config, limits=limits), (LOOPBACK, 0), web=web)
    return server


@pytest.fixture
def secured(pki: Path, tmp_path: Path) -> Iterator[web_server.Server]:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_file = tmp_path / "web.yml"
    web_file.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(pki / "server.crt"),
                              "key_file": str(pki / "server.key"),
                              "client_ca_file": str(pki / "ca.crt"),
                              "client_auth_type": "RequireAndVerifyClientCert"},
        "basic_auth_users": {"prometheus": hashed.replace("$2b$", "$2y$")},
    }, allow_unicode=True))
    server = serve(webconfig.load(web_file))
    yield server
    server.shutdown()
    server.server_close()


def client_context(pki: Path, cert: str | None = "client") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return context


def request(server: web_server.Server, path: str, context: ssl.SSLContext | None,
            user: str | None = "prometheus", password: str = PASSWORD) -> tuple[int, str]:
    host, port = server.server_address[:2]
    if context is None:
        connection = httpclient.HTTPConnection(host, port, timeout=10)
    else:
        connection = httpclient.HTTPSConnection(host, port, timeout=10, context=context)
    headers = {}
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    connection.request("GET", path, headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read().decode()


@pytest.mark.parametrize("path", ["/metrics", "/probe?target=peer&module=tcp", "/sd", "/",
                                  "/status.json", "/runbooks/", "/-/healthy"])
@pytest.mark.slow
def test_every_endpoint_needs_the_password(
    secured: web_server.Server, pki: Path, path: str
) -> None:
    context = client_context(pki)
    assert request(secured, path, context)[0] == 200
    assert request(secured, path, context, user=None)[0] == 401
    assert request(secured, path, context, password="fel")[0] == 401
    assert request(secured, path, context, user="nobody")[0] == 401


@pytest.mark.slow
def test_tls_is_required_and_the_client_certificate_checked(secured: web_server.Server,
                                                            pki: Path) -> None:
    assert secured.url.startswith("https://")
    with pytest.raises((ConnectionError, httpclient.HTTPException, OSError)):
        request(secured, "/metrics", None)
    with pytest.raises(ssl.SSLError):
        request(secured, "/metrics", client_context(pki, cert=None))
    with pytest.raises(ssl.SSLError):
        request(secured, "/metrics", client_context(pki, cert="stranger"))
    status, body = request(secured, "/metrics", client_context(pki))
    assert status == 200 and "dicom_exporter_build_info" in body


@pytest.mark.slow
def test_a_silent_tls_client_does_not_block_others(secured: web_server.Server, pki: Path) -> None:
    host, port = secured.server_address[:2]
    with socket.create_connection((host, port)):  # connects, never says hello
        assert request(secured, "/-/healthy", client_context(pki))[0] == 200


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"basic_auth_users": {"admin": "plaintext"}},
         "basic_auth_users.admin: must be a bcrypt hash ($2y$...), e.g. from htpasswd -nBC 10"),
        ({"tls_server_config": {"cert_file": "missing.crt", "key_file": "missing.key"}},
         "tls_server_config.cert_file: "),
        ({"tls_server": {}}, "document.tls_server: unknown field"),
        ({"tls_server_config": {"client_auth_type": "Sometimes"}},
         "tls_server_config.client_auth_type: must be one of"),
        ({"http_server_config": {"headers": {"Set-Cookie": "a"}}},
         "http_server_config.headers.Set-Cookie: unknown field"),
        ({"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
         "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin"),
        ({"http_server_config": {"http2": "yes"}},
         "http_server_config.http2: must be true or false"),
        ({"rate_limit": {"interval": "soon", "burst": 1}},
         "rate_limit.interval: invalid duration"),
        ({"basic_auth_users": {"a": "$2y$10$short"}}, "basic_auth_users.a: must be a bcrypt hash"),
    ],
)
def test_bad_web_config_names_the_field(tmp_path: Path, document: dict, problem: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as caught:
        webconfig.load(path)
    assert any(line.startswith(f"{path}: {problem}") for line in caught.value.problems), (
        caught.value.problems)


def test_probe_limits_answer_503_overall_and_429_per_target() -> None:
    release = threading.Event()

    def hold(peer: ScriptedPeer, conn: socket.socket) -> None:
        read_pdu(conn)
        release.wait(10)

    peers = [ScriptedPeer(hold), ScriptedPeer(hold)]
    targets = {f"slow{i}": {"port": p.port, "ae_title": "SLOW", "modules": ["echo"]}
               for i, p in enumerate(peers)}
    server = serve(None, ProbeLimits(total=2, per_target=1), targets)
    try:
        running = [threading.Thread(target=request, args=(server, f"/probe?target={name}"
                                                          "&module=echo", None))
                   for name in targets]
        for thread in running:
            thread.start()
        deadline = threading.Event()
        for _ in range(100):
            if server.exporter.stats.snapshot().in_flight == 2:
                break
            deadline.wait(0.05)
        status, body = request(server, "/probe?target=slow0&module=echo", None)
        assert status == 503 and "2 probes already running" in body
        server.exporter.limits.total = 3
        status, body = request(server, "/probe?target=slow0&module=echo", None)
        assert status == 429 and "already running" in body
        release.set()
        for thread in running:
            thread.join()
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        for peer in peers:
            peer.close()


def test_nothing_but_configured_targets_is_ever_contacted() -> None:
    """A trap listener that no target names must see no connection, whatever is asked."""
    contacted: list[bool] = []
    trap = ScriptedPeer(lambda peer, conn: contacted.append(True))
    trap_address = f"{LOOPBACK}:{trap.port}"
    server = serve(None)
    try:
        for query in [f"target={trap_address}&module=tcp", f"target={trap_address}&module=echo",
                      f"target=http://{trap_address}/&module=tcp",
                      f"target=peer&module=tcp&host={LOOPBACK}&port={trap.port}",
                      f"target=peer:{trap.port}&module=tcp", "target=../peer&module=tcp",
                      f"target=peer%00{trap.port}&module=tcp", f"module=tcp&target={trap.port}"]:
            status, _ = request(server, f"/probe?{query}", None)
            assert status in (200, 400), query
        trap.join_connections(1)
    finally:
        server.shutdown()
        server.server_close()
        trap.close()
    assert contacted == []


def tls_document(pki: Path, **extra: object) -> dict:
    return {"tls_server_config": {"cert_file": str(pki / "server.crt"),
                                  "key_file": str(pki / "server.key"),
                                  "client_ca_file": str(pki / "ca.crt"),
                                  "client_auth_type": "RequireAndVerifyClientCert", **extra}}


def serve_file(tmp_path: Path, document: dict) -> web_server.Server:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(document))
    return serve(webconfig.load(path))


@pytest.mark.slow
@pytest.mark.parametrize(("sans", "allowed"), [(["localhost"], True), (["127.0.0.1"], True),
                                               (["prometheus.example"], False)])
def test_client_allowed_sans_let_only_named_clients_in(
        pki: Path, tmp_path: Path, sans: list[str], allowed: bool) -> None:
    server = serve_file(tmp_path, tls_document(pki, client_allowed_sans=sans))
    try:
        if allowed:
            assert request(server, "/-/healthy", client_context(pki), user=None)[0] == 200
        else:
            with pytest.raises((ConnectionError, httpclient.HTTPException, OSError)):
                request(server, "/-/healthy", client_context(pki), user=None)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_tls_versions_ciphers_and_one_curve_are_applied(pki: Path, tmp_path: Path) -> None:
    server = serve_file(tmp_path, tls_document(
        pki, min_version="TLS12", max_version="TLS12", curve_preferences=["CurveP384"],
        cipher_suites=["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]))
    try:
        assert server.web.warnings == ()
        host, port = server.server_address[:2]
        with socket.create_connection((host, port), timeout=10) as raw, \
                client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384"
        only13 = client_context(pki)
        only13.minimum_version = ssl.TLSVersion.TLSv1_3
        with pytest.raises(ssl.SSLError):
            request(server, "/-/healthy", only13, user=None)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_several_curves_are_accepted_with_one_warning(pki: Path, tmp_path: Path) -> None:
    server = serve_file(tmp_path, tls_document(pki, curve_preferences=["X25519", "CurveP256"]))
    try:
        assert len(server.web.warnings) == 1 and "curve_preferences" in server.web.warnings[0]
        assert request(server, "/-/healthy", client_context(pki), user=None)[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def _served_certificate(server: web_server.Server, pki: Path) -> bytes:
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as raw, \
            client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
        certificate = tls.getpeercert(binary_form=True)
    assert certificate
    return certificate


@pytest.mark.slow
def test_a_rotated_certificate_is_served_without_a_restart(pki: Path, tmp_path: Path) -> None:
    for name in ("server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    document = tls_document(pki)
    document["tls_server_config"] |= {"cert_file": str(tmp_path / "server.crt"),
                                      "key_file": str(tmp_path / "server.key")}
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(document))
    server = serve(webconfig.load(path))
    stop = threading.Event()
    try:
        server.exporter.live.watch_web(stop, interval=0.05)
        first = _served_certificate(server, pki)
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        for name in ("ca.crt", "ca.key"):
            shutil.copy(pki / name, fresh / name)
        make_cert(fresh, "server", "ca")
        shutil.copy(fresh / "server.key", tmp_path / "server.key")
        shutil.copy(fresh / "server.crt", tmp_path / "server.crt")
        deadline = time.monotonic() + 10
        while _served_certificate(server, pki) == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _served_certificate(server, pki) == ssl.PEM_cert_to_DER_cert(
            (fresh / "server.crt").read_text())
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_inline_pem_certificate_key_and_client_ca(pki: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    server = serve_file(tmp_path, {"tls_server_config": {
        "cert": (pki / "server.crt").read_text(), "key": (pki / "server.key").read_text(),
        "client_ca": (pki / "ca.crt").read_text(),
        "client_auth_type": "RequireAndVerifyClientCert"}})
    try:
        assert request(server, "/-/healthy", client_context(pki), user=None)[0] == 200
        with pytest.raises(ssl.SSLError):
            request(server, "/-/healthy", client_context(pki, cert="stranger"), user=None)
    finally:
        server.shutdown()
        server.server_close()
    assert not list(private_tmp.iterdir()), "the inline key must not be left on disk"
