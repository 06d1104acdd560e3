"""Raw samples from Prometheus' HTTP API, for the report: the only I/O of the report.

`query_range` resamples (one point per step, the last sample before it) and
caps the number of points, so an outage between two steps would vanish. The
report instead asks instant queries of day-long range vectors
(`probe_success{target="x"}[86401s]` at the end of each day), which return
every stored sample, and joins them. Ranges overlap by a second so that a
sample on a day's edge is never lost whichever way Prometheus closes the
range; duplicates are dropped by timestamp.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator

from exporter.availability.figures import Series
from exporter.metrics import PROBE_SUCCESS

DAY = 86400.0
# Samples this long before the period give the state at its first instant.
LOOKBACK = 300.0
TIMEOUT = 60.0


class PrometheusError(RuntimeError):
    """Prometheus cannot be reached or refused a query: one line for the user."""


class Client:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str, params: list[tuple[str, str]]) -> object:
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=TIMEOUT) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc).get("error", exc.reason)
            except (ValueError, AttributeError):
                detail = exc.reason
            raise PrometheusError(f"Prometheus at {self.url} refused {path}: {detail}") from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"cannot read Prometheus at {self.url}: {reason}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url} answered {path} with an error: "
                                  f"{body.get('error') if isinstance(body, dict) else body}")
        return body["data"]

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        data = self.get(f"/api/v1/label/{label}/values",
                        [("match[]", match), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")])
        return sorted(data) if isinstance(data, list) else []

    def raw(self, selector: str, start: float, end: float) -> list[Series]:
        """Every sample of `selector` with start <= timestamp < end, per series."""
        found: dict[frozenset[tuple[str, str]], dict[float, float]] = defaultdict(dict)
        for chunk_end, seconds in _chunks(start, end):
            data = self.get("/api/v1/query", [("query", f"{selector}[{seconds}s]"),
                                              ("time", f"{chunk_end:.3f}")])
            for item in data.get("result", []) if isinstance(data, dict) else []:
                samples = found[frozenset(item["metric"].items())]
                for t, value in item.get("values", []):
                    if start <= float(t) < end:
                        samples[float(t)] = float(value)
        return [Series(dict(labels), sorted(samples.items()))
                for labels, samples in found.items()]


def _chunks(start: float, end: float) -> Iterator[tuple[float, int]]:
    """(evaluation time, range in whole seconds) covering [start, end) a day at a time."""
    cursor = start
    while cursor < end:
        chunk_end = min(cursor + DAY, end)
        yield chunk_end, int(chunk_end - cursor) + 1
        cursor = chunk_end


def fetch(client: Client, probe_selector: str, start: float, end: float
          ) -> tuple[list[Series], list[Series]]:
    """The probe_success series (from LOOKBACK before the period) and the firing ALERTS."""
    begin = start - LOOKBACK
    match = f"{PROBE_SUCCESS}{{{probe_selector}}}"
    probes: list[Series] = []
    for target in client.label_values("target", match, begin, end):
        escaped = target.replace("\\", "\\\\").replace('"', '\\"')
        probes += client.raw(f'{PROBE_SUCCESS}{{{probe_selector}, target="{escaped}"}}',
                             begin, end)
    alerts = client.raw('ALERTS{alertstate="firing"}', begin, end)
    return probes, alerts
