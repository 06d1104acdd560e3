"""A target's `tls:` block: DICOM over TLS to a peer, per DICOM's BCP 195 profile.

    tls:
      ca_file: /etc/dicom-exporter/sjunet-ca.pem   # who may sign the peer's certificate
      cert_file: client.pem                        # optional: our certificate ...
      key_file: client.key                         # ... and its key
      server_name: pacs.skane.invalid              # default: the target's host
      insecure_skip_verify: false                  # never in production

TLS 1.2 is the minimum and only forward-secret AEAD cipher suites are offered,
as the BCP 195 profiles of DICOM PS3.15 require. The context is built once,
when the config is read, so a bad file is a config error, not a failed probe.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from exporter.config.strict import Checker, existing_file, shown

BCP195_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL:!SHA1"
_KEYS = {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}


@dataclass(frozen=True)
class TargetTLS:
    context: ssl.SSLContext
    server_name: str
    verify: bool
    # Who we are and whom we trust (files as configured, the name checked,
    # whether we verify): a peer may accept one client certificate and refuse
    # another, so the store memory keys on it.
    identity: str = ""


def _file(check: Checker, body: dict[str, Any], key: str, path: str) -> str | None:
    return existing_file(check, f"{path}.{key}", body.get(key))


def parse_target_tls(check: Checker, raw: object, path: str, host: str | None
                     ) -> TargetTLS | None:
    body = check.mapping(raw, path, _KEYS)
    if not isinstance(raw, dict):
        return None
    ca = _file(check, body, "ca_file", path)
    cert = _file(check, body, "cert_file", path)
    key = _file(check, body, "key_file", path)
    if ("cert_file" in body) != ("key_file" in body):
        check.error(path, "cert_file and key_file go together")
    insecure = body.get("insecure_skip_verify", False)
    if not isinstance(insecure, bool):
        check.error(f"{path}.insecure_skip_verify", f"must be true or false, got {shown(insecure)}")
        insecure = False
    server_name = body.get("server_name", host)
    if not isinstance(server_name, str) or not server_name:
        check.error(f"{path}.server_name", f"must be a host name, got {shown(server_name)}")
        return None
    if ("ca_file" in body and ca is None) or ("cert_file" in body and cert is None):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.set_ciphers(BCP195_CIPHERS)
        if cert and key:
            context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        check.error(path, f"cannot load the certificate or key: {exc}")
        return None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    identity = "|".join((f"cert={body.get('cert_file', '')}", f"ca={body.get('ca_file', '')}",
                         f"name={server_name}", f"verify={not insecure}"))
    return TargetTLS(context, server_name, not insecure, identity)
