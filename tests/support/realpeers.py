"""Starting the real DICOM servers on loopback: Orthanc, dcmtk, pynetdicom's apps.

Shared by the test fixtures and the benchmarks, which both need the same
peers started the same way (TCP_NODELAY=1, temp storage, our AE known).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exporter import probers
from exporter.probers.report import ProbeReport
from tests.support.configs import make_config
from tests.support.loopback import LOOPBACK as LOOPBACK  # re-exported: tests import it here
from tests.support.loopback import MONITOR_AE as MONITOR_AE
from tools.stack import stop_process

# Ports handed to servers a test starts by number (processes, "a closed port").
# They come from below Linux's ephemeral range (32768-60999), so no socket
# bound to port 0 anywhere can take one between free_port() and the server's
# bind, and each pytest-xdist worker draws from its own slice, so two workers
# never hand out the same port.
_PORTS = (20000, 32768)
_turn = itertools.count(os.getpid() % 997)


def _slice() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1), index + 1)
    span = (_PORTS[1] - _PORTS[0]) // workers
    return _PORTS[0] + index * span, _PORTS[0] + (index + 1) * span


def free_port() -> int:
    """A loopback port nobody is bound to, from this worker's own slice."""
    low, high = _slice()
    for _ in range(high - low):
        port = low + next(_turn) % (high - low)
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None,
                  timeout: float = 20) -> None:
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


def wait_for_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20
                       ) -> None:
    """Like wait_for_port, without connecting: for a peer that exits when a
    connection closes before an A-ASSOCIATE-RQ (ctn's simple_storage does)."""
    end = time.monotonic() + timeout
    wanted = f"0100007F:{port:04X}"  # 127.0.0.1, as /proc/net/tcp writes it
    any_address = f"00000000:{port:04X}"
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] in (wanted, any_address) and fields[3] == "0A":  # LISTEN
                return
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
            return list(json.load(answer))


