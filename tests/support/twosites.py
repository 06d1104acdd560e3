"""The two-site stack (tools/stack.py) for the slow tests: one way to start it as a
module fixture, and one way to read its Prometheus and Alertmanagers."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tools.stack import Stack, StackError


def running_stack(tmp_path_factory: pytest.TempPathFactory, name: str, interval: str,
                  **options: str | dict[str, bool]) -> Iterator[Stack]:
    """Yield a started stack and stop it afterwards; a stack that cannot start fails
    the test with the stack's own message (which program, which port, its log)."""
    try:
        running = Stack.start(interval, tmp_path_factory.mktemp(name), **options)  # type: ignore[arg-type]
    except StackError as exc:
        pytest.fail(str(exc))
    try:
        yield running
    finally:
        running.stop()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    result: list[dict[str, Any]] = get_json(url)["data"]["result"]
    return result


def cluster_formed(stack: Stack) -> bool:
    for site in stack.sites.values():
        status = get_json(f"{site.alertmanager_url}/api/v2/status")["cluster"]
        if status["status"] != "ready" or len(status["peers"]) != len(stack.sites):
            return False
    return True


def am_alerts(alertmanager_url: str, name: str, **labels: str) -> list[dict[str, Any]]:
    """The Alertmanager's active alerts called `name` whose labels include `labels`."""
    alerts = get_json(f"{alertmanager_url}/api/v2/alerts")
    return [a for a in alerts if a["labels"]["alertname"] == name
            and all(a["labels"].get(k) == v for k, v in labels.items())]
