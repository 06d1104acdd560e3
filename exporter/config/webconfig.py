"""`--web.config.file`: TLS, basic auth, headers and rate limit for every endpoint,
in the Prometheus exporter-toolkit format, so the file a hospital already
writes for node_exporter and blackbox_exporter works here unchanged.

    tls_server_config:
      cert_file: server.crt                        # or cert: inline PEM
      key_file: server.key                         # or key: inline PEM
      client_ca_file: ca.crt                       # or client_ca: inline PEM
      client_auth_type: RequireAndVerifyClientCert
      client_allowed_sans: [prometheus.example]    # DNS, IP, e-mail or URI SANs
      min_version: TLS12                           # TLS10..TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]   # Go names, TLS <= 1.2
      prefer_server_cipher_suites: true
      curve_preferences: [CurveP256]
    http_server_config:
      http2: true                                  # accepted; served as HTTP/1.1
      headers: {X-Frame-Options: deny}
    basic_auth_users:
      prometheus: $2y$10$...                       # bcrypt hashes (htpasswd -nBC 10)
    rate_limit: {interval: 100ms, burst: 20}

What Python's ssl module cannot do is accepted with a warning rather than
refused, so one file serves every exporter on the host: HTTP/2, and more than
one (or a non-NIST) ECDHE curve, since `SSLContext.set_ecdh_curve` takes one.

A WebConfig is what the file says and nothing else: the rate limit's bucket
and the verified passwords are running state, kept beside it by
`exporter.gate` and handed on across reloads by the reload owner
(`exporter.live`).

The file is read as the main config is (`strict.read_yaml`: bounded size,
depth and alias expansion) and every field check takes any YAML value: a bad
file is a ConfigError of one-line problems, never another exception, since
that is what start-up turns into an exit with the problems named, and what a
reload logs while it keeps the running config.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from exporter.config.strict import (
    Checker,
    brief,
    existing_file,
    parse_duration,
    read_file,
    read_yaml,
    shown,
)

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's names (crypto/tls CipherSuites) -> OpenSSL's. TLS 1.3 suites are not
# configurable in Go either: accepted and left to OpenSSL.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1",
          "X25519": None}
HEADERS = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
BCRYPT_MAX_PASSWORD = 72
_BCRYPT = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
# Each step doubles a check: cost 10 takes 0.08 s here, 14 over a second, 31 days.
# Every unknown user costs a check at the dearest cost (see gate.Passwords),
# and so does computing that dummy hash at start.
BCRYPT_MAX_COST = 14
_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
_TLS_KEYS = {"cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file",
             "client_auth_type", "client_allowed_sans", "min_version", "max_version",
             "cipher_suites", "prefer_server_cipher_suites", "curve_preferences"}
_HTTP_KEYS = {"http2", "headers"}
_RATE_KEYS = {"interval", "burst"}
_SAN_KINDS = {"DNS", "IP Address", "email", "URI"}
# RFC 9110 field-value, without the obsolete non-ASCII octets: the answer's
# head is written as Latin-1, so anything else would fail every answer.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


NOSNIFF = "X-Content-Type-Options: nosniff\r\n"


@dataclass(frozen=True)
class RateLimit:
    """rate_limit: `burst` requests at once, one more per `interval` seconds."""

    interval: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    allowed_sans: frozenset[str] = frozenset()
    rate_limit: RateLimit | None = None
    warnings: tuple[str, ...] = ()
    source: str | None = None
    files: tuple[str, ...] = ()  # what a change to means re-reading (certificate rotation)
    empty: bool = False  # the file said nothing at all (truncated, or only comments)

    @functools.cached_property
    def header_lines(self) -> str:
        """The configured headers as they go into every answer, written once."""
        return "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())

    @functools.cached_property
    def answer_lines(self) -> str:
        """What every answer carries: the configured headers, and nosniff unless
        configured (answers carry label values chosen by configs)."""
        nosniff = "" if "X-Content-Type-Options" in self.headers else NOSNIFF
        return nosniff + self.header_lines

    def allows_peer(self, certificate: dict[str, Any] | None) -> bool:
        """client_allowed_sans: the verified client certificate names one of them."""
        if not self.allowed_sans:
            return True
        names = {str(value) for kind, value in (certificate or {}).get("subjectAltName", ())
                 if kind in _SAN_KINDS}
        return bool(names & self.allowed_sans)


def signature(web: WebConfig) -> tuple[Any, ...]:
    """What a change of the file or of a file it names looks like (mtime, size, inode)."""
    out: list[tuple[str, int | None, int | None, int | None]] = []
    for path in (web.source, *web.files):
        if path is None:
            continue
        try:
            stat = os.stat(path)
            out.append((path, stat.st_mtime_ns, stat.st_size, stat.st_ino))
        except OSError:
            out.append((path, None, None, None))
    return tuple(out)


def _file(check: Checker, body: dict[str, Any], key: str, base: Path) -> str | None:
    """Relative to the web config's folder, as the toolkit reads it."""
    return existing_file(check, f"tls_server_config.{key}", body.get(key), base)


