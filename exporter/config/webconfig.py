"""`--web.config.file`: TLS and basic auth for every endpoint, in the format of
the Prometheus exporter-toolkit, so the file a hospital already writes for
node_exporter and blackbox_exporter works here too.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt                       # optional
      client_auth_type: RequireAndVerifyClientCert # with client_ca_file
      min_version: TLS12                           # TLS12 (default) or TLS13
    basic_auth_users:
      prometheus: $2y$10$...                       # bcrypt hashes (htpasswd -nBC 10)

bcrypt is the only hash the toolkit accepts; checking one costs tens of
milliseconds by design, so a verified (user, password) pair is remembered as
a salted SHA-256 for the life of the process, as the toolkit does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import bcrypt
import yaml

from exporter.config.strict import Checker, ConfigError

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_TOP_KEYS = {"tls_server_config", "basic_auth_users"}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    _verified: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    _salt: bytes = field(default_factory=lambda: os.urandom(16), compare=False, repr=False)

    def authorized(self, header: str | None) -> bool:
        """True when no users are configured or the Basic credentials match."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(self._salt + f"{user}\0{password}".encode()).digest()
        with self._lock:
            known = self._verified.get(user)
        if known is not None and hmac.compare_digest(known, key):
            return True
        if not bcrypt.checkpw(password.encode(), hashed):
            return False
        with self._lock:
            self._verified[user] = key
        return True


def _file(check: Checker, body: dict, key: str, base: Path) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        check.error(f"tls_server_config.{key}", "must be a file path")
        return None
    path = (base / value) if not Path(value).is_absolute() else Path(value)
    if not path.is_file():
        check.error(f"tls_server_config.{key}", f"{path} does not exist")
        return None
    return str(path)


def _tls(check: Checker, raw: object, base: Path) -> ssl.SSLContext | None:
    body = check.mapping(raw, "tls_server_config", _TLS_KEYS)
    if not body:
        return None
    cert = _file(check, body, "cert_file", base)
    key = _file(check, body, "key_file", base)
    for name, value in (("cert_file", cert), ("key_file", key)):
        if value is None and name not in body:
            check.error(f"tls_server_config.{name}", "missing required field")
    client_ca = _file(check, body, "client_ca_file", base)
    auth = body.get("client_auth_type", "RequireAndVerifyClientCert" if client_ca
                    else "NoClientCert")
    if auth not in CLIENT_AUTH_TYPES:
        check.error("tls_server_config.client_auth_type",
                    f"must be one of {', '.join(CLIENT_AUTH_TYPES)}, got {auth!r}")
        return None
    if auth == "RequireAndVerifyClientCert" and client_ca is None:
        check.error("tls_server_config.client_ca_file", f"needed by {auth}")
    version = body.get("min_version", "TLS12")
    if version not in TLS_VERSIONS:
        check.error("tls_server_config.min_version",
                    f"must be one of {', '.join(TLS_VERSIONS)}, got {version!r}")
        return None
    if cert is None or key is None or check.problems:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[version]
    try:
        context.load_cert_chain(cert, key)
        if client_ca:
            context.load_verify_locations(client_ca)
    except (ssl.SSLError, OSError) as exc:
        check.error("tls_server_config", f"cannot load the certificate or key: {exc}")
        return None
    context.verify_mode = CLIENT_AUTH_TYPES[auth]
    return context


def load(path: str | Path) -> WebConfig:
    source = str(path)
    check = Checker(source)
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{source}: file: cannot read: {exc}"]) from None
    body = check.mapping(document, "document", _TOP_KEYS)
    context = _tls(check, body.get("tls_server_config"), Path(path).parent)
    users: dict[str, bytes] = {}
    for user, hashed in check.mapping(body.get("basic_auth_users"), "basic_auth_users",
                                      None).items():
        where = f"basic_auth_users.{user}"
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            check.error(where, "must be a bcrypt hash ($2y$...), e.g. from htpasswd -nBC 10")
            continue
        users[str(user)] = hashed.replace("$2y$", "$2b$", 1).encode()
    if check.problems:
        raise ConfigError(check.problems)
    return WebConfig(context, MappingProxyType(users))
