"""Probe samples as a timeline of up, down and unknown time: pure, no I/O.

A raw `probe_success` sample says what one probe found; it stands for the
time until the next sample of its series. When the next sample is late by
more than one lost scrape (the exporter or Prometheus was down), the sample
stands for one probe interval only and the rest is unknown: a missing sample
is neither up nor down. Timelines of several series are merged per instant:
the modules of one target at one site with "all" (a target is up from a site
only if every reachability probe answers), the sites with "any" (the region
reaches a partner if at least one site does).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"

# A sample stands for the time to the next one if that comes within this many
# probe intervals: one lost scrape is not a gap, two are.
MAX_GAP_INTERVALS = 2.0


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    state: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


Timeline = list[Segment]


def interval(timestamps: Sequence[float]) -> float:
    """The series' probe interval: the median spacing of its samples."""
    gaps = [b - a for a, b in itertools.pairwise(timestamps) if b > a]
    return statistics.median(gaps) if gaps else 0.0


def from_samples(samples: Sequence[tuple[float, float]], start: float, end: float,
                 step: float | None = None) -> Timeline:
    """The timeline of one series over [start, end), from its (timestamp, value) samples.

    Samples may begin before `start` (the state at `start` is the last probe
    before it); value 1 is up, anything else down.
    """
    ordered = sorted(dict(samples).items())
    step = step if step is not None else interval([t for t, _ in ordered])
    longest = MAX_GAP_INTERVALS * step
    runs: Timeline = []  # one segment per run of equal, contiguous samples
    state, run_start, run_end = "", 0.0, 0.0
    for index, (t, value) in enumerate(ordered):
        following = ordered[index + 1][0] if index + 1 < len(ordered) else None
        until = following if following is not None and following - t <= longest else t + step
        now = UP if value == 1 else DOWN
        if now == state and t == run_end:
            run_end = until
            continue
        if state:
            runs.append(Segment(run_start, run_end, state))
        state, run_start, run_end = now, t, until
    if state:
        runs.append(Segment(run_start, run_end, state))
    return fill(runs, start, end)


def fill(segments: Iterable[Segment], start: float, end: float) -> Timeline:
    """Unknown wherever no segment covers [start, end); adjacent equal states joined."""
    out: Timeline = []
    cursor = start
    for segment in sorted(segments, key=lambda s: s.start):
        if segment.end <= cursor:
            continue
        if segment.start > cursor:
            _append(out, Segment(cursor, min(segment.start, end), UNKNOWN))
        begin = max(segment.start, cursor)
        if begin < end:
            _append(out, Segment(begin, min(segment.end, end), segment.state))
        cursor = max(cursor, segment.end)
        if cursor >= end:
            break
    if cursor < end:
        _append(out, Segment(cursor, end, UNKNOWN))
    return out


def _append(out: Timeline, segment: Segment) -> None:
    if segment.end <= segment.start:
        return
    if out and out[-1].state == segment.state and out[-1].end == segment.start:
        out[-1] = Segment(out[-1].start, segment.end, segment.state)
    else:
        out.append(segment)


def clip(timeline: Timeline, start: float, end: float) -> Timeline:
    out: Timeline = []
    for s in timeline:
        if s.end > start and s.start < end:
            _append(out, Segment(max(s.start, start), min(s.end, end), s.state))
    return out


def _state_at(timeline: Timeline, index: int, t: float) -> tuple[str, int]:
    while index < len(timeline) and timeline[index].end <= t:
        index += 1
    if index < len(timeline) and timeline[index].start <= t:
        return timeline[index].state, index
    return UNKNOWN, index


def combine(timelines: Sequence[Timeline], start: float, end: float, rule: str) -> Timeline:
    """Merge timelines per instant. rule "any": up if one is up, else down if one is
    down, else unknown. rule "all": down if one is down, else unknown if one is
    unknown, else up."""
    if not timelines:
        return [Segment(start, end, UNKNOWN)] if end > start else []
    cuts = sorted({start, end} | {t for tl in timelines for s in tl
                                  for t in (s.start, s.end) if start < t < end})
    positions = [0] * len(timelines)
    out: Timeline = []
    for a, b in itertools.pairwise(cuts):
        states = []
        for n, tl in enumerate(timelines):
            state, positions[n] = _state_at(tl, positions[n], a)
            states.append(state)
        if rule == "any":
            state = UP if UP in states else DOWN if DOWN in states else UNKNOWN
        else:
            state = DOWN if DOWN in states else UNKNOWN if UNKNOWN in states else UP
        _append(out, Segment(a, b, state))
    return out


def total(timeline: Timeline, state: str) -> float:
    return sum(s.seconds for s in timeline if s.state == state)


def ratio(timeline: Timeline) -> float | None:
    """Up time over known (up + down) time; None when nothing is known."""
    up, down = total(timeline, UP), total(timeline, DOWN)
    return up / (up + down) if up + down else None


@dataclass(frozen=True)
class Outage:
    start: float
    end: float
    began_before: bool  # the period started inside it
    lasts_beyond: bool  # the period ended inside it

    @property
    def seconds(self) -> float:
        return self.end - self.start


def outages(timeline: Timeline, start: float, end: float, longer_than: float) -> list[Outage]:
    """Runs of down time longer than `longer_than` (the role's `for:`).

    Unknown time ends a run: a gap is not known to be down. A run cut by the
    period's edge counts with its part inside the period and says so.
    """
    found = []
    for s in timeline:
        if s.state == DOWN and s.seconds > longer_than:
            found.append(Outage(s.start, s.end, s.start <= start, s.end >= end))
    return found