def _inline(check: Checker, body: dict[str, Any], key: str) -> str | None:
    """PEM is ASCII (RFC 7468); ssl refuses anything else with a TypeError. The
    value is not shown: it may be a private key."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or "-----BEGIN" not in value or not value.isascii():
        check.error(f"tls_server_config.{key}", "must be PEM text")
        return None
    if f"{key}_file" in body:
        check.error(f"tls_server_config.{key}", f"give {key} or {key}_file, not both")
        return None
    return value


def _names(check: Checker, body: dict[str, Any], key: str, known: Mapping[str, Any]) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        check.error(f"tls_server_config.{key}", f"must be a list of names, got {shown(value)}")
        return []
    unknown = [v for v in value if v not in known]
    if unknown:  # brief: the list may be an alias repeated a million times
        check.error(f"tls_server_config.{key}",
                    f"unknown {brief(unknown)}; known: {', '.join(known)}")
    return [v for v in value if v in known]


def _choice(check: Checker, body: dict[str, Any], key: str, default: str,
            known: Mapping[str, Any]) -> str | None:
    """One of `known`'s names; a list or mapping here is a problem, not a failed lookup."""
    value = body.get(key, default)
    if not isinstance(value, str) or value not in known:
        check.error(f"tls_server_config.{key}",
                    f"must be one of {', '.join(known)}, got {brief(value)}")
        return None
    return value


