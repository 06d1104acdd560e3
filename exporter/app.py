"""The running exporter: the current config, the statistics, and probing.

The HTTP server, the CLI and the demo all go through this one object, so a
probe is counted, logged and limited to configured targets the same way
whoever asked for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, gc_collector, platform_collector, process_collector

from exporter import probers
from exporter.config import Config
from exporter.live import Live
from exporter.metrics import ExporterCollector
from exporter.probers.memory import ProberState, StoreMemory
from exporter.probers.report import ProbeReport
from exporter.probers.store import store_key
from exporter.reasons import Reason
from exporter.stats import Stats

logger = logging.getLogger("dicom_exporter")
# Subtracted from Prometheus' scrape timeout so the answer arrives in time,
# as blackbox_exporter's --timeout-offset does; below twice the offset, half
# the scrape timeout is kept instead, so the budget never jumps as it grows.
SCRAPE_TIMEOUT_OFFSET = 0.5


class UnknownProbe(LookupError):
    """A /probe request for something not in the config: nothing is sent."""


class Overloaded(RuntimeError):
    """Too many probes at once: refuse rather than overload a partner's PACS."""

    def __init__(self, message: str, per_target: bool) -> None:
        super().__init__(message)
        self.per_target = per_target


DEFAULT_MAX_CONCURRENT = 64
DEFAULT_MAX_PER_TARGET = 4


class ProbeLimits:
    """Probes running at once, overall and per target host and port."""

    def __init__(self, total: int = DEFAULT_MAX_CONCURRENT,
                 per_target: int = DEFAULT_MAX_PER_TARGET) -> None:
        self.total, self.per_target = total, per_target
        self._lock = threading.Lock()
        self._running = 0
        self._by_peer: dict[tuple[str, int], int] = {}

    def acquire(self, peer: tuple[str, int]) -> None:
        with self._lock:
            if self._running >= self.total:
                raise Overloaded(f"{self.total} probes already running", per_target=False)
            if self._by_peer.get(peer, 0) >= self.per_target:
                raise Overloaded(
                    f"{self.per_target} probes of {peer[0]}:{peer[1]} already running",
                    per_target=True)
            self._running += 1
            self._by_peer[peer] = self._by_peer.get(peer, 0) + 1

    def release(self, peer: tuple[str, int]) -> None:
        with self._lock:
            self._running -= 1
            left = self._by_peer[peer] - 1
            if left:
                self._by_peer[peer] = left
            else:
                del self._by_peer[peer]


class Exporter:
    def __init__(self, config: Config, config_path: str | None = None,
                 limits: ProbeLimits | None = None, store_state_file: str | None = None) -> None:
        self.limits = limits or ProbeLimits()
        self.stats = Stats()
        # What probes keep between them (open associations, the store memory,
        # kept in `store_state_file` across restarts when one is given).
        self.prober_state = ProberState(store=StoreMemory(store_state_file))
        self.prober_state.store.keep_only(_store_keys(config))
        # The one owner of the running config and web config, and of their reloads.
        self.live = Live(config, config_path, self.stats, self._follow)
        runtime = CollectorRegistry(auto_describe=False)
        process_collector.ProcessCollector(registry=runtime)
        platform_collector.PlatformCollector(registry=runtime)
        gc_collector.GCCollector(registry=runtime)
        # Collectors beside the exporter's own state (process, runtime, the schedule's
        # skips): page() appends them. /metrics serves self.metrics.page(); the
        # registry holds the same series for tests and tools.
        self.runtime = runtime
        self.metrics = ExporterCollector(self.stats, lambda: self.live.current.config, runtime)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.metrics)

    @property
    def config(self) -> Config:
        return self.live.current.config

    @property
    def config_path(self) -> str | None:
        return self.live.config_path

    def reload(self) -> str | None:
        """Load the files again (see `Live.reload`); on any problem keep the running config.

        Returns None on success, else the problems, one per line.
        """
        return self.live.reload()

    def _follow(self, config: Config) -> None:
        """After a reload: the store memory keeps only peers the new config stores to."""
        self.prober_state.store.keep_only(_store_keys(config))

    def abort_all(self) -> int:
        """Send an A-ABORT to every peer in an association now: for SIGTERM."""
        return self.prober_state.associations.abort_all()

    def wait_idle(self, timeout: float) -> bool:
        """After abort_all: let the woken probes finish and answer, within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.stats.snapshot().in_flight > 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def timeout_for(self, module_timeout: float, scrape_timeout: float | None) -> float:
        if scrape_timeout is None or scrape_timeout <= 0:
            return module_timeout
        budget = scrape_timeout - min(SCRAPE_TIMEOUT_OFFSET, scrape_timeout / 2)
        return min(module_timeout, budget)

    def probe(
        self, target_name: str, module_name: str, scrape_timeout: float | None = None,
        deferred: list[Callable[[], None]] | None = None, log: bool = False,
    ) -> ProbeReport:
        current = self.live.current  # the generation this probe runs under
        config = current.config
        target = config.targets.get(target_name)
        if target is None:
            raise UnknownProbe(f"unknown target {target_name!r}")
        module = config.modules.get(module_name)
        if module is None:
            raise UnknownProbe(f"unknown module {module_name!r}")
        if module_name not in target.modules:
            raise UnknownProbe(
                f"module {module_name!r} is not configured for target {target_name!r}"
            )
        # Per peer, not per target name: z97117 and z97117.from.skane are one host.
        peer = (target.host, target.port)
        self.limits.acquire(peer)
        self.stats.started()
        started = time.monotonic()
        try:
            report = probers.run(target, module, self.timeout_for(module.timeout, scrape_timeout),
                                 self.prober_state, deferred, log)
        except BaseException:  # interrupted (shutdown): keep in_flight right
            self.stats.finished(target.name, module.name, False, None, 0.0,
                                current.generation, started)
            raise
        finally:
            self.limits.release(peer)
        if report.reason is Reason.SHUTDOWN:  # our own doing: says nothing of the peer
            self.stats.dropped()
            recorded = True
        else:
            repeat = report.result_age is not None
            recorded = self.stats.finished(
                target.name, module.name, report.success, report.reason, report.duration,
                current.generation, started, repeat=repeat)
        if not recorded:
            logger.info("probe result not recorded: a newer config or result is in place",
                        extra={"fields": {"target": target.name, "module": module.name,
                                          "generation": current.generation,
                                          "success": report.success}})
        if not report.success and self.prober_state.associations.shutting_down:
            logger.info("probe interrupted by shutdown", extra={"fields": {
                "target": target.name, "module": module.name}})
        elif not report.success:
            logger.warning(
                "probe failed",
                extra={"fields": {
                    "target": target.name, "module": module.name,
                    "reason": report.reason.value if report.reason else "",
                    "ae_title": target.ae_title, "detail": report.detail,
                    "duration_seconds": f"{report.duration:.6f}",
                    **({"repeat_of_store_seconds_ago": f"{report.result_age or 0.0:.0f}"}
                       if repeat else {}),
                }},
            )
        return report


def _store_keys(config: Config) -> set[Any]:
    """The peers the store probes of `config` write to, keyed as the store memory is."""
    keys = set()
    for target in config.targets.values():
        for name in target.modules:
            module = config.modules[name]
            if module.prober == "store" and module.sop_classes:
                keys.add(store_key(target, module))
    return keys
