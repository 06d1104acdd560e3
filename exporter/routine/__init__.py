"""Every sentence people read about a fault, rendered in one place from the routine model.

The status page, the CLI and the alert annotations (exporter/monitoring/rules.py renders
these functions' output into the rules at build time) all call this module,
so the same state gives the same next step everywhere. The words themselves
come from the config's `routine:` section (site specifics) and
exporter/reasons.py (what a failure reason means); quotes of the routine are
shown in quotation marks and our own additions are marked "inte i rutinen".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from exporter.config import Config, Target
from exporter.config.prober_kinds import KINDS
from exporter.config.routine_model import SLOTS, Step
from exporter.config.topology import Route, RoutePath
from exporter.reasons import PHASED, ROUTINE, Reason, causes
from exporter.routine import words

OWN = words.OWN
ALERT_FOR = words.ALERT_FOR
AE_REJECTIONS = frozenset({Reason.REJECTED_CALLING_AE, Reason.REJECTED_CALLED_AE})
RECEIVER_REFUSALS = AE_REJECTIONS | {Reason.REJECTED_OTHER, Reason.NO_ACCEPTED_CONTEXT}
RECEIVING_PROBERS = frozenset(k.name for k in KINDS.values() if k.checks_receiving)

def step_text(step: Step) -> str:
    """A quote in quotation marks, verbatim; our own words marked as ours, and so
    the condition we put before a quote. A heading ends with a colon."""
    if step.heading:
        body = step.text.rstrip(".:")
        return f"”{body}”:" if step.quote else f"{body} ({OWN}):"
    text = f"”{step.text}”" if step.quote else own(step.text)
    return f"{step.when} ({OWN}): {text}" if step.when else text


def sections(steps: tuple[Step, ...]) -> list[tuple[Step | None, list[Step]]]:
    """The steps under each heading (None: before the first), numbered from 1 under
    each, as the routine numbers "Problem med att skicka" and its two Rutin parts."""
    out: list[tuple[Step | None, list[Step]]] = [(None, [])]
    for step in steps:
        if step.heading:
            out.append((step, []))
        else:
            out[-1][1].append(step)
    return [(heading, items) for heading, items in out if heading is not None or items]


def numbered(steps: tuple[Step, ...], slots: Mapping[str, str] | None = None) -> str:
    """One line: "1. … 2. …", numbered from 1 under each heading; a slot is its text
    in `slots` (a step that names nothing is left out)."""
    parts = []
    for heading, items in sections(steps):
        if heading is not None:
            parts.append(step_text(heading))
        texts = [(slots or {}).get(step.text, "") if step.slot else step_text(step)
                 for step in items]
        parts += [f"{index}. {text}" for index, text in enumerate(filter(None, texts), 1)]
    return " ".join(parts)


def own(text: str) -> str:
    """ "Vår text (inte i rutinen)." """
    body = text[:-1] if text.endswith(".") else text
    return f"{body} ({OWN})."


def region_name(config: Config, key: str) -> str:
    return config.routine.regions.get(key, key)


def site_name(config: Config, key: str) -> str:
    site = config.sites.get(key)
    return site.name if site else region_name(config, key)


def place(config: Config, target: Target) -> str:
    """ "Z97117" for a link computer, "Skåne" for a partner, as people say it."""
    if target.labels.get("role") == "link_computer":
        return target.ae_title
    return config.routine.regions.get(target.labels.get("region", ""), target.name)


def next_step(config: Config, situation: str, *subjects: str) -> str:
    """The numbered steps of a situation for the first subject that has its own (a
    slot, not knowing what is down, as its default)."""
    defaults = {slot: slot_text(config.routine.steps_for(slot)) for slot in SLOTS}
    return numbered(config.routine.steps_for(situation, *subjects), defaults)


# -- by the hops that are down ---------------------------------------------------
def slot_steps(config: Config, slot: str, route: Route, down: Collection[str]) -> tuple[Step, ...]:
    """A slot's steps for the route's hops that are down, in the route's order (a
    dead Z97117 gives the routine's DVD sentence for Z97117, Skåne not receiving gives
    Skåne's); the slot's default when none of them has its own."""
    table = config.routine.situations.get(slot, {})
    found: dict[str, Step] = {}
    for hop in route.primary.hops:
        if hop in down and hop in table:
            found.update((key, config.routine.steps[key]) for key in table[hop])
    return tuple(found.values()) or config.routine.steps_for(slot)


def slot_text(steps: tuple[Step, ...]) -> str:
    return " ".join(step_text(step) for step in steps)


def slot_cases(config: Config, slot: str, route: Route) -> tuple[list[tuple[str, str]], str]:
    """For the alert rules, which learn what is down when they fire: (hop, its text)
    for each of the route's hops that has its own steps, in order, and the default."""
    table = config.routine.situations.get(slot, {})
    cases = [(hop, slot_text(tuple(config.routine.steps[key] for key in table[hop])))
             for hop in route.primary.hops if hop in table]
    return cases, slot_text(config.routine.steps_for(slot))


