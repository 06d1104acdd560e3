"""Route advice checked against the routine in every combination of hop states.

Every node of the Kronoberg example is up, down or unknown (3^8 = 6,561
states) and every route is evaluated in each. The expected answers are NOT
taken from the model: they come from a table written by hand from the routine
("Reservrutin bildöverföring till annan region", /runbooks/...txt), below,
which says for each failed hop which ways round it the routine gives:

- Z97117 ur funktion: "Ljungby skicka undersökningar via Blekinge, Halland
  eller Jönköping." (Växjö's studies too: our reading, the config's note.)
- Z83680 ur funktion: "Växjö skickar undersökningar." (Ljungby's routes.)
- Region Skåne kan inte ta emot: "prova skicka via Blekinge eller Halland."
- Every other partner that is down: no way round it in the routine.

A way round is open when every hop it uses is up and its destination is up,
except that Skåne's own relays (Blekinge, Halland) stand in for Skåne. With
several failed hops a way must be the routine's answer for each of them.
Where the destination is itself one of the listed relays, sending to it
directly comes first (issue 27). An unknown hop is either up or down: the
model must give a path only when that path is the answer whichever it is,
`none` only when no path opens whichever it is, and `unknown` otherwise.

The same states are rendered through the three readers of the model (the
route state behind /metrics, the CLI's route table, the status page's model)
and compared as structured data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from exporter import config as config_module
from exporter.cli import route_table
from exporter.config import Config
from exporter.config.topology import Route
from exporter.reasons import Reason
from exporter.route_state import HopState, RouteState, RouteStatus, current, evaluate
from exporter.stats import Series, Snapshot
from exporter.web import oncall

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yml")
                  if "\nroutes:" in p.read_text(encoding="utf-8"))
KRONOBERG = ROOT / "examples" / "kronoberg.yml"

UP, DOWN, UNKNOWN = HopState.UP, HopState.DOWN, HopState.UNKNOWN

# -- the routine, by hand ------------------------------------------------------
VAXJO_LINK, LJUNGBY_LINK = "z97117", "z83680"
LINKS = {VAXJO_LINK, LJUNGBY_LINK}
Z97117_RELAYS = {"blekinge", "halland", "jonkoping"}  # Rutin 1, Z97117, punkt 2
DESTINATION_RELAYS = {"skane": {"blekinge", "halland"}}  # Överföring till Region Skåne
NODES = ("z97117", "z83680", "skane", "blekinge", "ostergotland", "jonkoping",
         "vastragotland", "halland")


@dataclass(frozen=True)
class Way:
    """A configured path in the routine's terms: who sends, and to whom first."""

    name: str
    hops: tuple[str, ...]
    primary: bool

    @property
    def sender(self) -> str:
        return self.hops[0]

    @property
    def first_receiver(self) -> str:
        return self.hops[-1]


def routine_answers(route: Route, way: Way, failed: str) -> bool:
    """Does the routine give this way for the failure of this hop of the route?"""
    if way.primary:
        return False
    if failed == VAXJO_LINK:
        return way.hops == (LJUNGBY_LINK, way.first_receiver) and (
            way.first_receiver in Z97117_RELAYS)
    if failed == LJUNGBY_LINK:
        return route.site == "ljungby" and way.hops == (VAXJO_LINK, route.partner)
    if failed == route.partner:
        relays = DESTINATION_RELAYS.get(failed, set())
        return way.first_receiver in relays and set(way.hops[:-1]) <= LINKS
    return False


def is_direct(route: Route, way: Way) -> bool:
    return way.first_receiver == route.partner


def ways(route: Route) -> list[Way]:
    """The configured paths, primary first, then direct sends, then relays, each in the
    config's (the routine's) order."""
    fallbacks = [Way(p.name, p.hops, False) for p in route.fallbacks]
    return ([Way(route.primary.name, route.primary.hops, True)]
            + [w for w in fallbacks if is_direct(route, w)]
            + [w for w in fallbacks if not is_direct(route, w)])


