"""The `sites:` and `routes:` sections: which way a study goes, and the ways around.

A route is one (our site, partner) pair: the primary path as an ordered list
of hops (configured targets), ordered named fallbacks, and the last resort
that needs no network (the routine's DVD). A hop we cannot probe from our
side, such as a relay region's onward link, is written down as `assumed`,
never invented as a target.

The routine gives different fallbacks for different failures: when Skåne
itself cannot receive, "prova skicka via Blekinge eller Halland"; when Z97117
is down, Ljungby sends "via Blekinge, Halland eller Jönköping". So a fallback
names the primary hops whose failure it answers (`when_down`); a fallback
without it answers any failure. `note` says how we read the routine where it
is not literal (shown with the advice, marked as ours).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.config.strict import Checker, brief, shown

PRIMARY_NAME = "ordinarie väg"
# No default last resort: what a site does without a network path (Kronoberg: a DVD)
# is its routine's, written in its config.
DEFAULT_LAST_RESORT = ""
_SITE_KEYS = {"name"}
_ROUTE_KEYS = {"site", "partner", "primary", "fallbacks", "last_resort"}
_PATH_KEYS = {"name", "path", "assumed", "when_down", "note"}


@dataclass(frozen=True)
class Site:
    key: str
    name: str  # as people say it: "Växjö"


@dataclass(frozen=True)
class RoutePath:
    name: str
    hops: tuple[str, ...]
    assumed: str = ""  # a leg nobody here can probe, e.g. "Blekinge skickar vidare till Skåne"
    when_down: tuple[str, ...] = ()  # primary hops whose failure this fallback answers
    note: str = ""  # how the routine is read here, when it is not literal


@dataclass(frozen=True)
class Way:
    """A path with what it depends on, worked out once from the config."""

    path: RoutePath
    primary: bool
    shown: tuple[str, ...]  # its hops, and the destination a relay forwards to
    stands_in: frozenset[str]  # the primary hops it replaces (all of them: the primary)
    needed: tuple[str, ...]  # the hops that must be up for it to carry a study


@dataclass(frozen=True)
class Route:
    name: str
    site: str
    partner: str
    primary: RoutePath
    fallbacks: tuple[RoutePath, ...]
    last_resort: str

    @property
    def paths(self) -> tuple[RoutePath, ...]:
        return (self.primary, *self.fallbacks)

    def stands_in(self, path: RoutePath) -> frozenset[str]:
        """The primary hops a fallback replaces: its `when_down`, or, without one, the
        primary hops it does not use; never the destination unless `when_down` says so."""
        if path.when_down:
            return frozenset(path.when_down)
        return frozenset(self.primary.hops) - set(path.hops) - {self.partner}

    @functools.cached_property
    def ways(self) -> tuple[Way, ...]:
        """Primary first, then direct sends to the destination, then relays, each in the
        config's (the routine's) order: where the destination is itself one of the
        listed relays (Z97117 down: "via Blekinge, Halland eller Jönköping", for a study
        to Jönköping), sending to it directly comes first.

        A fallback depends on its own hops and on the primary hops it does not replace,
        the destination included: a relay forwards to it.
        """
        direct = [p for p in self.fallbacks if p.hops[-1] == self.partner]
        relays = [p for p in self.fallbacks if p.hops[-1] != self.partner]
        out = [Way(self.primary, True, self.primary.hops, frozenset(self.primary.hops),
                   self.primary.hops)]
        for path in (*direct, *relays):
            shown = path.hops if path.hops[-1] == self.partner else (*path.hops, self.partner)
            stands_in = self.stands_in(path)
            needed = (set(path.hops) | set(self.primary.hops)) - stands_in
            out.append(Way(path, False, shown, stands_in, tuple(sorted(needed))))
        return tuple(out)


def parse_sites(check: Checker, raw: object) -> dict[str, Site]:
    sites = {}
    for key, body in check.mapping(raw, "sites", None).items():
        path = f"sites.{key}"
        entry = check.entry(str(key), body, path, _SITE_KEYS, "name")
        if entry is None:
            continue
        name = check.string(entry.get("name"), f"{path}.name")
        if name is not None:
            sites[str(key)] = Site(str(key), name)
    return sites


def _hops(check: Checker, raw: object, path: str, targets: Mapping[str, object]) -> tuple[str, ...]:
    hops = check.string_list(raw, path)
    seen = set()
    for index, hop in enumerate(hops):
        if hop not in targets:
            check.error(f"{path}[{index}]", f"unknown target {brief(hop)}")
        if hop in seen:
            check.error(f"{path}[{index}]", f"visits {brief(hop)} twice: a path must not loop")
        seen.add(hop)
    return tuple(hops)


def _route(
    check: Checker, name: str, body: dict[str, Any], sites: Mapping[str, Site],
    targets: Mapping[str, object],
) -> Route | None:
    path = f"routes.{name}"
    for key in ("site", "partner", "primary"):
        if key not in body:
            check.error(f"{path}.{key}", "missing required field")
    site = check.string(body.get("site"), f"{path}.site") if "site" in body else None
    if site is not None and site not in sites:
        check.error(f"{path}.site",
                    f"unknown site {brief(site)} (sites: {', '.join(sites) or '-'})")
    partner = check.string(body.get("partner"), f"{path}.partner") if "partner" in body else None
    if partner is not None and partner not in targets:
        check.error(f"{path}.partner", f"unknown target {brief(partner)}")
    primary = _hops(check, body.get("primary"), f"{path}.primary", targets)
    fallbacks = []
    raw_fallbacks = body.get("fallbacks", [])
    if not isinstance(raw_fallbacks, list):
        check.error(f"{path}.fallbacks", f"must be a list, got {shown(raw_fallbacks)}")
        raw_fallbacks = []
    names = {PRIMARY_NAME}
    for index, raw in enumerate(raw_fallbacks):
        where = f"{path}.fallbacks[{index}]"
        entry = check.mapping(raw, where, _PATH_KEYS)
        if not isinstance(raw, dict):
            if raw is None:
                check.error(where, "must be a mapping with name and path")
            continue
        label = check.string(entry.get("name"), f"{where}.name")
        if label is not None and label in names:
            check.error(f"{where}.name", f"{brief(label)} is used twice in this route")
        names.add(label or "")
        hops = _hops(check, entry.get("path"), f"{where}.path", targets)
        assumed = ""
        if "assumed" in entry:
            assumed = check.string(entry["assumed"], f"{where}.assumed") or ""
        when_down: tuple[str, ...] = ()
        if "when_down" in entry:
            when_down = tuple(check.string_list(entry["when_down"], f"{where}.when_down"))
            for index2, hop in enumerate(when_down):
                if hop not in primary:
                    check.error(f"{where}.when_down[{index2}]",
                                f"{hop!r} is not a hop of the primary path")
                elif hop in hops:
                    check.error(f"{where}.when_down[{index2}]",
                                f"{hop!r} is on this fallback's own path: a fallback cannot "
                                "go through the hop it replaces")
        note = ""
        if "note" in entry:
            note = check.string(entry["note"], f"{where}.note") or ""
        if label is not None and hops:
            fallbacks.append(RoutePath(label, hops, assumed, when_down, note))
    last_resort = DEFAULT_LAST_RESORT
    if "last_resort" in body:
        last_resort = check.string(body["last_resort"], f"{path}.last_resort") or last_resort
    if site is None or partner is None or not primary:
        return None
    return Route(name, site, partner, RoutePath(PRIMARY_NAME, primary), tuple(fallbacks),
                 last_resort)


def parse_routes(
    check: Checker, raw: object, sites: Mapping[str, Site], targets: Mapping[str, object]
) -> dict[str, Route]:
    routes = {}
    for key, body in check.mapping(raw, "routes", None).items():
        entry = check.entry(str(key), body, f"routes.{key}", _ROUTE_KEYS,
                            "site, partner and primary")
        if entry is None:
            continue
        route = _route(check, str(key), entry, sites, targets)
        if route is not None:
            routes[route.name] = route
    return routes
