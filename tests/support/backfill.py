"""A real Prometheus holding weeks of synthetic history: OpenMetrics written here,
turned into TSDB blocks by `promtool tsdb create-blocks-from openmetrics`,
served by a Prometheus on a free loopback port with a retention long enough
to keep them. Recording rules are backfilled from it with `promtool tsdb
create-blocks-from rules`, as an operator adding rules to an old Prometheus does.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.promstack import prometheus_ready, wait_until
from tests.support.realpeers import LOOPBACK, free_port, require, stop, wait_for_port

# Backfilled history is months old by the machine's clock: keep it all.
RETENTION = "3650d"
MAX_BLOCK = "744h"


@dataclass(frozen=True)
class Series:
    name: str
    labels: Mapping[str, str]
    value: Callable[[float], float | None]  # None: no sample at that time
    since: float = float("-inf")  # no samples before this time (value is not asked)


def _label_text(labels: Mapping[str, str]) -> str:
    def escape(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items()))


def openmetrics(series: Iterable[Series], times: Iterable[float], path: Path) -> int:
    """Write every series' samples at `times` (grouped per metric family, as
    OpenMetrics requires) to `path`; returns the number of samples."""
    stamps = list(times)
    families: dict[str, list[Series]] = {}
    for s in series:
        families.setdefault(s.name, []).append(s)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for name, members in families.items():
            out.write(f"# TYPE {name} gauge\n")
            for s in members:
                prefix = f"{name}{{{_label_text(s.labels)}}} "
                lines = []
                for t in stamps[bisect.bisect_left(stamps, s.since):]:
                    value = s.value(t)
                    if value is not None:
                        lines.append(f"{prefix}{value!r} {t:.0f}\n")  # exact: a time is 10 digits
                out.writelines(lines)
                count += len(lines)
        out.write("# EOF\n")
    return count


def promtool(*args: str, cwd: Path) -> None:
    result = subprocess.run([require("promtool"), *args], cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    if result.returncode:
        raise RuntimeError(f"promtool {' '.join(args[:3])} failed: {result.stderr[-2000:]}")


class HistoricalPrometheus:
    """Prometheus over backfilled blocks: no scrape jobs, the given rule files."""

    def __init__(self, workdir: Path, openmetrics_file: Path,
                 rule_files: Iterable[Path] = ()) -> None:
        self.workdir = workdir
        self.data = workdir / "prometheus-data"
        self.data.mkdir(parents=True, exist_ok=True)
        # Blocks of up to 31 days (a hidden flag): with the default 2 h, promtool
        # reads the whole file once per block, minutes for 35 days.
        promtool("tsdb", "create-blocks-from", "openmetrics", "--quiet",
                 f"--max-block-duration={MAX_BLOCK}", str(openmetrics_file), str(self.data),
                 cwd=workdir)
        self.config = workdir / "prometheus.yml"
        self.config.write_text(json.dumps({
            "global": {"evaluation_interval": "1m"},
            "rule_files": [str(p) for p in rule_files],
        }))
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.port = free_port()
        self.base = f"http://{LOOPBACK}:{self.port}"
        self.process = subprocess.Popen(
            [require("prometheus"), f"--config.file={self.config}",
             f"--storage.tsdb.path={self.data}", f"--storage.tsdb.retention.time={RETENTION}",
             f"--web.listen-address={LOOPBACK}:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "prometheus.log").open("ab"),
            env=dict(os.environ),
        )
        try:
            wait_for_port(self.port, self.process)
            wait_until(lambda: prometheus_ready(self.base), 60, "Prometheus to be ready")
        except BaseException:
            self.stop()
            raise

    def backfill_rules(self, rule_file: Path, start: float, end: float) -> None:
        """Evaluate the recording rules of `rule_file` over [start, end) against this
        Prometheus, then restart it on the new blocks."""
        out = self.workdir / "rule-blocks"
        promtool("tsdb", "create-blocks-from", "rules", "--quiet", f"--url={self.base}",
                 f"--start={start:.0f}", f"--end={end:.0f}", f"--output-dir={out}",
                 str(rule_file), cwd=self.workdir)
        self.stop()
        for block in out.iterdir():
            shutil.move(str(block), self.data / block.name)
        self.start()

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """The API's whole answer, an error (status "error") included."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=60) as answer:
                body: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as error:
            body = json.load(error)
        return body

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None
