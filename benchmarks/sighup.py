"""How soon after exec a SIGHUP no longer ends the exporter, beside a bare interpreter.

A SIGHUP before the interpreter runs its first line ends any Python program;
the exporter's own share after that is the window until `exporter.sighup`
(tests/test_cli.py checks deterministically that nothing slow comes before it
and that a SIGHUP caught while starting is held). This prints, per delay after
exec, how many of N starts survived: a bare interpreter that catches SIGHUP
as its first statement, `python -m exporter serve`, and the same under
`nohup` as the shipped unit's ExecStart starts it (SIGHUP ignored from exec on;
tests/test_cli.py checks that one deterministically). Timing lives here, not
in a test: on a loaded machine the interpreter's own start varies by tens of
milliseconds from one process to the next.

Run: .venv/bin/python -m benchmarks.sighup [--runs 20] [--delays 25,40,60]
"""

from __future__ import annotations

import argparse
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.support.realpeers import LOOPBACK, free_port

BARE = "import runpy, _signal, time\n_signal.signal(1, lambda *a: None)\ntime.sleep(3)\n"


def survives(argv: list[str], delay: float) -> bool:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(delay)
        process.send_signal(signal.SIGHUP)
        time.sleep(0.1)
        return process.poll() != -signal.SIGHUP
    finally:
        process.kill()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--delays", default="25,40,60", help="milliseconds after exec")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yml"
        path.write_text(yaml.safe_dump({
            "modules": {"echo": {"prober": "echo", "timeout": "2s"}},
            "targets": {"peer": {"host": LOOPBACK, "port": 104, "ae_title": "PEER",
                                 "modules": ["echo"]}},
        }), encoding="utf-8")
        serve = [sys.executable, "-m", "exporter", "serve", "--config.file", str(path),
                 "--web.listen-address", f"{LOOPBACK}:{free_port()}"]
        print(f"{platform.node()}, {platform.python_implementation()} "
              f"{platform.python_version()}, {args.runs} starts per cell")
        print("| ms after exec | bare interpreter survived | exporter survived "
              "| exporter under nohup (the unit) survived |")
        print("|---|---|---|---|")
        for delay_ms in (int(d) for d in args.delays.split(",")):
            bare = sum(survives([sys.executable, "-c", BARE], delay_ms / 1000)
                       for _ in range(args.runs))
            ours = sum(survives(serve, delay_ms / 1000) for _ in range(args.runs))
            unit = sum(survives(["nohup", *serve], delay_ms / 1000) for _ in range(args.runs))
            print(f"| {delay_ms} | {bare}/{args.runs} | {ours}/{args.runs} "
                  f"| {unit}/{args.runs} |")


if __name__ == "__main__":
    main()