def is_open(route: Route, way: Way, state: Mapping[str, HopState]) -> bool:
    """Open by the routine, in a state where every hop is known up or down."""
    failed = {hop for hop in route.primary.hops if state[hop] is DOWN}
    if way.primary:
        return not failed
    if not failed or not all(routine_answers(route, way, hop) for hop in failed):
        return False
    if any(state[hop] is not UP for hop in way.hops):
        return False
    destination_stands_in = route.partner in failed and way.first_receiver in (
        DESTINATION_RELAYS.get(route.partner, set()))
    return state[route.partner] is UP or destination_stands_in


def routine_answer(route: Route, state: Mapping[str, HopState]) -> str | None:
    """The first open way's name in a fully known state, None: no way open."""
    return next((w.name for w in ways(route) if is_open(route, w, state)), None)


# -- states ----------------------------------------------------------------------
def all_states(nodes: tuple[str, ...]) -> Iterable[dict[str, HopState]]:
    for combination in itertools.product((UP, DOWN, UNKNOWN), repeat=len(nodes)):
        yield dict(zip(nodes, combination, strict=True))


def completions(state: Mapping[str, HopState]) -> Iterable[dict[str, HopState]]:
    unknown = [hop for hop, s in state.items() if s is UNKNOWN]
    for values in itertools.product((UP, DOWN), repeat=len(unknown)):
        yield {**state, **dict(zip(unknown, values, strict=True))}


@dataclass(frozen=True)
class Expected:
    """What the routine says about a route in a state that may hold unknown hops."""

    answers: frozenset[str | None]  # the routine's answer in each completion

    @property
    def status(self) -> RouteStatus | None:
        """The status the model must give; None: any answer is a certain one."""
        if self.answers == {None}:
            return RouteStatus.NONE
        if len(self.answers) > 1:
            return RouteStatus.UNKNOWN
        return None  # primary or fallback, by name


def nodes_of(config: Config) -> tuple[str, ...]:
    hops = {hop for r in config.routes.values() for p in r.paths for hop in p.hops}
    return tuple(n for n in NODES if n in hops) + tuple(sorted(hops - set(NODES)))


def expectations(config: Config) -> dict[tuple[tuple[HopState, ...], str], Expected]:
    """The routine's expected answer per (state, route name)."""
    return expected_answers(nodes_of(config), list(config.routes.values()))


def expected_answers(nodes: tuple[str, ...], routes: list[Route]
                     ) -> dict[tuple[tuple[HopState, ...], str], Expected]:
    """The routine's expected answer per (state, route): an unknown hop is either up or
    down, so a state's answers are those of its two neighbours, down to known states."""
    out = {}
    for route in routes:
        @cache
        def answers(values: tuple[HopState, ...], route: Route = route) -> frozenset[str | None]:
            if UNKNOWN not in values:
                return frozenset({routine_answer(route, dict(zip(nodes, values, strict=True)))})
            index = values.index(UNKNOWN)
            return answers((*values[:index], UP, *values[index + 1:])) | answers(
                (*values[:index], DOWN, *values[index + 1:]))

        for values in itertools.product((UP, DOWN, UNKNOWN), repeat=len(nodes)):
            out[(values, route.name)] = Expected(answers(values))
    return out


