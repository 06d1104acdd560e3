"""A real Prometheus for end-to-end tests: prometheus/prometheus.yml on loopback
(as the full stack builds it), one-second intervals, the shipped alert rules,
and helpers for its HTTP API."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.realpeers import LOOPBACK, free_port, require, stop, wait_for_port
from tools.stack import PROMETHEUS_FLAGS, REPLICA_VARIABLE, prometheus_config


def wait_until(check: Callable[[], object], timeout: float, what: str) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def prometheus_ready(base: str) -> bool:
    """Whether the Prometheus at `base` answers /-/ready (a refused connection: not yet)."""
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class Prometheus:
    def __init__(self, workdir: Path, exporters: dict[str, str] | str,
                 alertmanager: str | None = None) -> None:
        if isinstance(exporters, str):
            exporters = {"vaxjo": exporters}
        config = workdir / "prometheus.yml"
        config.write_text(prometheus_config(
            exporters, "1s", [alertmanager] if alertmanager else None))
        self.port = free_port()
        self.base = f"http://{LOOPBACK}:{self.port}"
        self.process = subprocess.Popen(
            [require("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'prometheus-data'}",
             f"--web.listen-address={LOOPBACK}:{self.port}", *PROMETHEUS_FLAGS],
            stdout=subprocess.DEVNULL, stderr=(workdir / "prometheus.log").open("wb"),
            env={**os.environ, REPLICA_VARIABLE: "test"},
        )
        try:
            wait_for_port(self.port, self.process)
            wait_until(lambda: prometheus_ready(self.base), 30, "Prometheus to be ready")
        except BaseException:
            stop(self.process)
            raise

    def api(self, path: str, **params: str) -> dict[str, Any]:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            data: dict[str, Any] = json.load(answer)["data"]
            return data

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("/api/v1/query", query=expr)["result"]
        return result

    def alerts(self, name: str, states: tuple[str, ...] = ("pending", "firing")
               ) -> list[dict[str, Any]]:
        return [a for a in self.api("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == name and a["state"] in states]

    def stop(self) -> None:
        stop(self.process)
