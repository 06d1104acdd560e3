"""Real peers for the tests, all on 127.0.0.1, all stopped afterwards.

Orthanc and dcmtk's storescp are real DICOM servers started as processes;
pynetdicom SCPs and raw sockets run in-process for peers that must misbehave.
A missing program fails the test loudly: the test command installs them.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from exporter import config as config_module
from exporter.config import Config
from tests.realpeers import (
    LOOPBACK,
    MONITOR_AE,
    Orthanc,
    free_port,
    program,
    start_orthanc,
    start_storescp,
    stop,
    wait_for_port,
)


def load_script(path: Path, name: str) -> ModuleType:
    """Import a generator script (alerts/build.py, grafana/build.py) under its own name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require(name: str) -> str:
    try:
        return program(name)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    try:
        server, process = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    yield server
    stop(process)


@pytest.fixture(scope="session")
def storescp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """dcmtk's storescp: AE STORESCP, writes what it receives to a temp dir."""
    out = tmp_path_factory.mktemp("storescp")
    try:
        port, process = start_storescp(out)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    yield port, out
    stop(process)


def make_config(
    targets: dict[str, dict], modules: dict[str, dict] | None = None, source: str = "test.yml"
) -> Config:
    """A Config built through the real parser, defaults filled in for brevity."""
    default_modules = {
        "tcp": {"prober": "tcp", "timeout": "2s"},
        "echo": {"prober": "echo", "timeout": "2s", "calling_ae_title": MONITOR_AE},
        "negotiate": {
            "prober": "negotiate", "timeout": "2s", "calling_ae_title": MONITOR_AE,
            "sop_classes": ["CTImageStorage"],
        },
        "store": {
            "prober": "store", "timeout": "5s", "calling_ae_title": MONITOR_AE,
            "min_interval": "1ms",
        },
    }
    document = {"modules": modules or default_modules, "targets": {}}
    for name, target in targets.items():
        document["targets"][name] = {
            "host": LOOPBACK,
            "modules": list(document["modules"]),
            "labels": {"site": "vaxjo", "role": "partner"},
            **target,
        }
    return config_module.parse(yaml.safe_dump(document), source)


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


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Test-only certificates: `server` (127.0.0.1, localhost) and `client` from
    `ca`; `stranger` from `other`, a CA nobody trusts."""
    folder = tmp_path_factory.mktemp("pki")
    make_ca(folder, "ca")
    make_ca(folder, "other")
    make_cert(folder, "server", "ca")
    make_cert(folder, "client", "ca", cn="KRONOBERG_MON")
    make_cert(folder, "stranger", "other", cn="stranger")
    return folder


@pytest.fixture(scope="session")
def tls_storescp(
    pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """dcmtk's storescp with TLS (its default BCP 195 profile), client certificates required."""
    out = tmp_path_factory.mktemp("tls-out")
    port = free_port()
    process = subprocess.Popen(
        [require("storescp"), "--aetitle", "TLSSCP", "--output-directory", str(out),
         "+tls", str(pki / "server.key"), str(pki / "server.crt"), "-pw",
         "+cf", str(pki / "ca.crt"), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield port
    finally:
        stop(process)