def start_orthanc(workdir: Path, known_aes: tuple[str, ...] = (MONITOR_AE,),
                  store_denied: tuple[str, ...] = (), nodelay: bool = True,
                  tls: Path | None = None, known_port: int = 104,
                  permissions: dict[str, bool] | None = None,
                  ) -> tuple[Orthanc, subprocess.Popen[bytes]]:
    """Orthanc that accepts only `known_aes` as calling AE titles.

    `store_denied` are known AEs that may echo but not store (AllowStore
    false). `nodelay=False` runs it as Debian's orthanc.service does, without
    TCP_NODELAY. `tls` is a folder from tests.support.pki: DICOM TLS with
    `server` as Orthanc's certificate and client certificates from `ca` required.
    `known_port` is where Orthanc reaches the known AEs (a Storage Commitment
    report goes there, on 127.0.0.1); `permissions` (e.g. AllowFind) are set
    for each of them.
    """
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    orthanc = Orthanc(free_port(), free_port(), storage)
    modalities: dict[str, object] = {}
    for ae in (*known_aes, *store_denied):
        modalities[ae.lower()] = {"AET": ae, "Host": LOOPBACK, "Port": known_port,
                                  "AllowEcho": True, "AllowStore": ae not in store_denied,
                                  **(permissions or {})}
    settings: dict[str, object] = {
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
        "DicomModalities": modalities,
        "Plugins": [],
        "LuaScripts": [],
    }
    if tls is not None:
        settings |= {
            "DicomTlsEnabled": True,
            "DicomTlsCertificate": str(tls / "server.crt"),
            "DicomTlsPrivateKey": str(tls / "server.key"),
            "DicomTlsTrustedCertificates": str(tls / "ca.crt"),
            "DicomTlsRemoteCertificateRequired": True,
        }
    settings_file = workdir / "orthanc.json"
    settings_file.write_text(json.dumps(settings))
    env = {key: value for key, value in os.environ.items() if key != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    with open(workdir / "orthanc.log", "wb") as log:
        process = subprocess.Popen(
            [program("Orthanc"), str(settings_file)],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    try:
        wait_for_port(orthanc.dicom_port, process)
        wait_for_port(orthanc.http_port, process)
    except RuntimeError:
        stop(process)
        raise
    return orthanc, process


def start_storescp(out: Path, ae_title: str = "STORESCP", nodelay: bool = True,
                   options: tuple[str, ...] = ()) -> tuple[int, subprocess.Popen[bytes]]:
    """dcmtk's storescp writing what it receives to `out`.

    `nodelay=False` starts it as shipped: Nagle on (dcmtk sets TCP_NODELAY
    only when the environment asks for it). `options` go before the port.
    """
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    process = subprocess.Popen(
        [program("storescp"), "--aetitle", ae_title, "--output-directory", str(out),
         "--fork", *options, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
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


# -- the interop catalogue: DICOM peers as they ship, each started on loopback --
@dataclass(frozen=True)
class RunningPeer:
    name: str
    port: int
    ae_title: str
    tls: bool = False  # speaks DICOM TLS: probe with the test PKI's client certificate


@contextmanager
def _process(argv: list[str], port: int, cwd: Path, nodelay: bool = False,
             connect_to_wait: bool = True) -> Iterator[subprocess.Popen[bytes]]:
    env = {key: value for key, value in os.environ.items() if key != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    with open(cwd / "peer.log", "ab") as log:
        process = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        if connect_to_wait:
            wait_for_port(port, process)
        else:
            wait_for_listening(port, process)
        yield process
    finally:
        stop(process)


def storescp_peer(*options: str, nodelay: bool = False, tls: bool = False, fork: bool = True
                  ) -> Callable[[Path, Path | None], AbstractContextManager[RunningPeer]]:
    """dcmtk's storescp with `options`; `fork=False` serves one association at a time
    without a fork each (steadier figures, but a sleeping mode then blocks the next)."""
    @contextmanager
    def start(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
        port = free_port()
        extra: tuple[str, ...] = ()
        if tls:
            assert pki is not None, "a TLS peer needs the test PKI"
            extra = ("+tls", str(pki / "server.key"), str(pki / "server.crt"), "-pw",
                     "+cf", str(pki / "ca.crt"))
        argv = [program("storescp"), "--aetitle", "STORESCP", "--output-directory",
                str(workdir), *(["--fork"] if fork else []), *options, *extra, str(port)]
        with _process(argv, port, workdir, nodelay):
            yield RunningPeer("", port, "STORESCP", tls)
    return start


@contextmanager
def _dcmqrscp(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
    """dcmtk's archive: only our AE (from 127.0.0.1) may associate."""
    port = free_port()
    database = workdir / "db"
    database.mkdir(exist_ok=True)
    config = workdir / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 8\n"
        f"HostTable BEGIN\nmonitor = ({MONITOR_AE}, {LOOPBACK}, 104)\nHostTable END\n"
        "VendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nDCMQRSCP {database} RW (20, 64mb) monitor\nAETable END\n")
    with _process([program("dcmqrscp"), "--config", str(config), "--disable-host-lookup"],
                  port, workdir):
        yield RunningPeer("", port, "DCMQRSCP")


@contextmanager
def _wlmscpfs(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
    """dcmtk's worklist server: Verification and worklist find, no storage."""
    port = free_port()
    (workdir / "WLMSCPFS").mkdir(exist_ok=True)
    (workdir / "WLMSCPFS" / "lockfile").touch()
    with _process([program("wlmscpfs"), "--data-files-path", str(workdir), str(port)],
                  port, workdir):
        yield RunningPeer("", port, "WLMSCPFS")


def _orthanc(nodelay: bool = True, tls: bool = False
             ) -> Callable[[Path, Path | None], AbstractContextManager[RunningPeer]]:
    @contextmanager
    def start(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
        assert pki is not None or not tls, "a TLS peer needs the test PKI"
        server, process = start_orthanc(workdir, store_denied=(STORE_DENIED_AE,),
                                        nodelay=nodelay, tls=pki if tls else None)
        try:
            yield RunningPeer("", server.dicom_port, server.ae_title, tls)
        finally:
            stop(process)
    return start


def _pynetdicom_app(app: str, *options: str
                    ) -> Callable[[Path, Path | None], AbstractContextManager[RunningPeer]]:
    @contextmanager
    def start(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
        port = free_port()
        argv = [sys.executable, "-m", "pynetdicom", app, str(port), "-aet", "PYNETDICOM",
                "-ba", LOOPBACK, *options]
        with _process(argv, port, workdir):
            yield RunningPeer("", port, "PYNETDICOM")
    return start


# dcmrecv's profiles: the two Debian ships in /etc/dcmtk/storescp.cfg, and two
# written here as a partner might configure one, to provoke the causes of
# issue 28: storage without Verification, and CT in JPEG only.
DCMTK_PROFILES = Path("/etc/dcmtk/storescp.cfg")
OUR_PROFILES = """\
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[JPEGOnly]
TransferSyntax1 = JPEGBaseline
[[PresentationContexts]]
[StorageOnlySCP]
PresentationContext1 = CTImageStorage\\Uncompressed
[JPEGOnlySCP]
PresentationContext1 = VerificationSOPClass\\Uncompressed
PresentationContext2 = CTImageStorage\\JPEGOnly
[[Profiles]]
[StorageOnly]
PresentationContexts = StorageOnlySCP
[JPEGOnly]
PresentationContexts = JPEGOnlySCP
"""


def dcmrecv_peer(profile: str | None = None, ours: bool = False
                 ) -> Callable[[Path, Path | None], AbstractContextManager[RunningPeer]]:
    """dcmtk's dcmrecv (storage SCP), with a profile from Debian's
    storescp.cfg or from OUR_PROFILES; None: its built-in default."""
    @contextmanager
    def start(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
        port = free_port()
        options: list[str] = []
        if profile is not None:
            config = DCMTK_PROFILES
            if ours:
                config = workdir / "profiles.cfg"
                config.write_text(OUR_PROFILES)
            options = ["--config-file", str(config), profile]
        argv = [program("dcmrecv"), "--aetitle", "DCMRECV", "--output-directory",
                str(workdir), *options, str(port)]
        with _process(argv, port, workdir):
            yield RunningPeer("", port, "DCMRECV")
    return start


@contextmanager
def _ctn_simple_storage(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
    """The Central Test Node's storage server (Debian package ctn), one
    process per association (-f), files under workdir. It exits when a
    connection closes before an A-ASSOCIATE-RQ (what a `tcp` probe does), so
    it is waited for without connecting."""
    port = free_port()
    argv = [program("simple_storage"), "-f", "-s", "-c", "CTN_STORAGE", "-x", str(workdir),
            str(port)]
    with _process(argv, port, workdir, connect_to_wait=False):
        yield RunningPeer("", port, "CTN_STORAGE")


@contextmanager
def _pynetdicom_qrscp(workdir: Path, pki: Path | None) -> Iterator[RunningPeer]:
    """pynetdicom's query/retrieve app (needs SQLAlchemy, in the test extras):
    storage into its own database under workdir."""
    port = free_port()
    (workdir / "instances").mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "pynetdicom", "qrscp", "--port", str(port),
            "-aet", "QRSCP", "-ba", LOOPBACK, "--database-location",
            str(workdir / "qrscp.sqlite"), "--instance-location", str(workdir / "instances")]
    with _process(argv, port, workdir):
        yield RunningPeer("", port, "QRSCP")


# A known AE that Orthanc lets echo but not store (AllowStore false).
STORE_DENIED_AE = "NOSTORE_MON"
# Name -> how to start it. "as shipped" means Nagle on: neither dcmtk nor
# Debian's orthanc.service sets TCP_NODELAY.
INTEROP_PEERS: dict[str, Callable[[Path, Path | None], AbstractContextManager[RunningPeer]]] = {
    "storescp": storescp_peer(),
    "storescp TCP_NODELAY=1": storescp_peer(nodelay=True),
    "storescp +xs": storescp_peer("+xs"),
    "storescp +xi": storescp_peer("+xi"),
    "storescp +xb": storescp_peer("+xb"),
    "storescp +xd": storescp_peer("+xd"),
    "storescp -pdu 4096": storescp_peer("-pdu", "4096"),
    "storescp --refuse": storescp_peer("--refuse"),
    "storescp --abort-after": storescp_peer("--abort-after"),
    "storescp --abort-during": storescp_peer("--abort-during"),
    "storescp --sleep-during 4": storescp_peer("--sleep-during", "4"),
    "storescp --sleep-after 4": storescp_peer("--sleep-after", "4"),
    "storescp +tls": storescp_peer(tls=True),
    "dcmqrscp": _dcmqrscp,
    "wlmscpfs": _wlmscpfs,
    "Orthanc": _orthanc(nodelay=False),
    "Orthanc TCP_NODELAY=1": _orthanc(nodelay=True),
    "Orthanc DICOM TLS": _orthanc(nodelay=False, tls=True),
    "pynetdicom storescp": _pynetdicom_app("storescp", "--ignore"),
    "pynetdicom echoscp": _pynetdicom_app("echoscp"),
    "dcmrecv": dcmrecv_peer(),
    "dcmrecv Default": dcmrecv_peer("Default"),
    "dcmrecv AllDICOM": dcmrecv_peer("AllDICOM"),
    "dcmrecv StorageOnly": dcmrecv_peer("StorageOnly", ours=True),
    "dcmrecv JPEGOnly": dcmrecv_peer("JPEGOnly", ours=True),
    "ctn simple_storage": _ctn_simple_storage,
    "pynetdicom qrscp": _pynetdicom_qrscp,
}


@contextmanager
def interop_peer(name: str, workdir: Path, pki: Path | None = None) -> Iterator[RunningPeer]:
    """Start the catalogue's peer `name` in `workdir`; stopped when the block ends."""
    with INTEROP_PEERS[name](workdir, pki) as peer:
        yield RunningPeer(name, peer.port, peer.ae_title, peer.tls)


# -- what the interop suite and its benchmark run against every peer ------------
ALL_UNCOMPRESSED = ["ExplicitVRLittleEndian", "ImplicitVRLittleEndian",
                    "DeflatedExplicitVRLittleEndian", "ExplicitVRBigEndian"]
# name -> (module, calling AE, called AE or None for the peer's own, client certificate)
INTEROP_PROBES: dict[str, tuple[str, str, str | None, bool]] = {
    "echo": ("echo", MONITOR_AE, None, True),
    "negotiate": ("negotiate", MONITOR_AE, None, True),
    "store": ("store", MONITOR_AE, None, True),
    "wrong called AE": ("echo", MONITOR_AE, "NOT_THEIR_AE", True),
    "unknown calling AE": ("echo", "STRANGER", None, True),
    "store not permitted": ("store", STORE_DENIED_AE, None, True),
    "no client certificate": ("echo", MONITOR_AE, None, False),  # TLS peers only
}


def interop_probe(peer: RunningPeer, probe: str, pki: Path | None,
                  timeout: float = 2.0) -> ProbeReport:
    """One probe of the interop matrix: CT Image Storage, every uncompressed syntax."""
    module, calling, called, client_cert = INTEROP_PROBES[probe]
    modules: dict[str, dict[str, Any]] = {
        "echo": {"prober": "echo", "calling_ae_title": calling},
        "negotiate": {"prober": "negotiate", "calling_ae_title": calling,
                      "sop_classes": ["CTImageStorage"]},
        "store": {"prober": "store", "calling_ae_title": calling, "min_interval": "1ms",
                  "sop_classes": ["CTImageStorage"], "transfer_syntaxes": ALL_UNCOMPRESSED},
    }
    target: dict[str, Any] = {"port": peer.port, "ae_title": called or peer.ae_title}
    if peer.tls:
        assert pki is not None, "a TLS peer needs the test PKI"
        tls: dict[str, str] = {"ca_file": str(pki / "ca.crt"), "server_name": "localhost"}
        if client_cert:
            tls |= {"cert_file": str(pki / "client.crt"), "key_file": str(pki / "client.key")}
        target["tls"] = tls
    config = make_config({"peer": target}, {module: modules[module]})
    return probers.run(config.targets["peer"], config.modules[module], timeout)


def interop_probes_for(peer: RunningPeer) -> list[str]:
    return [name for name in INTEROP_PROBES if peer.tls or name != "no client certificate"]


def outcome(report: ProbeReport) -> str:
    """"ok", or the reason and the phase it failed in: "aborted (dimse)"."""
    if report.success:
        return "ok"
    assert report.reason is not None
    return f"{report.reason.value} ({report.failed_phase})"
