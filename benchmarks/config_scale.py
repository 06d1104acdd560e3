"""How long the config takes at scale: check-config and the reader, per size.

Generates configs of N targets x 2 modules (echo and tcp, labels, sites and
one route per partner, as a national monitor would have them) and prints,
for each size: the whole `dicom-exporter check-config` command (a fresh
process, as an operator runs it; wall and CPU seconds, CPU being the figure
that holds on a shared machine), the reader alone (YAML to document) and the
validation alone (document to Config), and the time per target, which stays
flat when validation is linear. Goal (issue 15): check-config ≤ 2 s at
5,000 targets x 2 modules.

Run: .venv/bin/python -m benchmarks.config_scale [--sizes 500,2000,5000] [--runs 5]
     [--compare /other/checkout/.venv/bin/dicom-exporter]   # before/after, same run
Nothing is probed: hosts are placeholders under .invalid and never resolved.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from exporter.config import targets as config_targets
from exporter.config.strict import Checker, read_yaml

REGIONS = ("skane", "blekinge", "ostergotland", "jonkoping", "vastragotland", "halland")


def make_config(targets: int) -> str:
    """A valid config of `targets` targets, each probed by two modules."""
    lines = [
        "sites:", "  vaxjo: {name: Växjö}", "  ljungby: {name: Ljungby}",
        "modules:",
        "  echo: {prober: echo, timeout: 5s, calling_ae_title: KRONOBERG_MON}",
        "  tcp: {prober: tcp, timeout: 3s}",
        "targets:",
    ]
    for index in range(targets):
        site = "vaxjo" if index % 2 else "ljungby"
        region = REGIONS[index % len(REGIONS)]
        lines += [
            f"  node{index:05d}:",
            f"    host: node{index:05d}.{region}.invalid",
            "    port: 104",
            f"    ae_title: NODE{index:05d}",
            "    modules: [echo, tcp]",
            f"    labels: {{site: {site}, region: {region}, role: partner}}",
        ]
    lines.append("routes:")
    for index in range(0, targets, 10):
        lines += [
            f"  route{index:05d}:",
            "    site: vaxjo",
            f"    partner: node{index:05d}",
            f"    primary: [node{index:05d}]",
        ]
    return "\n".join(lines) + "\n"


def _median_seconds(runs: int, action: Callable[[], object]) -> float:
    """Median CPU seconds of `action` in this process: stable on a shared machine."""
    samples = []
    for _ in range(runs):
        started = time.process_time()
        action()
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def _command(binary: str, path: Path, runs: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of the whole check-config command."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([binary, "check-config", str(path)], capture_output=True,
                              text=True, timeout=300, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{binary} check-config failed: {done.stderr.strip()[:300]}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,2000,5000,20000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", help="another dicom-exporter command to time beside ours")
    args = parser.parse_args()
    ours = str(Path(sys.executable).with_name("dicom-exporter"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            text = make_config(size)
            path = Path(tmp) / f"scale-{size}.yml"
            path.write_text(text, encoding="utf-8")
            document = read_yaml(text, Checker(str(path)))
            reader = _median_seconds(args.runs, partial(read_yaml, text, Checker("x")))
            validate = _median_seconds(
                args.runs, partial(config_targets.from_document, document, Checker("x")))
            command = _command(ours, path, args.runs)
            other = _command(args.compare, path, args.runs) if args.compare else None
            rows.append((size, len(text) / 2**20, command, other, reader, validate,
                         validate / size * 1e6))
    print(f"config scale, {args.runs} runs each, median; Python {sys.version.split()[0]}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("check-config: wall / CPU seconds of the whole command (a fresh process); "
          "reader, validate: CPU seconds in-process")
    head = ("targets", "file MiB", "check-config s", "compared s", "reader s", "validate s",
            "validate µs/target")
    print(" | ".join(head))
    for size, mib, command, other, reader, validate, per in rows:
        shown_other = f"{other[0]:.2f} / {other[1]:.2f}" if other is not None else "-"
        print(f"{size} | {mib:.2f} | {command[0]:.2f} / {command[1]:.2f} | {shown_other} | "
              f"{reader:.2f} | {validate:.2f} | {per:.0f}")

if __name__ == "__main__":
    main()
