"""Real peers for the tests, all on 127.0.0.1, all stopped afterwards.

Orthanc and dcmtk's storescp are real DICOM servers started as processes;
pynetdicom SCPs and raw sockets run in-process for peers that must misbehave.
A missing program fails the test loudly: the test command installs them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pki import make_ca, make_cert
from tests.support.realpeers import (
    STORE_DENIED_AE,
    Orthanc,
    free_port,
    require,
    start_orthanc,
    start_storescp,
    stop,
    wait_for_port,
)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    try:
        server, process = start_orthanc(tmp_path_factory.mktemp("orthanc"),
                                        store_denied=(STORE_DENIED_AE,))
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
