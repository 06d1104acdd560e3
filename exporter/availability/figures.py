"""The monthly report's figures from raw probe samples and ALERTS: pure, no I/O.

Per link computer and partner: availability from at least one site (the
SLO's view: what the region experiences) and from each site, outages (runs
of down time longer than the role's `for:`), their total and longest
downtime, the mean time to restore, the store success rate and the alerts
that were firing. Unknown time (no samples) is counted apart, never as up or
down.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.availability import timeline as tl
from exporter.config.prober_kinds import KINDS

REACHABILITY = frozenset(k.name for k in KINDS.values() if k.answers_reachability)
STORE = "store"
ROLES = ("link_computer", "partner", "relay")


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]]  # (unix seconds, value)


@dataclass(frozen=True)
class View:
    """One timeline's figures: the target from at least one site, or from one site."""
    timeline: tl.Timeline
    up_seconds: float
    down_seconds: float
    unknown_seconds: float
    availability: float | None  # up / (up + down)
    outages: list[tl.Outage]

    @property
    def downtime_seconds(self) -> float:
        return sum(o.seconds for o in self.outages)

    @property
    def longest_seconds(self) -> float:
        return max((o.seconds for o in self.outages), default=0.0)

    @property
    def mttr_seconds(self) -> float | None:
        """Mean duration of the outages that began and ended inside the period."""
        whole = [o.seconds for o in self.outages if not (o.began_before or o.lasts_beyond)]
        return sum(whole) / len(whole) if whole else None


@dataclass(frozen=True)
class AlertRun:
    alertname: str
    labels: Mapping[str, str]
    start: float
    end: float
    began_before: bool
    lasts_beyond: bool


@dataclass(frozen=True)
class TargetFigures:
    target: str
    role: str
    ae_title: str
    region: str
    for_seconds: float
    overall: View
    sites: dict[str, View]
    store_success: float | None
    alerts: list[AlertRun] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    start: float
    end: float
    targets: list[TargetFigures]
    other_alerts: list[AlertRun]


def view(timeline: tl.Timeline, start: float, end: float, for_seconds: float) -> View:
    return View(timeline, tl.total(timeline, tl.UP), tl.total(timeline, tl.DOWN),
                tl.total(timeline, tl.UNKNOWN), tl.ratio(timeline),
                tl.outages(timeline, start, end, for_seconds))


def _reachability(labels: Mapping[str, str]) -> bool:
    return labels.get("prober") in REACHABILITY and labels.get("direction") != "receive"


def target_figures(target: str, series: Sequence[Series], start: float, end: float,
                   for_by_role: Mapping[str, float]) -> TargetFigures | None:
    """The figures of one target from all its probe_success series (every site, module)."""
    reach = [s for s in series if _reachability(s.labels)]
    if not reach:
        return None
    first = reach[0].labels
    role = first.get("role", "")
    for_seconds = for_by_role.get(role, 0.0)
    per_site: dict[str, list[tl.Timeline]] = defaultdict(list)
    for s in reach:
        per_site[s.labels.get("site", "")].append(tl.from_samples(s.samples, start, end))
    site_lines = {site: tl.combine(lines, start, end, "all")
                  for site, lines in sorted(per_site.items())}
    overall = tl.combine(list(site_lines.values()), start, end, "any")
    store_lines = [tl.from_samples(s.samples, start, end) for s in series
                   if s.labels.get("prober") == STORE and s.labels.get("direction") != "receive"]
    up = sum(tl.total(line, tl.UP) for line in store_lines)
    down = sum(tl.total(line, tl.DOWN) for line in store_lines)
    return TargetFigures(
        target=target, role=role, ae_title=first.get("ae_title", ""),
        region=first.get("region", ""), for_seconds=for_seconds,
        overall=view(overall, start, end, for_seconds),
        sites={site: view(line, start, end, for_seconds) for site, line in site_lines.items()},
        store_success=up / (up + down) if up + down else None,
    )


def alert_runs(series: Sequence[Series], start: float, end: float) -> list[AlertRun]:
    """Firing periods from ALERTS{alertstate="firing"} samples, cut to the period."""
    runs = []
    for s in series:
        labels = {k: v for k, v in s.labels.items()
                  if k not in ("__name__", "alertstate")}
        line = tl.from_samples(s.samples, start, end)
        for segment in line:
            if segment.state == tl.UP:  # ALERTS is 1 while firing
                runs.append(AlertRun(labels.get("alertname", ""), labels, segment.start,
                                     segment.end, segment.start <= start, segment.end >= end))
    return sorted(runs, key=lambda r: (r.start, r.alertname))


def build(probes: Sequence[Series], alerts: Sequence[Series], start: float, end: float,
          for_by_role: Mapping[str, float]) -> Report:
    by_target: dict[str, list[Series]] = defaultdict(list)
    for s in probes:
        by_target[s.labels.get("target", "")].append(s)
    targets = []
    for name, series in by_target.items():
        figures = target_figures(name, series, start, end, for_by_role)
        if figures is not None and figures.role in ROLES:
            targets.append(figures)
    role_order = {role: n for n, role in enumerate(ROLES)}
    targets.sort(key=lambda f: (role_order[f.role], f.target))
    runs = alert_runs(alerts, start, end)
    names = {f.target for f in targets}
    other = [r for r in runs if r.labels.get("target") not in names]
    for f in targets:
        f.alerts.extend(r for r in runs if r.labels.get("target") == f.target)
    return Report(start, end, targets, other)
