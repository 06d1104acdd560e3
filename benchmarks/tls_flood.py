"""RSS after a TLS handshake flood: does the exporter's memory come back?

Starts the exporter with TLS on loopback (a certificate made for this run
with openssl), scrapes /metrics a few times and records its RSS
(/proc/PID/status VmRSS) as the baseline; then opens N TLS connections in
waves of W at once (every handshake completed, the wave held open, then
closed; `--mode` says what each connection does besides) and prints the RSS
above the baseline at the peak, 5 s after the flood and after the wait. `--compare
DIR` runs the same flood against another tree's `exporter` package (a
checkout, or `git archive` of one) on PYTHONPATH: before and after in one run.
Figures only, no thresholds: they go to docs/performance.md.

Run: .venv/bin/python -m benchmarks.tls_flood [--handshakes 3000] [--wave 300]
     [--wait 20] [--mode handshake|request|never-read] [--rounds 3] [--compare /tmp/before]
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

from benchmarks.config_scale import make_config
from benchmarks.measure import exporter_process
from tests.support.pki import make_ca, make_cert
from tests.support.realpeers import LOOPBACK

CLIENT_THREADS = 32
PIPELINED = 50
HOLD = 3.0
TARGETS = 500  # --mode never-read: a 2 MB /metrics page, as in benchmarks/run.py
SOON = 5.0  # seconds after the flood: within the exporter's 10 s between trims


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmRSS:"))) / 1024


def scrape(port: int, context: ssl.SSLContext | None) -> None:
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        sock = context.wrap_socket(raw) if context else raw
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass


def handshake(port: int, context: ssl.SSLContext | None, mode: str) -> socket.socket | None:
    """One TLS connection, its handshake completed; "request": one /metrics
    asked and its answer's head read; "never-read": 50 /metrics pipelined on a
    1 KiB receive buffer and nothing read (issue 30's clients that never read).
    The connection stays open; with no context (--plain) it is plain HTTP."""
    raw = socket.socket()
    try:
        if mode == "never-read":
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        raw.settimeout(10)
        raw.connect((LOOPBACK, port))
        sock = context.wrap_socket(raw) if context else raw
        if mode == "request":
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
        elif mode == "never-read":
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * PIPELINED)
        return sock
    except (OSError, ssl.SSLError):
        raw.close()
        return None


def flood(pid: int, port: int, context: ssl.SSLContext | None, handshakes: int, wave: int,
          mode: str) -> tuple[int, float]:
    """Handshakes completed, and the highest RSS seen while a wave was open."""
    done, peak = 0, 0.0
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for start in range(0, handshakes, wave):
            count = min(wave, handshakes - start)
            if mode == "never-read":  # one after another, as benchmarks/run.py's attack
                made = [handshake(port, context, mode) for _ in range(count)]
            else:
                made = list(pool.map(lambda _: handshake(port, context, mode), range(count)))
            opened = [sock for sock in made if sock is not None]
            done += len(opened)
            if mode == "never-read":
                time.sleep(HOLD)  # the exporter renders and parks what it can
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
    context: ssl.SSLContext | None = None
    if not args.plain:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    extra = () if args.plain else ("--web.config.file", str(web))
    with exporter_process(config, extra=extra, env=env, timeout=60) as (port, process):
        for _ in range(5):  # the /metrics page and its caches are in the baseline
            scrape(port, context)
        time.sleep(2)
        baseline = rss_mib(process.pid)
        done, peak = flood(process.pid, port, context, args.handshakes, args.wave, args.mode)
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
    parser.add_argument("--mode", choices=("handshake", "request", "never-read"),
                        default="handshake",
                        help="request: each connection also asks /metrics once (the pool "
                             "answers); never-read: each pipelines 50 /metrics and never "
                             f"reads, against {TARGETS} targets")
    parser.add_argument("--plain", action="store_true",
                        help="plain HTTP: the exporter without its TLS web config")
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
        config.write_text(make_config(TARGETS if args.mode == "never-read" else 1),
                          encoding="utf-8")
        load = os.getloadavg()[0]
        print(f"{platform.node()}, {os.cpu_count()} cores, load average {load:.1f}, "
              f"{platform.python_implementation()} {platform.python_version()}, "
              f"{args.handshakes} {'plain' if args.plain else 'TLS'} connections ({args.mode}) "
              f"in waves of {args.wave}, "
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
