"""The `routine:` section: a site's backup routine as data, so no site lives in code.

Region Kronoberg's routine ("Reservrutin bildöverföring till annan region")
names its link computers, its partner regions, the fallbacks per failed hop,
the troubleshooting order and who communicates what. Another region writes its
own routine here and gets the same alerts, status page and CLI. Every step is
either a verbatim quote of the routine (`quote:`) or our own advice (`own:`),
which is always shown marked "inte i rutinen": people on call must be able to
tell the governed document from the monitor's suggestions.

Steps are written once, by key, and situations list step keys in order; a
situation may differ per subject (a target or route name) with `default` for
the rest. The situations are fixed by the alerts (SITUATIONS below).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from exporter.config.strict import Checker

# What the on-call may face; each alert and status-page fault is one of these.
SITUATIONS = (
    "link_computer_down",      # subject: the link computer's target name
    "partner_unreachable",     # subject: the partner's target name
    "partner_rejects",         # the partner turns our AE title away
    "partner_cannot_receive",  # echo answers, negotiate/store fails
    "all_partners_failing",    # subject: our site
    "route_fallback",          # subject: route name; after the route's own advice
    "no_route",                # subject: the partner's target name
    "receiver_rejects",        # our link computer turns a partner away
    # By the hop that is down (subject: its target name), filled into the route
    # situations' lists where they name them (SLOTS), as the route's hops stand now.
    "restart",                 # the routine's first step for that fault
    "last_resort",             # what the routine says when no path is open
)
# A route situation's list may name one of these: the steps of that situation for the
# route's hops that are down, chosen when the text is shown (the alert, the status page).
SLOTS = ("restart", "last_resort")
ROUTE_SITUATIONS = ("route_fallback", "no_route")
DEFAULT = "default"
_TOP_KEYS = {"document", "regions", "networks", "causes", "link_computers", "roles", "steps",
             "ranking", "situations"}
_NETWORK_KEYS = {"ours", "wide"}
_CAUSE_KEYS = {"send", "receive"}
_STEP_KEYS = {"quote", "own", "when", "heading"}
_LINK_KEYS = {"send_cause", "receive_cause"}
_ROLE_KEYS = {"name", "contact"}


@dataclass(frozen=True)
class Step:
    text: str
    quote: bool  # True: the routine's own words, verbatim
    # Our own words for the condition a quote is used under where the situation
    # it is shown in has more causes than the routine's ("Om det är Skåne som
    # inte kan ta emot"); shown before it, marked as ours.
    when: str = ""
    # A heading of the routine's ("Driftstörning i överföring till Växjö/Ljungby ..."),
    # not a step: the steps after it are numbered from 1 under it, as the routine does.
    heading: bool = False
    # A slot (SLOTS) in a situation's list, not a step: `text` is the slot's name.
    slot: bool = False


@dataclass(frozen=True)
class LinkComputer:
    target: str
    send_cause: int  # "Problem med att skicka" number that names this computer
    receive_cause: int


@dataclass(frozen=True)
class Role:
    key: str
    name: str  # "Arkivet", "LARS (jouren)"
    contact: str  # how to reach them; a placeholder in the example


def _frozen(value: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(value)


@dataclass(frozen=True)
class Routine:
    document: str = ""
    regions: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    link_computers: Mapping[str, LinkComputer] = field(default_factory=lambda: _frozen({}))
    roles: Mapping[str, Role] = field(default_factory=lambda: _frozen({}))
    steps: Mapping[str, Step] = field(default_factory=lambda: _frozen({}))
    situations: Mapping[str, Mapping[str, tuple[str, ...]]] = field(
        default_factory=lambda: _frozen({}))
    # The routine's numbered causes, verbatim: "Problem med att skicka" 1-6 and
    # "Problem med att ta emot" 1-5 (exporter/reasons.py maps reasons to the numbers).
    send_causes: tuple[str, ...] = ()
    receive_causes: tuple[str, ...] = ()
    # Step keys of the routine's ranking of partner regions ("De viktigaste regionerna
    # är ..."), shown where the on-call reads about a partner.
    ranking: tuple[str, ...] = ()
    # Our own network and the shared one ("Region Kronobergs nätverk", "Sjunet"), as the
    # explanations of failure reasons name them; empty: the routine package's words.
    our_network: str = ""
    wide_network: str = ""

    def steps_for(self, situation: str, *subjects: str) -> tuple[Step, ...]:
        """The steps for a situation: the first subject that has its own list, else default."""
        table = self.situations.get(situation, {})
        for subject in subjects:
            if subject in table:
                return tuple(self._step(key) for key in table[subject])
        return tuple(self._step(key) for key in table.get(DEFAULT, ()))

    def _step(self, key: str) -> Step:
        return self.steps[key] if key in self.steps else Step(key, False, slot=True)

    def quotes(self) -> list[str]:
        return [step.text for step in self.steps.values() if step.quote] + [
            *self.send_causes, *self.receive_causes]


def _steps(check: Checker, raw: object) -> dict[str, Step]:
    steps = {}
    for key, body in check.mapping(raw, "routine.steps", None).items():
        path = f"routine.steps.{key}"
        entry = check.entry(str(key), body, path, _STEP_KEYS, "quote or own")
        if entry is None:
            continue
        kinds = [kind for kind in ("quote", "own") if kind in entry]
        if len(kinds) != 1:
            check.error(path, "needs exactly one of quote (the routine's words) or own")
            continue
        text = check.string(entry[kinds[0]], f"{path}.{kinds[0]}")
        when = check.string(entry["when"], f"{path}.when") if "when" in entry else ""
        heading = entry.get("heading", False)
        if not isinstance(heading, bool):
            check.error(f"{path}.heading", "must be true or false")
            heading = False
        if text is not None and when is not None:
            steps[str(key)] = Step(" ".join(text.split()), kinds[0] == "quote",
                                   " ".join(when.split()), heading)
    return steps


def _situations(
    check: Checker, raw: object, steps: Mapping[str, Step], subjects: set[str]
) -> dict[str, Mapping[str, tuple[str, ...]]]:
    out: dict[str, Mapping[str, tuple[str, ...]]] = {}
    for name, body in check.mapping(raw, "routine.situations", set(SITUATIONS)).items():
        table = {}
        for subject, keys in check.mapping(body, f"routine.situations.{name}", None).items():
            path = f"routine.situations.{name}.{subject}"
            if subject != DEFAULT and subject not in subjects:
                check.error(path, f"unknown subject {subject!r}: use default, a target, "
                                  "a route or a site")
            listed = check.string_list(keys, path)
            for index, key in enumerate(listed):
                if key in SLOTS and name in ROUTE_SITUATIONS:
                    continue
                if key not in steps:
                    check.error(f"{path}[{index}]", f"unknown step {key!r}")
            table[str(subject)] = tuple(listed)
        out[str(name)] = _frozen(table)
    return out


def _store_never_calls_as_a_link_computer(
    check: Checker, links: Mapping[str, LinkComputer], targets: Mapping[str, object],
    modules: Mapping[str, object],
) -> None:
    """Calling "as Z97117" is for echo and negotiate: a test object must never enter a
    partner's workflow as if the link computer had sent it."""
    titles = {getattr(targets[key], "ae_title", None) for key in links if key in targets}
    for name, module in modules.items():
        if getattr(module, "prober", "") == "store" and \
                getattr(module, "calling_ae_title", None) in titles:
            check.error(f"modules.{name}.calling_ae_title",
                        "a store module must not call with a link computer's AE title "
                        "(use it for echo and negotiate only)")


