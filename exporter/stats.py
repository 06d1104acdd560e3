"""Running totals and the latest result per (target, module).

Written by every probe, read by /metrics and, through `latest`, by anything
that needs the current state of a target. Plain numbers behind one lock: at
hundreds of targets this is far lighter than a client_python child per label
set, and a snapshot is consistent across all series.

Every change stamps the series with a new version, so /metrics can copy and
re-render only the series that changed since its last page (`changes_since`)
instead of all of them: at 5,000 targets a full copy alone costs tens of
milliseconds of interpreter time that a probe's clock would otherwise share.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field

from exporter.config import Config
from exporter.reasons import Reason

# Latency buckets from a loopback echo (half a millisecond) up to a timeout.
BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


@dataclass
class Series:
    count: int = 0
    failures: dict[Reason, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    duration_sum: float = 0.0
    last_success: bool = False
    last_time: float = 0.0  # Unix time of the latest result, 0 before the first
    last_reason: Reason | None = None
    last_duration: float = 0.0
    version: int = 0  # Stats-wide change counter at this series' latest change
    started: float = 0.0  # monotonic start of the probe whose result is the latest
    # Probes in the duration histogram: all but the store repeats, whose
    # microseconds are no peer's latency (issue 28).
    timed: int = 0


@dataclass(frozen=True)
class Snapshot:
    series: dict[tuple[str, str], Series]
    reload_ok: bool
    reload_time: float
    in_flight: int


@dataclass(frozen=True)
class Changes:
    """What changed since a version: copies of the changed series only."""

    version: int  # pass back to the next changes_since
    generation: int  # bumped by every configured(): the set of pairs may differ
    keys: frozenset[tuple[str, str]]  # every counted pair right now
    changed: dict[tuple[str, str], Series]
    reload_ok: bool
    reload_time: float
    in_flight: int
    modules: dict[str, Series]  # per module, over every probe since start (copies)


def _copy(series: Series) -> Series:
    # Field by field: dataclasses.replace costs ten times as much, under the lock.
    return Series(series.count, dict(series.failures), list(series.buckets),
                  series.duration_sum, series.last_success, series.last_time,
                  series.last_reason, series.last_duration, series.version, series.started,
                  series.timed)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], Series] = {}
        # The last reload of each file: the probe config and the web config.
        self._reload_ok = True
        self._web_reload_ok = True
        self._reload_time = 0.0
        self._in_flight = 0
        self._version = 0
        self._generation = 0
        # The reload owner's config generation: results of probes started under
        # an older one are about a config that no longer runs.
        self._config_generation = 0
        self._gauges = 0  # moves on when a reload gauge changes
        self._keys: frozenset[tuple[str, str]] = frozenset()
        # Pair -> version of its latest change, oldest first: changes_since reads
        # from the newest end and stops at the first older one.
        self._recent: dict[tuple[str, str], int] = {}
        # Per module, every probe since start (pairs removed by a reload stay counted).
        self._modules: dict[str, Series] = {}

    def configured(self, config: Config, generation: int = 0) -> None:
        """Start counting every configured pair at zero and drop removed ones.

        Counters that exist from the start make rate() and increase() right
        from the first failure instead of missing it. `generation`: the
        config's, from the reload owner (see `finished`).
        """
        wanted = {(t.name, m) for t in config.targets.values() for m in t.modules}
        with self._lock:
            for key in list(self._series):
                if key not in wanted:
                    del self._series[key]
                    self._recent.pop(key, None)
            for key in wanted:
                if key not in self._series:
                    self._version += 1
                    self._series[key] = Series(version=self._version)
                    self._recent[key] = self._version
            self._generation += 1
            self._config_generation = max(self._config_generation, generation)
            self._keys = frozenset(self._series)
            self._reload_ok = True
            self._reload_time = time.time()

    def reload_failed(self) -> None:
        with self._lock:
            self._reload_ok = False
            self._gauges += 1

    @property
    def _reloads_ok(self) -> bool:
        """What the reload gauge says: the last reload of each file succeeded."""
        return self._reload_ok and self._web_reload_ok

    def web_reloaded(self, ok: bool) -> None:
        """The web config's last reload: a bad one must drop the reload gauge
        too, or a certificate rotation that fails goes unnoticed until it expires."""
        with self._lock:
            self._web_reload_ok = ok
            self._gauges += 1

    @property
    def version(self) -> tuple[int, int, int]:
        """Moves on with every recorded result and every reload: equal, nothing changed."""
        return self._version, self._generation, self._gauges

    def dropped(self) -> None:
        """A started probe that has nothing to record (cut short by our own shutdown)."""
        with self._lock:
            self._in_flight -= 1

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def finished(
        self, target: str, module: str, success: bool, reason: Reason | None, duration: float,
        generation: int | None = None, started: float | None = None, repeat: bool = False,
    ) -> bool:
        """Record a probe's result; False when it was dropped (and only logged).

        A `repeat` (a store result from memory) counts but stays out of the
        duration histogram.

        Results only move forward: a probe started under an older config
        generation (`generation`) than the running one reports about a config
        that no longer runs (a target since pointed elsewhere) and is dropped,
        and one started (`started`, monotonic) before the probe whose result
        is recorded counts but does not replace it.
        """
        with self._lock:
            self._in_flight -= 1
            series = self._series.get((target, module))
            if series is None:  # removed by a reload while the probe ran
                return False
            if generation is not None and generation < self._config_generation:
                return False
            series.count += 1
            if not success and reason is not None:
                series.failures[reason] = series.failures.get(reason, 0) + 1
            index = bisect.bisect_left(BUCKETS, duration)
            total = self._modules.get(module)
            if total is None:
                total = self._modules[module] = Series()
            total.count += 1
            for each in (series, total):
                if repeat:
                    continue
                each.timed += 1
                if index < len(BUCKETS):
                    each.buckets[index] += 1
                each.duration_sum += duration
            if started is not None and started < series.started:
                newest = False
            else:
                newest = True
                series.started = started or 0.0
                series.last_success = success
                series.last_reason = reason
                series.last_time = time.time()
                series.last_duration = duration
            self._version += 1
            series.version = self._version
            self._recent.pop((target, module), None)
            self._recent[(target, module)] = self._version
            return newest

    def snapshot(self) -> Snapshot:
        with self._lock:
            series = {key: _copy(s) for key, s in self._series.items()}
            return Snapshot(series, self._reloads_ok, self._reload_time, self._in_flight)

    def changes_since(self, version: int) -> Changes:
        """Copies of the series changed after `version` (all of them for version 0)."""
        with self._lock:
            changed = {}
            for key, at in reversed(self._recent.items()):
                if at <= version:
                    break
                changed[key] = _copy(self._series[key])
            modules = {name: _copy(total) for name, total in self._modules.items()}
            return Changes(self._version, self._generation, self._keys, changed,
                           self._reloads_ok, self._reload_time, self._in_flight, modules)
