"""What the on-call status page and /status.json say, built in one place.

For Arkivet staff and LARS on call, not Grafana users: each link computer and
partner in plain Swedish, each route's way right now, and for every fault the
routine's next step with its runbook. Hop and route states come from
routes.py, the same computation behind the route metrics and alerts, so the
page can never disagree with a page sent to an administrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config import Config, Target
from exporter.config.prober_kinds import KINDS
from exporter.config.topology import Route
from exporter.reasons import REGION_NAMES, ROUTINE, Reason
from exporter.route_state import (
    SWEDISH_STATE,
    HopState,
    RouteState,
    RouteStatus,
    evaluate,
    hop_states,
    hops_text,
)
from exporter.stats import Snapshot

STATE_TEXT = {HopState.UP: "upp", HopState.DOWN: "nere", HopState.UNKNOWN: "okänd"}
ROLE_TEXT = {"link_computer": "länkadator", "partner": "partnerregion", "relay": "relä"}
AE_REJECTIONS = {Reason.REJECTED_CALLING_AE, Reason.REJECTED_CALLED_AE}
RECEIVING_PROBERS = {kind.name for kind in KINDS.values() if kind.checks_receiving}


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


@dataclass(frozen=True)
class Fault:
    what: str
    next_step: str
    runbook: str  # alert name: /runbooks/<runbook>


@dataclass(frozen=True)
class OnCallStatus:
    generated_at: float
    targets: list[TargetStatus] = field(default_factory=list)
    receiving: list[ReceiveStatus] = field(default_factory=list)
    routes: list[RouteView] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)


def place(target: Target) -> str:
    if target.labels.get("role") == "link_computer":
        return target.ae_title
    return REGION_NAMES.get(target.labels.get("region", ""), target.name)


def site_name(config: Config, key: str) -> str:
    site = config.sites.get(key)
    return site.name if site else REGION_NAMES.get(key, key)


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
    reason_text = ROUTINE[reason].explanation if reason else ""
    name = place(target)
    role = target.labels.get("role")
    if target.labels.get("direction") == "receive":
        partner = config.targets.get(target.labels.get("partner", ""))
        who = place(partner) if partner else target.labels.get("partner", "")
        if reason in AE_REJECTIONS | {Reason.REJECTED_OTHER, Reason.NO_ACCEPTED_CONTEXT}:
            return Fault(
                f"{target.ae_title} tar inte emot DICOM från {who}. {reason_text}",
                f"Starta om länkadatorn och be dem skicka igen. Kontrollera att {who} finns "
                f"med rätt AE-titel i {target.ae_title}s konfiguration.",
                "ReceiverRejectsPartner",
            )
        return None  # a dead link computer is reported once, as itself
    if role == "link_computer":
        if target.ae_title == "Z83680":
            meanwhile = "Under tiden skickar Växjö undersökningar för Ljungby."
        else:
            meanwhile = "Under tiden skickar Ljungby via Blekinge, Halland eller Jönköping."
        return Fault(
            f"Länkadator {name} är ur funktion. {reason_text}",
            f"Starta om {target.ae_title} och prova igen. {meanwhile} Annars: bränn DVD på "
            "dator med Intellispace Portal i granskningen.",
            "DicomLinkComputerDown",
        )
    if reason in AE_REJECTIONS:
        return Fault(
            f"{name} avvisar vår DICOM-förbindelse. {reason_text}",
            "Kontakta mottagande enhet och jämför AE-titel, värdnamn och port på båda sidor.",
            "DicomPartnerRejectsAssociation",
        )
    prober = config.modules[module].prober if module and module in config.modules else ""
    if prober in RECEIVING_PROBERS:
        return Fault(
            f"{name} svarar men kan inte ta emot bilder. {reason_text}",
            "Kontakta mottagande enhet; skicka via annan region eller bränn DVD.",
            "DicomPartnerCannotReceive",
        )
    skane = " Skåne: prova att skicka via Blekinge eller Halland." if (
        target.labels.get("region") == "skane") else ""
    return Fault(
        f"DICOM till {name} fungerar inte. {reason_text}",
        "Kontakta mottagande enhet och fråga om de har störningar i DICOM-överföring."
        + skane,
        "DicomPartnerUnreachable",
    )


def route_title(config: Config, route: Route) -> str:
    """ "Ljungby → Skåne" """
    return f"{site_name(config, route.site)} → {place(config.targets[route.partner])}"


def _route_view(config: Config, state: RouteState) -> RouteView:
    route = state.route
    title = route_title(config, route)
    paths = [
        {
            "name": path.path.name,
            "state": SWEDISH_STATE[path.state],
            "hops": hops_text(config, path),
            "assumed": path.path.assumed,
            "active": "ja" if state.active is path else "",
        }
        for path in state.paths
    ]
    return RouteView(route.name, title, state.status.value, state.advice, paths)


def _no_route_faults(config: Config, states: list[RouteState]) -> list[Fault]:
    """One fault per site and last resort: "Växjö: ingen väg till Skåne, Blekinge"."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for state in states:
        if state.status is RouteStatus.NONE:
            route = state.route
            key = (route.site, route.last_resort)
            grouped.setdefault(key, []).append(place(config.targets[route.partner]))
    faults = []
    for (site, last_resort), partners in grouped.items():
        extra = ""
        if "Skåne" in partners:
            extra = (" Kan Region Skåne inte ta emot från någon annan region: remitterande "
                     "enhet överväger att skicka patienten till annan region.")
        faults.append(Fault(
            f"{site_name(config, site)}: ingen väg är öppen till {', '.join(partners)}.",
            f"{last_resort[:1].upper()}{last_resort[1:]}.{extra}",
            "NoRouteAvailable",
        ))
    return faults


def build(config: Config, snapshot: Snapshot, now: float) -> OnCallStatus:
    hops = hop_states(config, snapshot, now)
    status = OnCallStatus(generated_at=now)
    for target in config.targets.values():
        state = hops.get(target.name, HopState.UNKNOWN)
        _, reason = _latest_failure(target, snapshot)
        times = [s.last_time for m in target.modules
                 if (s := snapshot.series.get((target.name, m))) is not None and s.last_time]
        echo = snapshot.series.get((target.name, "echo"))
        if target.labels.get("direction") == "receive":
            partner = config.targets.get(target.labels.get("partner", ""))
            status.receiving.append(ReceiveStatus(
                target.ae_title, place(partner) if partner else target.name,
                STATE_TEXT[state], reason.value if reason and state is HopState.DOWN else "",
            ))
        else:
            status.targets.append(TargetStatus(
                name=target.name,
                title=place(target),
                ae_title=target.ae_title,
                role=ROLE_TEXT.get(target.labels.get("role", ""), ""),
                site=site_name(config, target.labels.get("site", "")),
                state=STATE_TEXT[state],
                checked_seconds_ago=round(now - max(times), 1) if times else None,
                echo_ms=round(echo.last_duration * 1000, 2)
                if echo is not None and echo.last_time and echo.last_success else None,
                reason=reason.value if reason and state is HopState.DOWN else "",
                reason_text=ROUTINE[reason].explanation
                if reason and state is HopState.DOWN else "",
            ))
        if state is HopState.DOWN:
            fault = _target_fault(config, target, snapshot)
            if fault is not None:
                status.faults.append(fault)
    states = [evaluate(route, hops) for route in config.routes.values()]
    status.routes.extend(_route_view(config, state) for state in states)
    # A route on a fallback is advice, shown with the route; no open path is a fault.
    status.faults.extend(_no_route_faults(config, states))
    return status
