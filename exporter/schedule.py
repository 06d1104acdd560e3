"""An optional built-in probe schedule, for when nothing scrapes /probe.

Prometheus normally drives the probes; the demo, the status page and a site
without Prometheus still want fresh results. Probes of one round are spread
evenly over the interval rather than fired at once, so a partner's PACS sees
a trickle, not a burst.
"""

from __future__ import annotations

import logging
import threading

from exporter.app import Exporter, UnknownProbe

logger = logging.getLogger("dicom_exporter.schedule")


class Scheduler:
    def __init__(self, exporter: Exporter, interval: float) -> None:
        self.exporter = exporter
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def _loop(self) -> None:
        while not self._stop.is_set():
            config = self.exporter.config
            pairs = [(t.name, m) for t in config.targets.values() for m in t.modules]
            gap = self.interval / max(len(pairs), 1)
            for target, module in pairs:
                if self._stop.is_set():
                    return
                # Each probe in its own thread: a silent peer must not delay the rest.
                threading.Thread(
                    target=self._probe, args=(target, module), daemon=True,
                    name=f"probe-{target}-{module}",
                ).start()
                self._stop.wait(gap)

    def _probe(self, target: str, module: str) -> None:
        try:
            self.exporter.probe(target, module)
        except UnknownProbe:  # removed by a reload since the round began
            pass