# -- the invariants ------------------------------------------------------------
def check(route: Route, state: Mapping[str, HopState], result: RouteState,
          expected: Expected) -> list[str]:
    """Each invariant the routine gives, by name; an empty list: all hold."""
    problems = []
    failed = {hop for hop in route.primary.hops if state[hop] is DOWN}
    active = result.active.path if result.active is not None else None
    if result.status in (RouteStatus.PRIMARY, RouteStatus.FALLBACK):
        assert active is not None
        way = Way(active.name, active.hops, result.status is RouteStatus.PRIMARY)
        if any(state[hop] is DOWN for hop in active.hops):
            problems.append("via a hop that is down")
        if any(state[hop] is UNKNOWN for hop in active.hops):
            problems.append("unknown hop not said as unknown")
        relays = DESTINATION_RELAYS.get(route.partner, set())
        if state[route.partner] is DOWN and way.first_receiver not in relays:
            problems.append("to a destination that is down")
        if state[route.partner] is UNKNOWN and way.first_receiver not in relays:
            problems.append("to a destination that is unknown, not said as unknown")
        if result.status is RouteStatus.FALLBACK:
            if not failed:
                problems.append("fallback while nothing on the primary path failed")
            if not all(routine_answers(route, way, hop) for hop in failed):
                problems.append("fallback not the routine's for every failed hop")
            if route.partner == "skane" and state["skane"] is DOWN and (
                    way.first_receiver not in {"blekinge", "halland"}):
                problems.append("Skåne down relayed through other than Blekinge or Halland")
            known = UNKNOWN not in state.values()
            direct = known and any(is_direct(route, w) and is_open(route, w, state)
                                   for w in ways(route) if not w.primary)
            if direct and not is_direct(route, way):
                problems.append("relay advised where a direct send is open")
        if expected.answers != {active.name}:
            problems.append(f"path {active.name!r} where the routine gives "
                            f"{sorted(map(str, expected.answers))}")
    elif result.status is RouteStatus.NONE:
        if expected.status is not RouteStatus.NONE:
            problems.append("none while a path is open")
    elif expected.status is not RouteStatus.UNKNOWN:
        problems.append(f"unknown where the routine's answer is certain: "
                        f"{sorted(map(str, expected.answers))}")
    if expected.status is RouteStatus.NONE and result.status is not RouteStatus.NONE:
        problems.append("a path advised where none is open")
    return problems


def further_faults(values: tuple[HopState, ...]) -> Iterable[tuple[HopState, ...]]:
    """Each state with one more fault: one hop up -> unknown, or up/unknown -> down."""
    worse = {UP: (UNKNOWN, DOWN), UNKNOWN: (DOWN,), DOWN: ()}
    for index, value in enumerate(values):
        for other in worse[value]:
            yield (*values[:index], other, *values[index + 1:])


@dataclass
class Findings:
    """Invariant name -> count and one example, so a failure says what broke where."""

    seen: dict[str, tuple[int, str]]

    def add(self, name: str, example: str) -> None:
        count, first = self.seen.get(name, (0, example))
        self.seen[name] = (count + 1, first)

    def report(self) -> str:
        return "\n".join(f"{name}: {count} times, e.g. {example}"
                         for name, (count, example) in sorted(self.seen.items()))


def describe(nodes: tuple[str, ...], values: tuple[HopState, ...], route: str) -> str:
    bad = ", ".join(f"{n} {v.value}" for n, v in zip(nodes, values, strict=True) if v is not UP)
    return f"{route} with {bad or 'all up'}"


def exhaustive(nodes: tuple[str, ...], routes: list[Route]) -> Findings:
    """Every state of the nodes, every route: the invariants, and monotonicity."""
    findings = Findings({})
    expected = expected_answers(nodes, routes)
    for route in routes:
        results = {}
        for state in all_states(nodes):
            results[tuple(state[n] for n in nodes)] = (state, evaluate(route, state))
        for key, (state, result) in results.items():
            for problem in check(route, state, result, expected[(key, route.name)]):
                findings.add(problem, describe(nodes, key, route.name))
            if result.status is not RouteStatus.NONE:
                continue
            for worse in further_faults(key):
                if results[worse][1].status is not RouteStatus.NONE:
                    findings.add("a further fault opened a closed route (not monotonic)",
                                 f"{describe(nodes, key, route.name)} -> "
                                 f"{describe(nodes, worse, route.name)}")
    return findings