def route_slots(config: Config, route: Route, down: Collection[str]) -> dict[str, str]:
    return {slot: slot_text(slot_steps(config, slot, route, down)) for slot in SLOTS}


def last_resort(config: Config, route: Route, down: Collection[str]) -> str:
    """What the routine says when no path of the route is open, for what is down."""
    return route_slots(config, route, down)["last_resort"]


def ranking(config: Config) -> str:
    """The routine's ranking of the partner regions, in its own words."""
    return " ".join(step_text(config.routine.steps[key]) for key in config.routine.ranking)


def explanation(reason: Reason, phase: str | None = None, config: Config | None = None) -> str:
    """What a failure reason means, with the config's names of the networks."""
    text = PHASED.get((reason, phase or ""), ROUTINE[reason]).explanation
    routine_model = config.routine if config is not None else None
    ours = routine_model.our_network if routine_model and routine_model.our_network else (
        words.OUR_NETWORK)
    wide = routine_model.wide_network if routine_model and routine_model.wide_network else (
        words.WIDE_NETWORK)
    return text.replace("{our_network}", ours).replace("{wide_network}", wide)


# -- faults of one target -----------------------------------------------------
@dataclass(frozen=True)
class Fault:
    situation: str
    what: str
    next_step: str
    runbook: str  # the alert's name: /runbooks/<runbook>


def situation_of(config: Config, target: Target, module: str | None,
                 reason: Reason | None) -> str | None:
    """Which of the routine's situations a failed target is in; None: reported elsewhere."""
    if target.labels.get("direction") == "receive":
        return "receiver_rejects" if reason in RECEIVER_REFUSALS else None
    if target.labels.get("role") == "link_computer":
        return "link_computer_down"
    if reason in AE_REJECTIONS:
        return "partner_rejects"
    prober = config.modules[module].prober if module and module in config.modules else ""
    if prober in RECEIVING_PROBERS:
        return "partner_cannot_receive"
    return "partner_unreachable"


def target_next_step(config: Config, situation: str, target: Target) -> str:
    """Steps by target name only: the alert rules can switch on the `target` label alone."""
    return next_step(config, situation, target.name)


def target_fault(config: Config, target: Target, module: str | None,
                 reason: Reason | None, phase: str | None = None) -> Fault | None:
    situation = situation_of(config, target, module, reason)
    if situation is None:
        return None  # a dead link computer is reported once, as itself
    why = f" {explanation(reason, phase, config)}" if reason else ""
    name = place(config, target)
    if situation == "receiver_rejects":
        partner = config.targets.get(target.labels.get("partner", ""))
        who = place(config, partner) if partner else target.labels.get("partner", "")
        what = f"{target.ae_title} tar inte emot DICOM från {who}."
    elif situation == "link_computer_down":
        what = f"Länkdator {name} är ur funktion."
    elif situation == "partner_rejects":
        what = f"{name} avvisar vår DICOM-förbindelse."
    elif situation == "partner_cannot_receive":
        what = f"{name} svarar men kan inte ta emot bilder."
    else:
        what = f"DICOM till {name} fungerar inte."
    return Fault(situation, what + why, target_next_step(config, situation, target),
                 ALERT_FOR[situation])


