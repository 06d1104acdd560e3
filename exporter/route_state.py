"""Which way can a study go right now: the one place route state is computed.

From the latest probe results and their age, each hop (a configured target)
is up, down or unknown; each path is up when all its hops are up; a route
takes its primary path when it is up, else the first fallback that answers
the failed hop (`when_down`) and is up. A path with an unknown hop and no down hop
stops the search: we cannot tell whether the better path is open, so the
route is unknown rather than sent round a fallback it may not need. Stale
results count as unknown, never as up.

/metrics, the alert rules (through those metrics), the status page and
`dicom-exporter routes` all read `current()`, so they never disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.config import Config
from exporter.config.topology import PRIMARY_NAME, Route, RoutePath
from exporter.stats import Snapshot


class HopState(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class RouteStatus(enum.StrEnum):
    PRIMARY = "primary"
    FALLBACK = "fallback"
    NONE = "none"
    UNKNOWN = "unknown"


SWEDISH_STATE = {HopState.UP: "öppen", HopState.DOWN: "stängd", HopState.UNKNOWN: "okänd"}
SWEDISH_HOP = {HopState.UP: "upp", HopState.DOWN: "NERE", HopState.UNKNOWN: "okänd"}


@dataclass(frozen=True)
class PathState:
    path: RoutePath
    primary: bool
    state: HopState
    hops: tuple[tuple[str, HopState], ...]


@dataclass(frozen=True)
class RouteState:
    route: Route
    status: RouteStatus
    active: PathState | None
    paths: tuple[PathState, ...]

    @property
    def advice(self) -> str:
        """What to do now, short: the path's name ("skicka via Blekinge") or the last resort."""
        if self.status is RouteStatus.PRIMARY:
            return f"skicka {PRIMARY_NAME}"
        if self.status is RouteStatus.FALLBACK and self.active is not None:
            return self.active.path.name
        if self.status is RouteStatus.NONE:
            return f"ingen väg: {self.route.last_resort}" if self.route.last_resort else (
                "ingen väg")
        return "okänt: kontroller saknas eller är för gamla"

    @property
    def down_hops(self) -> tuple[str, ...]:
        return tuple(hop for hop, state in self.paths[0].hops if state is HopState.DOWN)


def hops_text(config: Config, path: PathState) -> str:
    """ "Z83680 upp → Z97117 NERE → SKANE_PACS upp": a path as people read it."""
    return " → ".join(
        f"{config.targets[hop].ae_title} {SWEDISH_HOP[state]}" for hop, state in path.hops
    )


def hop_states(config: Config, snapshot: Snapshot, now: float) -> dict[str, HopState]:
    """A target is up when every module's latest result is a fresh success."""
    states = {}
    for target in config.targets.values():
        results = [snapshot.series.get((target.name, m)) for m in target.modules]
        fresh = [
            s for s in results
            if s is not None and s.last_time and now - s.last_time <= config.results_max_age
        ]
        if any(not s.last_success for s in fresh):
            states[target.name] = HopState.DOWN
        elif len(fresh) == len(results):
            states[target.name] = HopState.UP
        else:
            states[target.name] = HopState.UNKNOWN
    return states


def _path_state(path: RoutePath, primary: bool, hops: Mapping[str, HopState]) -> PathState:
    states = tuple((hop, hops.get(hop, HopState.UNKNOWN)) for hop in path.hops)
    values = {state for _, state in states}
    if HopState.DOWN in values:
        state = HopState.DOWN
    elif HopState.UNKNOWN in values:
        state = HopState.UNKNOWN
    else:
        state = HopState.UP
    return PathState(path, primary, state, states)


def answers(path: RoutePath, down: set[str]) -> bool:
    """Does this fallback apply to the failed primary hops (the routine's "by failed hop")?"""
    return not path.when_down or bool(down & set(path.when_down))


def evaluate(route: Route, hops: Mapping[str, HopState]) -> RouteState:
    paths = tuple(
        _path_state(path, index == 0, hops) for index, path in enumerate(route.paths)
    )
    down = {hop for hop, state in paths[0].hops if state is HopState.DOWN}
    for path in paths:
        if not path.primary and not answers(path.path, down):
            continue
        if path.state is HopState.UP:
            status = RouteStatus.PRIMARY if path.primary else RouteStatus.FALLBACK
            return RouteState(route, status, path, paths)
        if path.state is HopState.UNKNOWN:
            return RouteState(route, RouteStatus.UNKNOWN, None, paths)
    return RouteState(route, RouteStatus.NONE, None, paths)


def current(config: Config, snapshot: Snapshot, now: float) -> list[RouteState]:
    hops = hop_states(config, snapshot, now)
    return [evaluate(route, hops) for route in config.routes.values()]
