"""Real peers for the tests, all on 127.0.0.1, all stopped afterwards.

Orthanc and dcmtk's storescp are real DICOM servers started as processes;
pynetdicom SCPs and raw sockets run in-process for peers that must misbehave.
A missing program fails the test loudly: the test command installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from exporter import config as config_module
from exporter.config import Config

LOOPBACK = "127.0.0.1"
MONITOR_AE = "KRONOBERG_MON"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {timeout}s")


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed; run the README's test command, which installs it")
    return path


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Orthanc:
    def __init__(self, dicom_port: int, http_port: int, storage: Path) -> None:
        self.dicom_port = dicom_port
        self.http_port = http_port
        self.storage = storage
        self.ae_title = "ORTHANC"

    def instances(self) -> list[str]:
        import urllib.request

        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/instances") as answer:
            return json.load(answer)


def start_orthanc(workdir: Path) -> tuple[Orthanc, subprocess.Popen]:
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    orthanc = Orthanc(free_port(), free_port(), storage)
    settings = {
        "Name": "dicom-exporter-test",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "DicomAet": orthanc.ae_title,
        "DicomPort": orthanc.dicom_port,
        "HttpPort": orthanc.http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        # Only known modalities may associate: an unknown calling AE is rejected.
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomCheckModalityHost": False,
        "DicomModalities": {"monitor": [MONITOR_AE, LOOPBACK, 104]},
        "Plugins": [],
        "LuaScripts": [],
    }
    settings_file = workdir / "orthanc.json"
    settings_file.write_text(json.dumps(settings))
    log = open(workdir / "orthanc.log", "wb")
    process = subprocess.Popen(
        [require("Orthanc"), str(settings_file)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    try:
        wait_for_port(orthanc.dicom_port, process)
        wait_for_port(orthanc.http_port, process)
    except RuntimeError:
        stop(process)
        raise
    return orthanc, process


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server, process = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    stop(process)


@pytest.fixture(scope="session")
def storescp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """dcmtk's storescp: AE STORESCP, writes what it receives to a temp dir."""
    out = tmp_path_factory.mktemp("storescp")
    port = free_port()
    process = subprocess.Popen(
        [require("storescp"), "--aetitle", "STORESCP", "--output-directory", str(out),
         "--fork", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    try:
        wait_for_port(port, process)
    except RuntimeError:
        stop(process)
        raise
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
