"""Reading the two-site stack (tools/stack.py): Prometheus queries, the Alertmanager cluster."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from tools.stack import Stack


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def query(prometheus_url: str, expr: str) -> list[dict]:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    return get_json(url)["data"]["result"]  # type: ignore[index]


def cluster_formed(stack: Stack) -> bool:
    for site in stack.sites.values():
        status = get_json(f"{site.alertmanager_url}/api/v2/status")["cluster"]  # type: ignore
        if status["status"] != "ready" or len(status["peers"]) != len(stack.sites):
            return False
    return True