# -- routes -----------------------------------------------------------------
def path_advice(path: RoutePath) -> str:
    """ "Ljungby skickar via Blekinge." and, where the routine is read, how."""
    text = f"Nu: {path.name}."
    return f"{text} {own(path.note)}" if path.note else text


def route_next_step(config: Config, situation: str, route: Route,
                    slots: Mapping[str, str]) -> str:
    return numbered(config.routine.steps_for(situation, route.name, route.partner,
                                             route.site), slots)


def fallback_next_step(config: Config, route: Route, path: RoutePath,
                       down: Collection[str] = (), slots: Mapping[str, str] | None = None
                       ) -> str:
    """`down`: the route's hops that are down now (their restart step is the routine's
    first); `slots`: the slots' texts as given (the alert rules' templates)."""
    steps = route_next_step(config, "route_fallback", route,
                            route_slots(config, route, down) if slots is None else slots)
    return f"{path_advice(path)} {steps}".strip()


def no_route_next_step(config: Config, route: Route, down: Collection[str] = (),
                       slots: Mapping[str, str] | None = None) -> str:
    return route_next_step(config, "no_route", route,
                           route_slots(config, route, down) if slots is None else slots)


# -- causes ------------------------------------------------------------------
def cause_reference(config: Config, numbers: tuple[int, ...], which: str) -> str:
    """ "Problem med att ta emot, punkt 1 eller 3: ”…” eller ”…”": the routine's
    numbered causes, by number and in its words (`which`: "send" or "receive")."""
    texts = config.routine.send_causes if which == "send" else config.routine.receive_causes
    if not numbers:
        return ""
    points = f" {words.OR} ".join(str(n) for n in numbers)
    quoted = f" {words.OR} ".join(f"”{texts[n - 1]}”" for n in numbers if n <= len(texts))
    head = f"{words.CAUSE_LIST[which]}, {words.POINT} {points}"
    return f"{head}: {quoted}" if quoted else head


def partner_send_causes(config: Config, reason: Reason) -> str:
    """A partner's failure as the routine's send causes ("" when none is)."""
    return cause_reference(config, causes(reason, "partner", "send").send_causes, "send")


def receiver_causes(config: Config, reason: Reason) -> str:
    """Our link computer turning a partner away, as the routine's receive causes."""
    found = causes(reason, "link_computer", "receive")
    return cause_reference(config, found.receive_causes, "receive")


# The reasons DicomPartnerUnreachable can carry: an echo that fails, but not on our AE
# title (DicomPartnerRejectsAssociation) and not our own shutdown (never alerted). The
# store's verification reasons need a store, which the rule does not read.
VERIFY_REASONS = frozenset({Reason.NOT_FOUND_AFTER_STORE, Reason.QUERY_REFUSED,
                            Reason.NOT_COMMITTED, Reason.COMMITMENT_TIMEOUT})
PARTNER_UNREACHABLE_REASONS = tuple(
    reason for reason in Reason
    if reason not in AE_REJECTIONS | VERIFY_REASONS | {Reason.SHUTDOWN})


def cause_table(reasons: tuple[Reason, ...], role: str, direction: str = "send") -> str:
    """A Markdown table for a runbook: each reason and the routine's numbered causes it
    can be for this role (exporter/reasons.py's mapping, so the two never disagree)."""
    lines = [f"| `reason` | {words.CAUSE_LIST['send']} | {words.CAUSE_LIST['receive']} |",
             "|---|---|---|"]
    for reason in reasons:
        found = causes(reason, role, direction)
        send = ", ".join(str(n) for n in found.send_causes) or words.NONE_OF_THEM
        receive = ", ".join(str(n) for n in found.receive_causes) or words.NONE_OF_THEM
        lines.append(f"| `{reason.value}` | {send} | {receive} |")
    return "\n".join(lines)


