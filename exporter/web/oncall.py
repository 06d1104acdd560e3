"""What the on-call status page and /status.json say, built in one place.

For Arkivet staff and LARS on call, not Grafana users: each link computer and
partner in plain Swedish, each route's way right now, and for every fault the
routine's next step with its runbook. Hop and route states come from
routes.py, the same computation behind the route metrics and alerts, so the
page can never disagree with a page sent to an administrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter import routine
from exporter.config import Config, Target
from exporter.config.topology import Route
from exporter.reasons import Reason
from exporter.route_state import (
    SWEDISH_HOP,
    SWEDISH_STATE,
    HopState,
    RouteState,
    RouteStatus,
    evaluate,
    hop_states,
    hops_text,
    route_hop_states,
)
from exporter.routine import Fault, place, site_name, words
from exporter.stats import Snapshot

# The state words of route_state, lower-case as /status.json has always carried them.
STATE_TEXT = {state: word.lower() for state, word in SWEDISH_HOP.items()}
ROLE_TEXT = words.ROLE


@dataclass(frozen=True)
class TargetStatus:
    name: str
    title: str  # "Z97117" or "Skåne"
    ae_title: str
    role: str
    site: str
    state: str  # upp | nere | okänd
    checked_seconds_ago: float | None
    echo_ms: float | None
    reason: str  # failure reason code, "" when none
    reason_text: str  # the reason in plain Swedish


@dataclass(frozen=True)
class ReceiveStatus:
    receiver: str  # AE title of our link computer
    partner: str  # as people say it
    state: str
    reason: str


@dataclass(frozen=True)
class RouteView:
    name: str
    title: str  # "Ljungby → Skåne"
    status: str  # primary | fallback | none | unknown
    advice: str  # "skicka via Blekinge", "ingen väg: bränn DVD ..."
    paths: list[dict[str, str]]
    next_step: str = ""  # what to do, as the route alert says it


@dataclass(frozen=True)
class OnCallStatus:
    generated_at: float
    targets: list[TargetStatus] = field(default_factory=list)
    receiving: list[ReceiveStatus] = field(default_factory=list)
    routes: list[RouteView] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    roles: list[tuple[str, str]] = field(default_factory=list)  # (name, contact) from routine
    ranking: str = ""  # the routine's ranking of the partner regions, quoted


def _latest_failure(target: Target, snapshot: Snapshot) -> tuple[str | None, Reason | None]:
    """The module and reason of a failed latest result, preferring echo."""
    failed = []
    for module in target.modules:
        series = snapshot.series.get((target.name, module))
        if series is not None and series.last_time and not series.last_success:
            failed.append((module, series.last_reason))
    failed.sort(key=lambda pair: pair[0] != "echo")
    return failed[0] if failed else (None, None)


def _target_fault(config: Config, target: Target, snapshot: Snapshot) -> Fault | None:
    module, reason = _latest_failure(target, snapshot)
    return routine.target_fault(config, target, module, reason)


def route_title(config: Config, route: Route) -> str:
    """ "Ljungby → Skåne" """
    return f"{site_name(config, route.site)} → {place(config, config.targets[route.partner])}"


def _route_view(config: Config, state: RouteState) -> RouteView:
    route = state.route
    title = route_title(config, route)
    paths = [
        {
            "name": path.path.name,
            "state": SWEDISH_STATE[path.state],
            "hops": hops_text(config, path),
            "assumed": path.path.assumed,
            "active": words.YES if state.active is path else "",
        }
        for path in state.paths
    ]
    next_step = ""
    if state.status is RouteStatus.FALLBACK and state.active is not None:
        next_step = routine.fallback_next_step(config, route, state.active.path,
                                               state.down_hops)
    elif state.status is RouteStatus.NONE:
        next_step = routine.no_route_next_step(config, route, state.down_hops)
    return RouteView(route.name, title, state.status.value, state.advice, paths, next_step)


def _no_route_faults(config: Config, states: list[RouteState]) -> list[Fault]:
    """One fault per route with no open path, with that route's steps."""
    return [
        Fault("no_route", f"{route_title(config, state.route)}: {words.NO_ROUTE_OPEN}",
              routine.no_route_next_step(config, state.route, state.down_hops),
              words.ALERT_FOR["no_route"])
        for state in states if state.status is RouteStatus.NONE
    ]


def build(config: Config, snapshot: Snapshot, now: float) -> OnCallStatus:
    hops = hop_states(config, snapshot, now)
    status = OnCallStatus(generated_at=now, roles=[
        (role.name, role.contact) for role in config.routine.roles.values()],
        ranking=routine.ranking(config))
    for target in config.targets.values():
        state = hops.get(target.name, HopState.UNKNOWN)
        _, reason = _latest_failure(target, snapshot)
        times = [s.last_time for m in target.modules
                 if (s := snapshot.series.get((target.name, m))) is not None and s.last_time]
        echo = snapshot.series.get((target.name, "echo"))
        if target.labels.get("direction") == "receive":
            partner = config.targets.get(target.labels.get("partner", ""))
            status.receiving.append(ReceiveStatus(
                target.ae_title, place(config, partner) if partner else target.name,
                STATE_TEXT[state], reason.value if reason and state is HopState.DOWN else "",
            ))
        else:
            status.targets.append(TargetStatus(
                name=target.name,
                title=place(config, target),
                ae_title=target.ae_title,
                role=ROLE_TEXT.get(target.labels.get("role", ""), ""),
                site=site_name(config, target.labels.get("site", "")),
                state=STATE_TEXT[state],
                checked_seconds_ago=round(now - max(times), 1) if times else None,
                echo_ms=round(echo.last_duration * 1000, 2)
                if echo is not None and echo.last_time and echo.last_success else None,
                reason=reason.value if reason and state is HopState.DOWN else "",
                reason_text=routine.explanation(reason, config=config)
                if reason and state is HopState.DOWN else "",
            ))
        if state is HopState.DOWN:
            fault = _target_fault(config, target, snapshot)
            if fault is not None:
                status.faults.append(fault)
    route_hops = route_hop_states(config, snapshot, now)
    states = [evaluate(route, route_hops) for route in config.routes.values()]
    status.routes.extend(_route_view(config, state) for state in states)
    # A route on a fallback is advice, shown with the route; no open path is a fault.
    status.faults.extend(_no_route_faults(config, states))
    return status