def parse_routine(
    check: Checker, raw: object, targets: Mapping[str, object], routes: Mapping[str, object],
    sites: Mapping[str, object], modules: Mapping[str, object] | None = None,
) -> Routine:
    if raw is None:
        return Routine()
    top = check.mapping(raw, "routine", _TOP_KEYS)
    document = ""
    if "document" in top:
        document = check.string(top["document"], "routine.document") or ""
    regions = {}
    for key, name in check.mapping(top.get("regions"), "routine.regions", None).items():
        text = check.string(name, f"routine.regions.{key}")
        if text is not None:
            regions[str(key)] = text
    links = {}
    for key, body in check.mapping(top.get("link_computers"), "routine.link_computers",
                                   None).items():
        path = f"routine.link_computers.{key}"
        entry = check.entry(str(key), body, path, _LINK_KEYS, "send_cause and receive_cause")
        if entry is None:
            continue
        if key not in targets:
            check.error(path, f"unknown target {key!r}")
        numbers = []
        for field_name, highest in (("send_cause", 6), ("receive_cause", 5)):
            value = entry.get(field_name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= highest:
                check.error(f"{path}.{field_name}", f"must be a cause number 1-{highest}")
                value = 0
            numbers.append(value)
        links[str(key)] = LinkComputer(str(key), numbers[0], numbers[1])
    roles = {}
    for key, body in check.mapping(top.get("roles"), "routine.roles", None).items():
        path = f"routine.roles.{key}"
        entry = check.entry(str(key), body, path, _ROLE_KEYS, "name and contact")
        if entry is None:
            continue
        name = check.string(entry.get("name"), f"{path}.name")
        contact = check.string(entry.get("contact"), f"{path}.contact")
        if name and contact:
            roles[str(key)] = Role(str(key), name, contact)
    cause_lists = check.mapping(top.get("causes"), "routine.causes", _CAUSE_KEYS)
    send, receive = (
        tuple(check.string_list(cause_lists[key], f"routine.causes.{key}"))
        if key in cause_lists else () for key in ("send", "receive"))
    for key, found, needed in (("send", send, 6), ("receive", receive, 5)):
        if key in cause_lists and len(found) != needed:
            check.error(f"routine.causes.{key}", f"the routine numbers {needed} causes, "
                                                 f"got {len(found)}")
    _store_never_calls_as_a_link_computer(check, links, targets, modules or {})
    steps = _steps(check, top.get("steps"))
    subjects = set(targets) | set(routes) | set(sites)
    situations = _situations(check, top.get("situations"), steps, subjects)
    ranking = tuple(check.string_list(top["ranking"], "routine.ranking")) \
        if "ranking" in top else ()
    for index, key in enumerate(ranking):
        if key not in steps:
            check.error(f"routine.ranking[{index}]", f"unknown step {key!r}")
    networks = check.mapping(top.get("networks"), "routine.networks", _NETWORK_KEYS)
    ours, wide = (check.string(networks[key], f"routine.networks.{key}") or ""
                  if key in networks else "" for key in ("ours", "wide"))
    return Routine(document, _frozen(regions), _frozen(links), _frozen(roles), _frozen(steps),
                   _frozen(situations), send, receive,
                   tuple(key for key in ranking if key in steps), ours, wide)