def test_every_state_of_every_route_gives_the_routines_answer() -> None:
    """Every example config's routes; a route written the same in two examples (the
    vantage-point configs repeat the region's) is the same value and is checked once."""
    distinct: dict[tuple[str, ...], list[Route]] = {}
    for example in EXAMPLES:
        config = config_module.load(example)
        routes = distinct.setdefault(nodes_of(config), [])
        routes += [r for r in config.routes.values() if r not in routes]
    assert sum(map(len, distinct.values())) >= 10
    findings = Findings({})
    for nodes, routes in distinct.items():
        for name, (count, example) in exhaustive(nodes, routes).seen.items():
            findings.seen[name] = (count, example)
    assert not findings.seen, "\n" + findings.report()


def test_the_config_carries_every_way_the_routine_gives() -> None:
    """Each single failure's ways round it, as the routine names them, are configured."""
    config = config_module.load(KRONOBERG)
    for route in config.routes.values():
        configured = ways(route)
        for failed in route.primary.hops:
            given = [w.first_receiver for w in configured
                     if routine_answers(route, w, failed)]
            if failed == VAXJO_LINK:
                assert set(given) == Z97117_RELAYS, (route.name, given)
            elif failed == LJUNGBY_LINK:
                assert given == [route.partner], (route.name, given)
            elif failed in DESTINATION_RELAYS:
                assert set(given) >= DESTINATION_RELAYS[failed], (route.name, given)


# -- the three readers agree, as data ---------------------------------------
NOW = 1_800_000_000.0


def reader_states(nodes: tuple[str, ...]) -> Iterable[dict[str, HopState]]:
    """Every state with at most three hops not up, and every seventh of the rest: the
    readers render the model's answer, so they need each kind of answer, not each state
    (the model itself is checked in every state above)."""
    for index, state in enumerate(all_states(nodes)):
        if sum(v is not UP for v in state.values()) <= 3 or index % 7 == 0:
            yield state


def snapshot_maker(config: Config) -> Callable[[Mapping[str, HopState]], Snapshot]:
    """Fresh results for up and down hops; none at all for unknown ones."""
    made = {
        (target.name, hop): {
            (target.name, module): Series(
                count=1, last_success=hop is UP, last_time=NOW - 5,
                last_reason=None if hop is UP else Reason.REFUSED, last_duration=0.002)
            for module in target.modules}
        for target in config.targets.values() for hop in (UP, DOWN)}

    def snapshot(state: Mapping[str, HopState]) -> Snapshot:
        series: dict[tuple[str, str], Series] = {}
        for target in config.targets.values():
            hop = state.get(target.name, UP)
            if hop is not UNKNOWN:
                series.update(made[(target.name, hop)])
        return Snapshot(series, True, NOW - 100, 0)

    return snapshot


