"""An optional built-in probe schedule, for when nothing scrapes /probe.

Prometheus normally drives the probes; the demo, the status page and a site
without Prometheus still want fresh results. Probes of one round are spread
evenly over the interval rather than fired at once, so a partner's PACS sees
a trickle, not a burst.

The footprint is fixed, whatever the number of targets: one dispatcher
thread keeps every due probe in a queue (a heap by due time, at most one
entry per pair), and a fixed number of worker threads (`workers`) run them.
A probe that waits — for its turn, or for a free slot in the probe limits —
waits in that queue, never in a thread of its own.

A probe that cannot run in its turn is skipped, and a skip is logged and
counted by why, never silent: `still_running` (its previous probe has not
ended), `late` (the workers were all busy until its next turn: a round that
overruns its interval; logged once a round) and `overloaded` (the probe limits stayed full until
then). A round completes when each of its probes has run or been skipped;
the time of the last completed round is a metric, so a schedule that stops
is an alert, not a silence. A worker or the dispatcher that cannot start,
or dies of a bug, calls `on_death`: the CLI then exits non-zero, so systemd
restarts the exporter.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.app import Exporter, Overloaded, UnknownProbe
from exporter.metrics import schedule_state, scheduled_skips

logger = logging.getLogger("dicom_exporter.schedule")
RETRY = 0.5  # how soon a probe refused by the limits asks again
DEFAULT_WORKERS = 16


class SchedulerDied(RuntimeError):
    """The schedule cannot go on (a thread could not start, or died of a bug)."""


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread, started: a worker still waiting on a silent peer never delays exit."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


@dataclass(eq=False)
class _Turn:
    target: str
    module: str
    next_turn: float  # monotonic: past this, the probe's turn is over
    round: int
    retry: bool = False  # back in the queue after the probe limits refused it


class Scheduler(Collector):
    def __init__(self, exporter: Exporter, interval: float, workers: int = DEFAULT_WORKERS,
                 on_death: Callable[[str], None] | None = None) -> None:
        self.exporter = exporter
        self.interval = interval
        self.workers = workers
        self.on_death = on_death
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._due: list[tuple[float, int, _Turn]] = []  # (monotonic due, order, turn)
        self._order = itertools.count()
        self._ready: deque[_Turn] = deque()  # due now, for the next free worker
        self._busy: set[tuple[str, str]] = set()  # queued or running
        self._rounds: dict[int, int] = {}  # round -> its probes not yet run or skipped
        self._late: Counter[int] = Counter()  # round -> probes skipped as late
        self._round = 0
        self.last_round = 0.0  # Unix time the last round completed
        self.skipped: Counter[tuple[str, str, str]] = Counter()
        self.threads: list[threading.Thread] = []
        self.dead: str | None = None

    def start(self) -> None:
        """Start the dispatcher and the workers; SchedulerDied if one cannot start."""
        self.exporter.runtime.register(self)
        self.last_round = time.time()  # the start counts: no stall alert before round one ends
        try:
            self.threads.append(start_thread(self._guarded(self._dispatch), "schedule"))
            for index in range(self.workers):
                self.threads.append(start_thread(self._guarded(self._work),
                                                 f"schedule-{index + 1}"))
        except RuntimeError as exc:  # "can't start new thread": a task limit
            self._died(f"cannot start a schedule thread: {exc}")
            raise SchedulerDied(str(exc)) from exc

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        deadline = time.monotonic() + 1  # workers inside a probe end with it (daemons)
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts = dict(self.skipped)
            last, queued = self.last_round, len(self._ready) + len(self._due)
        yield scheduled_skips(counts)
        yield from schedule_state(self.interval, last, queued)

    # -- threads ---------------------------------------------------------------
    def _guarded(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # a bug: the schedule must not stop silently
                if not self._stop.is_set():
                    logger.exception("schedule thread died")
                    self._died(f"{threading.current_thread().name}: {exc!r}")
        return run

    def _died(self, why: str) -> None:
        self.dead = why
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        logger.error("scheduled probing stopped", extra={"fields": {"error": why}})
        if self.on_death is not None:
            self.on_death(why)

    def _dispatch(self) -> None:
        next_round = time.monotonic()
        with self._lock:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_round:
                    self._begin_round(now)
                    next_round = now + self.interval
                while self._due and self._due[0][0] <= now:
                    _, _, turn = heapq.heappop(self._due)
                    pair = (turn.target, turn.module)
                    if not turn.retry and pair in self._busy:
                        self._skip(turn, "still_running",
                                   "the previous probe of this pair is still running")
                        continue
                    self._busy.add(pair)
                    self._ready.append(turn)
                    self._lock.notify()
                wake = min(next_round, self._due[0][0]) if self._due else next_round
                self._lock.wait(max(0.0, wake - time.monotonic()))

    def _begin_round(self, now: float) -> None:
        """Queue every configured pair, spread evenly over the interval (holding the lock)."""
        config = self.exporter.config
        pairs = [(t.name, m) for t in config.targets.values() for m in t.modules]
        self._round += 1
        self._rounds[self._round] = len(pairs)
        if not pairs:
            self._round_done(self._round)
            return
        gap = self.interval / len(pairs)
        for index, (target, module) in enumerate(pairs):
            due = now + index * gap
            turn = _Turn(target, module, due + self.interval, self._round)
            heapq.heappush(self._due, (due, next(self._order), turn))

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._ready and not self._stop.is_set():
                    self._lock.wait()
                if self._stop.is_set():
                    return
                turn = self._ready.popleft()
            self._run(turn)

    def _run(self, turn: _Turn) -> None:
        if time.monotonic() >= turn.next_turn:
            with self._lock:  # counted each, logged once a round (see _round_done)
                self.skipped[(turn.target, turn.module, "late")] += 1
                self._late[turn.round] += 1
                self._finished(turn)
            return
        try:
            self.exporter.probe(turn.target, turn.module)
        except Overloaded as exc:
            with self._lock:
                if time.monotonic() + RETRY >= turn.next_turn:
                    self._skip(turn, "overloaded", str(exc))
                    self._finished(turn)
                else:  # back in the queue, not asleep in this thread
                    turn.retry = True
                    heapq.heappush(self._due, (time.monotonic() + RETRY, next(self._order),
                                               turn))
                    self._lock.notify_all()
            return
        except UnknownProbe:  # removed by a reload since the round began
            pass
        except Exception:  # a prober bug costs this probe a log line, not the schedule
            logger.exception("scheduled probe failed", extra={"fields": {
                "target": turn.target, "module": turn.module}})
        with self._lock:
            self._finished(turn)

    # -- bookkeeping (holding the lock) ----------------------------------------
    def _finished(self, turn: _Turn) -> None:
        self._busy.discard((turn.target, turn.module))
        self._round_done(turn.round)

    def _round_done(self, number: int) -> None:
        left = self._rounds.get(number, 0) - 1
        if left > 0:
            self._rounds[number] = left
            return
        self._rounds.pop(number, None)
        self.last_round = time.time()
        late = self._late.pop(number, 0)
        if late:
            logger.warning("schedule round overran its interval", extra={"fields": {
                "skipped_late": late, "workers": self.workers,
                "interval_seconds": self.interval}})

    def _skip(self, turn: _Turn, reason: str, detail: str) -> None:
        self.skipped[(turn.target, turn.module, reason)] += 1
        if reason == "still_running":  # this round's turn of the pair is over at once
            self._round_done(turn.round)
        logger.warning("scheduled probe skipped", extra={"fields": {
            "target": turn.target, "module": turn.module, "reason": reason,
            "detail": detail}})
