"""Starting the real DICOM servers: Orthanc and dcmtk's storescp, on loopback.

Shared by the test fixtures and the benchmarks, which both need the same
peers started the same way (TCP_NODELAY=1, temp storage, our AE known).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tools.stack import stop_process

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


def program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} is not installed; scripts/test.sh installs it (Debian packages)"
        )
    return path


stop = stop_process


class Orthanc:
    def __init__(self, dicom_port: int, http_port: int, storage: Path) -> None:
        self.dicom_port = dicom_port
        self.http_port = http_port
        self.storage = storage
        self.ae_title = "ORTHANC"

    def instances(self) -> list[str]:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/instances") as answer:
            return json.load(answer)


def start_orthanc(workdir: Path, known_aes: tuple[str, ...] = (MONITOR_AE,)
                  ) -> tuple[Orthanc, subprocess.Popen]:
    """Orthanc that accepts only `known_aes` as calling AE titles."""
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
        "DicomModalities": {ae.lower(): [ae, LOOPBACK, 104] for ae in known_aes},
        "Plugins": [],
        "LuaScripts": [],
    }
    settings_file = workdir / "orthanc.json"
    settings_file.write_text(json.dumps(settings))
    with open(workdir / "orthanc.log", "wb") as log:
        process = subprocess.Popen(
            [program("Orthanc"), str(settings_file)],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
    try:
        wait_for_port(orthanc.dicom_port, process)
        wait_for_port(orthanc.http_port, process)
    except RuntimeError:
        stop(process)
        raise
    return orthanc, process


def start_storescp(out: Path, ae_title: str = "STORESCP") -> tuple[int, subprocess.Popen]:
    """dcmtk's storescp writing what it receives to `out`."""
    port = free_port()
    process = subprocess.Popen(
        [program("storescp"), "--aetitle", ae_title, "--output-directory", str(out),
         "--fork", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    try:
        wait_for_port(port, process)
    except RuntimeError:
        stop(process)
        raise
    return port, process


def require(name: str) -> str:
    try:
        return program(name)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