# -- causes for the CLI ----------------------------------------------------
def cause_lines(config: Config, target: Target, reason: Reason,
                phase: str | None = None) -> list[str]:
    """The routine's numbered causes that fit this target's role and direction."""
    link = config.routine.link_computers.get(target.name)
    found = causes(reason, target.labels.get("role", ""),
                   target.labels.get("direction", "send"), phase,
                   link_send_cause=link.send_cause if link else None)
    send, receive = config.routine.send_causes, config.routine.receive_causes
    lines = [f"skicka {n}" + (f": ”{send[n - 1]}”" if n <= len(send) else "")
             for n in found.send_causes]
    lines += [f"ta emot {n}" + (f": ”{receive[n - 1]}”" if n <= len(receive) else "")
              for n in found.receive_causes]
    return lines


def cli_lines(config: Config, target: Target, module: str, reason: Reason,
              phase: str | None = None) -> list[str]:
    """What `dicom-exporter probe` prints under a failed result: why, causes, next step."""
    lines = [f"orsak     {explanation(reason, phase, config)}"]
    lines += [f"          {line}" for line in cause_lines(config, target, reason, phase)]
    fault = target_fault(config, target, module, reason, phase)
    if fault is not None and fault.next_step:
        lines.append(f"nästa steg {fault.next_step}")
        lines.append(f"runbook   /runbooks/{fault.runbook}")
    return lines


# -- runbooks ------------------------------------------------------------------
SITUATION_OF_ALERT = {alert: situation for situation, alert in ALERT_FOR.items()}
ROUTE_FALLBACK_FIRST = own("Skicka den väg larmet anger (etiketten `path`, t.ex. "
                           "”skicka via Blekinge”) tills ordinarie väg är öppen igen.")


def _subject_name(config: Config, subject: str, situation: str) -> str:
    if subject in config.targets:
        name = place(config, config.targets[subject])
        return f"till {name}" if situation == "no_route" else name
    if subject in config.sites:
        return f"från {config.sites[subject].name}"
    if subject in config.routes:
        route = config.routes[subject]
        return f"{site_name(config, route.site)} → {place(config, config.targets[route.partner])}"
    return subject


def _runbook_slot(config: Config, slot: str) -> str:
    """A slot in a runbook: what the alert chooses, for each hop that has its own."""
    table = config.routine.situations.get(slot, {})
    lines = [words.SLOT_INTRO[slot]]
    for hop, keys in table.items():
        if hop == "default":
            continue
        name = place(config, config.targets[hop]) if hop in config.targets else hop
        steps = tuple(config.routine.steps[key] for key in keys)
        lines.append(f"   - {name} {words.HOP_STATE['down'].lower()}: {slot_text(steps)}")
    default = slot_text(config.routine.steps_for(slot))
    if default:
        lines.append(f"   - {words.OTHERWISE}: {default}")
    return "\n".join(lines)


def runbook_steps(config: Config, alert: str) -> str:
    """The "Gör nu" section of an alert's runbook, in Markdown, from the routine model.

    The runbooks are written by hand around it; a test keeps this section equal
    to what the routine model says, so it is never written a second time.
    """
    situation = SITUATION_OF_ALERT[alert]
    table = config.routine.situations.get(situation, {})
    blocks = []
    for subject in [s for s in table if s != "default"] + ["default"]:
        if subject not in table:
            continue
        lines: list[str] = []
        for heading, items in sections(config.routine.steps_for(situation, subject)):
            texts = [_runbook_slot(config, step.text) if step.slot else step_text(step)
                     for step in items]
            if situation == "route_fallback" and not lines:
                # After the routine's first step for the fault (restart), as Rutin 1 has it.
                at = 1 if items and items[0].slot else 0
                texts = [*texts[:at], ROUTE_FALLBACK_FIRST, *texts[at:]]
            if heading is not None:
                lines += ([""] if lines else []) + [f"*{step_text(heading)}*", ""]
            lines += [f"{n}. {text}" for n, text in enumerate(texts, 1)]
        if len(table) > 1:
            title = "Övriga" if subject == "default" else _subject_name(config, subject, situation)
            lines = [f"**{title}:**", "", *lines]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
