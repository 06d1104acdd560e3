"""Test-only certificates made with openssl for the TLS tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from exporter import probers
from exporter.probers.report import ProbeReport
from tests.support.configs import make_config
from tests.support.realpeers import require


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([require("openssl"), *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name} test CA", "-keyout", f"{name}.key", "-out", f"{name}.crt",
            cwd=folder)


def make_cert(folder: Path, name: str, ca: str, cn: str = "localhost") -> None:
    """A certificate for 127.0.0.1/localhost signed by `ca`, made for this test only."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
    (folder / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
            cwd=folder)


def tls_probe(pki: Path, port: int, module: str = "echo", ca: str = "ca", client: bool = True,
              tls: bool = True) -> ProbeReport:
    """One probe of dcmtk's TLS storescp on `port` with the test PKI."""
    settings: dict[str, Any] = {"ca_file": str(pki / f"{ca}.crt"), "server_name": "localhost"}
    if client:
        settings |= {"cert_file": str(pki / "client.crt"),
                     "key_file": str(pki / "client.key")}
    target = {"port": port, "ae_title": "TLSSCP"}
    if tls:
        target["tls"] = settings
    config = make_config({"peer": target})
    return probers.run(config.targets["peer"], config.modules[module], 3.0)
