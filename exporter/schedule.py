"""An optional built-in probe schedule, for when nothing scrapes /probe.

Prometheus normally drives the probes; the demo, the status page and a site
without Prometheus still want fresh results. Probes of one round are spread
evenly over the interval rather than fired at once, so a partner's PACS sees
a trickle, not a burst.

A probe refused by the probe limits (say, receive-side checks that share a
silent link computer's host and port) waits for a free slot until its next
turn, rather than being dropped; only then is it skipped, and a skip is
logged and counted, never silent. A pair whose previous probe still runs is
not started twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.app import Exporter, Overloaded, UnknownProbe
from exporter.metrics import scheduled_skips

logger = logging.getLogger("dicom_exporter.schedule")
RETRY = 0.5  # how often a probe refused by the limits asks again


class Scheduler(Collector):
    def __init__(self, exporter: Exporter, interval: float) -> None:
        self.exporter = exporter
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedule", daemon=True)
        self._lock = threading.Lock()
        self._running: set[tuple[str, str]] = set()
        self.skipped: Counter[tuple[str, str, str]] = Counter()

    def start(self) -> None:
        self.exporter.runtime.register(self)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts = dict(self.skipped)
        yield scheduled_skips(counts)

    def _loop(self) -> None:
        while not self._stop.is_set():
            config = self.exporter.config
            pairs = [(t.name, m) for t in config.targets.values() for m in t.modules]
            if not pairs:  # nothing to probe: wait a round, do not spin
                self._stop.wait(self.interval)
                continue
            gap = self.interval / len(pairs)
            for target, module in pairs:
                if self._stop.is_set():
                    return
                with self._lock:
                    busy = (target, module) in self._running
                    if not busy:
                        self._running.add((target, module))
                if busy:
                    self._skip(target, module, "still_running",
                               "the previous probe of this pair is still running")
                else:
                    # Each probe in its own thread: a silent peer must not delay the rest.
                    threading.Thread(
                        target=self._probe,
                        args=(target, module, time.monotonic() + self.interval),
                        daemon=True, name=f"probe-{target}-{module}",
                    ).start()
                self._stop.wait(gap)

    def _probe(self, target: str, module: str, next_turn: float) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.exporter.probe(target, module)
                    return
                except Overloaded as exc:
                    if time.monotonic() + RETRY >= next_turn:
                        self._skip(target, module, "overloaded", str(exc))
                        return
                    self._stop.wait(RETRY)
                except UnknownProbe:  # removed by a reload since the round began
                    return
        finally:
            with self._lock:
                self._running.discard((target, module))

    def _skip(self, target: str, module: str, reason: str, detail: str) -> None:
        with self._lock:
            self.skipped[(target, module, reason)] += 1
        logger.warning("scheduled probe skipped", extra={"fields": {
            "target": target, "module": module, "reason": reason, "detail": detail}})