def cli_answers(lines: list[str], titles: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Per route title: the CLI's headline and the starred path's line."""
    heads = {f"{title}: ": title for title in titles}
    out: dict[str, tuple[str, str | None]] = {}
    title = None
    for line in lines:
        head = next((h for h in heads if line.startswith(h)), None)
        if head is not None:
            title = heads[head]
            out[title] = (line[len(head):], None)
        elif title is not None and line.startswith("  * "):
            out[title] = (out[title][0], line[4:])
    return out


def test_route_state_cli_and_status_page_say_the_same() -> None:
    """/metrics' route state (`current()`, from probe results), the CLI's table and the
    status page's model, compared as data with each other and with the routine."""
    config = config_module.load(KRONOBERG)
    nodes = nodes_of(config)
    expected = expectations(config)
    snapshot = snapshot_maker(config)
    findings = Findings({})
    for state in reader_states(nodes):
        key = tuple(state[n] for n in nodes)
        taken = snapshot(state)
        states = current(config, taken, NOW)
        page = oncall.build(config, taken, NOW)
        views = {view.name: view for view in page.routes}
        cli = cli_answers(route_table(config, states), [v.title for v in page.routes])
        no_route = {f.what.split(":")[0] for f in page.faults if f.situation == "no_route"}
        for result in states:
            route = result.route
            view = views[route.name]
            want = expected[(key, route.name)]
            where = describe(nodes, key, route.name)
            for problem in check(route, state, result, want):
                findings.add(f"route state from probe results: {problem}", where)
            if view.status != result.status.value:
                findings.add("status page status differs from route state", where)
            if view.advice != result.advice:
                findings.add("status page advice differs from route state", where)
            active = [p["name"] for p in view.paths if p["active"]]
            name = result.active.path.name if result.active is not None else None
            if active != ([name] if name else []):
                findings.add("status page marks another path active", where)
            headline, starred = cli[view.title]
            if headline != result.advice:
                findings.add("CLI headline differs from route state", where)
            if (starred is None) != (name is None) or (
                    name is not None and starred is not None and not starred.startswith(name)):
                findings.add("CLI stars another path", where)
            if (want.status is RouteStatus.NONE) != (view.title in no_route):
                findings.add("no-route fault on the page exactly when no path opens", where)
            if result.status is RouteStatus.FALLBACK and name and (
                    f"Nu: {name}." not in view.next_step):
                findings.add("the page's next step does not name the advised path", where)
    assert not findings.seen, "\n" + findings.report()


def test_the_issues_cases_by_name() -> None:
    """Issue 27's done-when cases, spelled out."""
    config = config_module.load(KRONOBERG)
    everything_up = dict.fromkeys(nodes_of(config), UP)

    def advice(route: str, **down: HopState) -> RouteState:
        return evaluate(config.routes[route], {**everything_up, **down})

    # Blekinge and Z97117 down, either order (a state has no order): nothing through or to
    # Blekinge, and no route to Blekinge at all (NoRouteAvailable stays firing).
    both = {"blekinge": DOWN, "z97117": DOWN}
    for route in config.routes.values():
        result = advice(route.name, **both)
        if result.active is not None:
            assert "blekinge" not in result.active.path.hops, route.name
    assert advice("vaxjo-blekinge", **both).status is RouteStatus.NONE
    assert advice("ljungby-blekinge", **both).status is RouteStatus.NONE
    assert advice("vaxjo-blekinge", blekinge=DOWN).status is RouteStatus.NONE
    # Only Z97117 down: Växjö -> Jönköping goes by Ljungby straight to Jönköping.
    only = advice("vaxjo-jonkoping", z97117=DOWN)
    assert only.status is RouteStatus.FALLBACK
    assert only.active is not None and only.active.path.hops == ("z83680", "jonkoping")
    # Z97117, Skåne, Blekinge and Halland down: Skåne has no way left (not Jönköping).
    four = advice("ljungby-skane", z97117=DOWN, skane=DOWN, blekinge=DOWN, halland=DOWN)
    assert four.status is RouteStatus.NONE


def test_the_promtool_samples_carry_the_routines_answers() -> None:
    """The ~30 sampled multi-fault states in alerts/dicom.rules.test.yml (where promtool
    checks the alert texts as Prometheus renders them) hold the routine's answers."""
    import re

    import yaml

    config = config_module.load(KRONOBERG)
    cases = yaml.safe_load((ROOT / "alerts" / "dicom.rules.test.yml").read_text("utf-8"))
    sampled = [c for c in cases["tests"] if c["name"].startswith("routes with ")]
    assert len(sampled) >= 30
    for case in sampled:
        down = set(re.match(r"routes with (.*) down:", case["name"]).group(1).split(", "))
        state = {n: DOWN if n in down else UP for n in nodes_of(config)}
        active = {}
        for each in case["input_series"]:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', each["series"]))
            if each["series"].startswith("dicom_route_active{"):
                active[labels["route"]] = (labels["status"], labels["path"])
        for route in config.routes.values():
            answer = routine_answer(route, state)
            if answer is None:
                assert active[route.name] == ("none", route.last_resort), (down, route.name)
            elif answer == route.primary.name:
                assert active[route.name] == ("primary", answer), (down, route.name)
            else:
                assert active[route.name] == ("fallback", answer), (down, route.name)
        fired = {a["exp_labels"]["route"] for check in case["alert_rule_test"]
                 for a in check["exp_alerts"]}
        assert fired == {r for r, (status, _) in active.items() if status != "primary"}