def _load_chain(context: ssl.SSLContext, cert: str | None, key: str | None,
                cert_pem: str | None, key_pem: str | None) -> None:
    """load_cert_chain takes only paths: inline PEM goes through a private temp dir."""
    if cert_pem is None and key_pem is None:
        context.load_cert_chain(str(cert), str(key))
        return
    folder = tempfile.mkdtemp(prefix="dicom-exporter-web-")
    try:
        paths = []
        for name, path, pem in (("cert", cert, cert_pem), ("key", key, key_pem)):
            if pem is None:
                paths.append(str(path))
                continue
            target = os.path.join(folder, name)
            with open(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
                out.write(pem)
            paths.append(target)
        context.load_cert_chain(paths[0], paths[1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tls(check: Checker, raw: object, base: Path, warnings: list[str],
         files: list[str]) -> tuple[ssl.SSLContext | None, frozenset[str]]:
    body = check.mapping(raw, "tls_server_config", _TLS_KEYS)
    if not body:
        return None, frozenset()
    cert, key = _file(check, body, "cert_file", base), _file(check, body, "key_file", base)
    cert_pem, key_pem = _inline(check, body, "cert"), _inline(check, body, "key")
    for name in ("cert", "key"):
        if f"{name}_file" not in body and name not in body:
            check.error(f"tls_server_config.{name}_file", "missing required field")
    client_ca = _file(check, body, "client_ca_file", base)
    client_ca_pem = _inline(check, body, "client_ca")
    has_ca = client_ca is not None or client_ca_pem is not None
    auth = _choice(check, body, "client_auth_type",
                   "RequireAndVerifyClientCert" if has_ca else "NoClientCert",
                   CLIENT_AUTH_TYPES)
    if auth is None:
        return None, frozenset()
    if CLIENT_AUTH_TYPES[auth] != ssl.CERT_NONE and not has_ca:
        check.error("tls_server_config.client_ca_file", f"needed by {auth}")
    sans = body.get("client_allowed_sans") or []
    if not isinstance(sans, list) or not all(isinstance(s, str) and s for s in sans):
        check.error("tls_server_config.client_allowed_sans",
                    f"must be a list of names, got {shown(sans)}")
        sans = []
    if sans and auth not in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
        check.error("tls_server_config.client_allowed_sans",
                    "needs client_auth_type RequireAndVerifyClientCert or RequireAnyClientCert")
    versions = []
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = _choice(check, body, name, default, TLS_VERSIONS)
        if version is None:
            return None, frozenset()
        versions.append(TLS_VERSIONS[version])
    if versions[0] > versions[1]:
        check.error("tls_server_config.max_version", "is below min_version")
    ciphers = _names(check, body, "cipher_suites", CIPHER_SUITES)
    curves = _names(check, body, "curve_preferences", CURVES)
    prefer = body.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        check.error("tls_server_config.prefer_server_cipher_suites",
                    f"must be true or false, got {shown(prefer)}")
    if (cert is None and cert_pem is None) or (key is None and key_pem is None) or check.problems:
        return None, frozenset()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version, context.maximum_version = versions
    try:
        _load_chain(context, cert, key, cert_pem, key_pem)
        if client_ca or client_ca_pem:
            context.load_verify_locations(cafile=client_ca, cadata=client_ca_pem)
        suites = [suite for c in ciphers if (suite := CIPHER_SUITES[c])]
        if suites:
            context.set_ciphers(":".join(suites))
        if len(curves) == 1 and CURVES[curves[0]]:
            context.set_ecdh_curve(str(CURVES[curves[0]]))
        elif curves:
            warnings.append("curve_preferences: Python's ssl sets one NIST curve only; "
                            "OpenSSL's default curves are used")
    except (ssl.SSLError, OSError, ValueError) as exc:
        check.error("tls_server_config", f"cannot load the certificate, key or settings: {exc}")
        return None, frozenset()
    if prefer:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.verify_mode = CLIENT_AUTH_TYPES[auth]
    files.extend(p for p in (cert, key, client_ca) if p)
    return context, frozenset(sans)


def _http(check: Checker, raw: object, warnings: list[str]) -> Mapping[str, str]:
    body = check.mapping(raw, "http_server_config", _HTTP_KEYS)
    http2 = body.get("http2", True)
    if not isinstance(http2, bool):
        check.error("http_server_config.http2", f"must be true or false, got {shown(http2)}")
    elif "http2" in body and http2:
        warnings.append("http_server_config.http2: HTTP/2 is not available here; "
                        "HTTP/1.1 is served")
    headers: dict[str, str] = {}
    for name, value in check.mapping(body.get("headers"), "http_server_config.headers",
                                     set(HEADERS)).items():
        if name not in HEADERS:  # already reported as an unknown field
            continue
        where = f"http_server_config.headers.{name}"
        allowed = HEADERS[name]
        if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
            check.error(where, f"must be one line of printable ASCII, got {shown(value)}")
        elif allowed is not None and value.lower() not in allowed and value:
            check.error(where, f"must be one of {', '.join(allowed)}, got {brief(value)}")
        elif value:
            headers[name] = value
    return MappingProxyType(headers)


def _interval(check: Checker, value: object) -> float | None:
    """Seconds; 0 (no limit) also for a missing, null or numeric 0 interval,
    which Go's YAML reads into the duration's string as "0"."""
    if value is None or (type(value) is int and value == 0):
        return 0.0
    if not isinstance(value, str):  # never str() it: it may be an aliased tree
        check.error("rate_limit.interval",
                    f"must be a duration like 100ms, got {shown(value)}")
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        check.error("rate_limit.interval", str(exc))
        return None


def _rate(check: Checker, raw: object) -> RateLimit | None:
    body = check.mapping(raw, "rate_limit", _RATE_KEYS)
    if not body:
        return None
    interval = _interval(check, body.get("interval"))
    if interval is None:
        return None
    burst = body.get("burst", 0)
    if not isinstance(burst, int) or isinstance(burst, bool) or not 0 <= burst <= 10**6:
        check.error("rate_limit.burst",
                    f"must be a whole number, 0 to 1000000, got {shown(burst)}")
        return None
    if interval <= 0:
        return None
    return RateLimit(interval, max(burst, 1))


def _users(check: Checker, raw: object) -> dict[str, bytes]:
    """User -> bcrypt hash. The value is never shown: a plaintext password
    written where the hash belongs must not reach the log."""
    users: dict[str, bytes] = {}
    for user, hashed in check.mapping(raw, "basic_auth_users", None).items():
        if not isinstance(user, str):  # already reported by mapping()
            continue
        if ":" in user:  # Basic auth splits user and password at the first colon
            check.error(f"basic_auth_users.{user}", "a user name cannot contain ':'")
            continue
        # fullmatch: `$` would let a trailing newline (a YAML `|` block) through,
        # and bcrypt then refuses every password for that user.
        if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            check.error(f"basic_auth_users.{user}",
                        "must be a bcrypt hash ($2y$...), e.g. from htpasswd -nBC 10")
            continue
        if int(hashed[4:6]) > BCRYPT_MAX_COST:
            check.error(f"basic_auth_users.{user}",
                        f"bcrypt cost {int(hashed[4:6])} makes every login take seconds or "
                        f"more; at most {BCRYPT_MAX_COST}, e.g. from htpasswd -nBC 10")
            continue
        users[user] = hashed.replace("$2y$", "$2b$", 1).encode()
    return users


def load(path: str | Path) -> WebConfig:
    """The web config of one file; on any problem in it, a ConfigError naming all of them.

    `source` stays the path as given: a symlink re-pointed to a new file is
    read anew, and names relative to it stay relative to it.
    """
    check = Checker(str(path))
    body = check.mapping(read_yaml(read_file(path), check), "document", _TOP_KEYS)
    warnings: list[str] = []
    files: list[str] = []
    context, sans = _tls(check, body.get("tls_server_config"), Path(path).parent, warnings,
                         files)
    headers = _http(check, body.get("http_server_config"), warnings)
    limit = _rate(check, body.get("rate_limit"))
    users = _users(check, body.get("basic_auth_users"))
    if check.problems:
        raise check.failure()
    return WebConfig(context, MappingProxyType(users), headers, sans, limit,
                     tuple(warnings), str(path), tuple(files), empty=not body)
