"""RSS after a TLS handshake flood: does the exporter's memory come back?

Starts the exporter with TLS on loopback (a certificate made for this run
with openssl), scrapes /metrics a few times and records its RSS
(/proc/PID/status VmRSS) as the baseline; then opens N TLS connections in
waves of W at once (every handshake completed, the wave held open, then
closed) and prints the RSS above the baseline at the peak, 5 s after the
flood and after the wait. `--compare
DIR` runs the same flood against another tree's `exporter` package (a
checkout, or `git archive` of one) on PYTHONPATH: before and after in one run.
Figures only, no thresholds: they go to docs/performance.md.

Run: .venv/bin/python -m benchmarks.tls_flood [--handshakes 3000] [--wave 300]
     [--wait 15] [--request] [--rounds 3] [--compare /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import ssl
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from benchmarks.measure import exporter_process
from tests.support.pki import make_ca, make_cert
from tests.support.realpeers import LOOPBACK

CLIENT_THREADS = 32
SOON = 5.0  # seconds after the flood: within the exporter's 10 s between trims


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmRSS:"))) / 1024


def scrape(port: int, context: ssl.SSLContext) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw, \
            context.wrap_socket(raw) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass


def handshake(port: int, context: ssl.SSLContext, request: bool) -> ssl.SSLSocket | None:
    """One TLS connection, its handshake completed (and with `request`, one
    /metrics asked and its answer read; the connection stays open)."""
    raw = socket.create_connection((LOOPBACK, port), timeout=10)
    try:
        sock = context.wrap_socket(raw)
        if request:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
        return sock
    except (OSError, ssl.SSLError):
        raw.close()
        return None


def flood(pid: int, port: int, context: ssl.SSLContext, handshakes: int, wave: int,
          request: bool) -> tuple[int, float]:
    """Handshakes completed, and the highest RSS seen while a wave was open."""
    done, peak = 0, 0.0
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for start in range(0, handshakes, wave):
            count = min(wave, handshakes - start)
            opened = [sock for sock in pool.map(lambda _: handshake(port, context, request),
                                                range(count)) if sock is not None]
            done += len(opened)
            peak = max(peak, rss_mib(pid))
            for sock in opened:
                sock.close()
    return done, peak


def measure(tree: str | None, config: Path, web: Path, args: argparse.Namespace
            ) -> tuple[float, int, float, list[float]]:
    """Baseline RSS, handshakes done, peak RSS, and RSS at each of SOON and
    args.wait seconds after the flood."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with exporter_process(config, extra=("--web.config.file", str(web)), env=env) as (
            port, process):
        for _ in range(5):
            scrape(port, context)
        time.sleep(2)
        baseline = rss_mib(process.pid)
        done, peak = flood(process.pid, port, context, args.handshakes, args.wave,
                           args.request)
        ended = time.monotonic()
        after = []
        for delay in (SOON, args.wait):
            time.sleep(max(0.0, ended + delay - time.monotonic()))
            after.append(rss_mib(process.pid))
    return baseline, done, peak, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handshakes", type=int, default=3000)
    parser.add_argument("--wave", type=int, default=300,
                        help="connections open at once (the server allows 384 per client)")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds after the flood")
    parser.add_argument("--request", action="store_true",
                        help="each connection also asks /metrics once (workers answer)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each exporter, alternating (glibc trims by itself at times)")
    parser.add_argument("--compare", default=None,
                        help="a tree whose exporter package runs as 'before'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_ca(folder, "ca")
        make_cert(folder, "server", "ca")
        web = folder / "web.yml"
        web.write_text(yaml.safe_dump({"tls_server_config": {
            "cert_file": str(folder / "server.crt"), "key_file": str(folder / "server.key")}}))
        config = folder / "c.yml"
        config.write_text(yaml.safe_dump({
            "modules": {"echo": {"prober": "echo", "timeout": "2s"}},
            "targets": {"peer": {"host": LOOPBACK, "port": 104, "ae_title": "PEER",
                                 "modules": ["echo"],
                                 "labels": {"site": "vaxjo", "role": "partner"}}},
        }), encoding="utf-8")
        load = os.getloadavg()[0]
        print(f"{platform.node()}, {os.cpu_count()} cores, load average {load:.1f}, "
              f"{platform.python_implementation()} {platform.python_version()}, "
              f"{args.handshakes} TLS handshakes in waves of {args.wave}, "
              f"RSS {args.wait:g} s after")
        print(f"| exporter | baseline MiB | peak | {SOON:g} s after | {args.wait:g} s after "
              "| handshakes |")
        print("|---|---|---|---|---|---|")
        rows = ([("before", args.compare)] if args.compare else []) + [("this tree", None)]
        for label, tree in rows * args.rounds:
            baseline, done, peak, after = measure(tree, config, web, args)
            soon, late = (f"{rss - baseline:+.1f}" for rss in after)
            print(f"| {label} | {baseline:.1f} | {peak - baseline:+.1f} | {soon} | {late} "
                  f"| {done} |")


if __name__ == "__main__":
    main()
