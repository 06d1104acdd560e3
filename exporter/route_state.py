"""Which way can a study go right now: the one place route state is computed.

From the latest probe results and their age, each hop (a configured target)
is up, down or unknown. A route takes its primary path while every hop of it
is up. When a hop of the primary path is down, a fallback can be taken only
if the routine gives it for every failed hop (`when_down`: the intersection,
for several faults at once), and every other hop it depends on is up: its own
hops, the primary hops it does not replace and the destination, which a relay
forwards to. Only a fallback that replaces the destination itself (Skåne's
relays Blekinge and Halland) may be taken while the destination is down.
Direct sends to the destination are tried before relays through other
regions, whatever their order in the config.

A path with an unknown hop it depends on stops the search: we cannot tell
whether it is open, so the route is unknown rather than sent round a fallback
it may not need. Stale results count as unknown, never as up; so does a
partner that turns away only our monitor's own calling AE title (the real
transfer, with the link computer's AE title, may work: the routine asks to
contact the other side first, which DicomPartnerRejectsAssociation says).
The model is monotonic: a further fault never opens a path that was closed.

/metrics, the alert rules (through those metrics), the status page and
`dicom-exporter routes` all read `current()`, so they never disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from exporter.config import Config, Target
from exporter.config.topology import PRIMARY_NAME, Route, RoutePath, Way
from exporter.reasons import Reason
from exporter.routine import own, words
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


# The words for a path's and a hop's state, from the routine package.
SWEDISH_STATE = {state: words.PATH_STATE[state.value] for state in HopState}
SWEDISH_HOP = {state: words.HOP_STATE[state.value] for state in HopState}


class PathState(NamedTuple):
    """A path's state now; a named tuple because every route state makes several."""

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
        """What to do now, short: the path's name ("skicka via Blekinge") or the last
        resort, the config's words, marked as ours (the next step quotes the routine)."""
        if self.status is RouteStatus.PRIMARY:
            return f"{words.SEND} {PRIMARY_NAME}"
        if self.status is RouteStatus.FALLBACK and self.active is not None:
            return self.active.path.name
        if self.status is RouteStatus.NONE:
            return f"{words.NO_ROUTE}: {own(self.route.last_resort)}" if self.route.last_resort \
                else words.NO_ROUTE
        return words.ROUTE_UNKNOWN

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


def monitor_only_rejection(config: Config, target: Target, module: str,
                           reason: Reason | None) -> bool:
    """Did this failure turn away only our monitor's own calling AE title?

    A module that calls as a link computer (its AE title) is the real transfer's
    caller: its rejection is the transfer's, and the hop is down.
    """
    if reason is not Reason.REJECTED_CALLING_AE or module not in config.modules:
        return False
    calling = target.probe_calling_ae or config.modules[module].calling_ae_title
    return calling not in {config.targets[key].ae_title
                           for key in config.routine.link_computers if key in config.targets}


def _rejects_only_the_monitor(config: Config, snapshot: Snapshot, now: float,
                              target: Target) -> bool:
    failures = [
        (module, series.last_reason) for module in target.modules
        if (series := snapshot.series.get((target.name, module))) is not None
        and series.last_time and not series.last_success
        and now - series.last_time <= config.results_max_age
    ]
    return bool(failures) and all(
        monitor_only_rejection(config, target, module, reason) for module, reason in failures)


def route_hop_states(config: Config, snapshot: Snapshot, now: float) -> dict[str, HopState]:
    """Hop states as routes read them: a monitor-only AE rejection is unknown, not down."""
    states = hop_states(config, snapshot, now)
    for name, state in states.items():
        target = config.targets[name]
        if state is HopState.DOWN and target.labels.get("role") != "link_computer" and (
                _rejects_only_the_monitor(config, snapshot, now, target)):
            states[name] = HopState.UNKNOWN
    return states


def _path_state(way: Way, hops: Mapping[str, HopState], failed: frozenset[str]
                ) -> PathState:
    get = hops.get
    states = tuple([(hop, get(hop, HopState.UNKNOWN)) for hop in way.shown])
    if not failed <= way.stands_in:  # not the routine's way round every failed hop
        return PathState(way.path, way.primary, HopState.DOWN, states)
    needed = {get(hop, HopState.UNKNOWN) for hop in way.needed}
    state = (HopState.DOWN if HopState.DOWN in needed
             else HopState.UNKNOWN if HopState.UNKNOWN in needed else HopState.UP)
    return PathState(way.path, way.primary, state, states)


def evaluate(route: Route, hops: Mapping[str, HopState]) -> RouteState:
    failed = frozenset([h for h in route.primary.hops
                        if hops.get(h, HopState.UNKNOWN) is HopState.DOWN])
    paths = tuple([_path_state(way, hops, failed) for way in route.ways])
    for path in paths:
        if path.state is HopState.UP:
            status = RouteStatus.PRIMARY if path.primary else RouteStatus.FALLBACK
            return RouteState(route, status, path, paths)
        if path.state is HopState.UNKNOWN:
            return RouteState(route, RouteStatus.UNKNOWN, None, paths)
    return RouteState(route, RouteStatus.NONE, None, paths)


def current(config: Config, snapshot: Snapshot, now: float) -> list[RouteState]:
    hops = route_hop_states(config, snapshot, now)
    return [evaluate(route, hops) for route in config.routes.values()]
