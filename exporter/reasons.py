"""Failure reasons and what they mean in Region Kronoberg's backup routine.

A failed probe carries exactly one reason from this fixed set. The set is a
label value on several metrics, so it must stay small and bounded; the
routine's causes ("Problem med att skicka" 1-6, "Problem med att ta emot"
1-5) are attached here once, so the CLI, the docs/reasons.md table and the alerts all
speak of the same causes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reason(enum.StrEnum):
    DNS = "dns"
    REFUSED = "refused"
    CONNECT_TIMEOUT = "connect_timeout"
    UNREACHABLE = "unreachable"
    RESET = "reset"
    PROTOCOL_ERROR = "protocol_error"
    TLS = "tls"
    ASSOCIATION_TIMEOUT = "association_timeout"
    REJECTED_CALLING_AE = "rejected_calling_ae"
    REJECTED_CALLED_AE = "rejected_called_ae"
    REJECTED_OTHER = "rejected_other"
    NO_ACCEPTED_CONTEXT = "no_accepted_context"
    ABORTED = "aborted"
    DIMSE_TIMEOUT = "dimse_timeout"
    STATUS_FAILURE = "status_failure"
    STATUS_WARNING = "status_warning"
    RELEASE_TIMEOUT = "release_timeout"
    # A store module's verification (verify: find or commit), after a C-STORE
    # the peer answered with success.
    NOT_FOUND_AFTER_STORE = "not_found_after_store"
    QUERY_REFUSED = "query_refused"
    NOT_COMMITTED = "not_committed"
    COMMITMENT_TIMEOUT = "commitment_timeout"
    INTERNAL_ERROR = "internal_error"
    # Our own SIGTERM cut the probe short: nothing about the peer, never alerted on.
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class RoutineCause:
    """A reason explained in the routine's own terms, for the people on call."""

    send_causes: tuple[int, ...]
    receive_causes: tuple[int, ...]
    explanation: str


# Numbers refer to the routine's lists "Problem med att skicka" (send, 1-6) and
# "Problem med att ta emot" (receive, 1-5); their words are the routine's and
# live in the config (`routine.causes`).
ROUTINE: dict[Reason, RoutineCause] = {
    Reason.DNS: RoutineCause(
        (3, 5), (3,),
        "Datornamnet kan inte slås upp: namntjänsten i nätverket eller en felaktig "
        "adress i konfigurationen.",
    ),
    Reason.REFUSED: RoutineCause(
        (1, 2, 6), (1, 5),
        "Datorn svarar men DICOM-tjänsten tar inte emot anslutningar: tjänsten är "
        "stoppad eller datorn omstartad utan den.",
    ),
    Reason.CONNECT_TIMEOUT: RoutineCause(
        (1, 2, 3, 4), (1, 4),
        "Inget svar alls: datorn är avstängd, nätverket/{wide_network} är nere eller en "
        "brandvägg släpper inte igenom trafiken.",
    ),
    Reason.UNREACHABLE: RoutineCause(
        (3,), (4,),
        "Nätverket har ingen väg till datorn: {our_network} eller {wide_network}.",
    ),
    Reason.RESET: RoutineCause(
        (4, 6), (4, 5),
        "Anslutningen bröts mitt i överföringen: brandvägg eller motpartens system.",
    ),
    Reason.PROTOCOL_ERROR: RoutineCause(
        (5, 6), (3,),
        "Motparten svarar inte med DICOM: fel port, fel protokoll (t.ex. TLS) eller "
        "trasig tjänst.",
    ),
    Reason.TLS: RoutineCause(
        (5,), (3,),
        "Den krypterade förbindelsen (TLS) kunde inte upprättas: fel eller utgånget "
        "certifikat, fel certifikatutfärdare eller olika TLS-inställningar på båda sidor.",
    ),
    Reason.ASSOCIATION_TIMEOUT: RoutineCause(
        (2, 6), (1, 5),
        "Anslutningen öppnades men DICOM-tjänsten svarar inte: tjänsten har hängt sig.",
    ),
    Reason.REJECTED_CALLING_AE: RoutineCause(
        (5,), (3,),
        "Motparten känner inte igen vår AE-titel (calling AE), eller inte från vår "
        "adress (vissa system, t.ex. Orthanc, kontrollerar även avsändarens värd): "
        "kommunikationen är inte rätt konfigurerad.",
    ),
    Reason.REJECTED_CALLED_AE: RoutineCause(
        (5,), (3,),
        "Motparten har inte den AE-titel vi anropar (called AE): kommunikationen är "
        "inte rätt konfigurerad. Vissa system (t.ex. dcmtk:s dcmqrscp) svarar så även "
        "när det är vår egen AE-titel (calling AE) de inte känner igen.",
    ),
    Reason.REJECTED_OTHER: RoutineCause(
        (5, 6), (3, 5),
        "Motparten avvisade anslutningen av annat skäl (t.ex. överbelastad). Vid "
        "echo utan angivet skäl kan det också vara att motparten inte erbjuder "
        "Verification (C-ECHO): se detaljen.",
    ),
    Reason.NO_ACCEPTED_CONTEXT: RoutineCause(
        (5, 6), (3,),
        "Motparten tar inte emot den bildtyp eller överföringssyntax vi skickar "
        "(detaljen säger vilket).",
    ),
    Reason.ABORTED: RoutineCause(
        (4, 6), (4, 5),
        "Motparten eller nätverket avbröt DICOM-förbindelsen (A-ABORT).",
    ),
    Reason.DIMSE_TIMEOUT: RoutineCause(
        (6,), (5,),
        "Motparten tog emot förfrågan men svarade aldrig: systemet är överbelastat "
        "eller har hängt sig.",
    ),
    Reason.STATUS_FAILURE: RoutineCause(
        (6,), (5,),
        "Motparten svarade med felstatus: den kan inte ta emot DICOM just nu "
        "(t.ex. fullt lagringsutrymme).",
    ),
    Reason.STATUS_WARNING: RoutineCause(
        (), (2,),
        "Mottagaren svarade med varning, t.ex. för att undersökningen redan finns "
        "på den mottagande datorn eller att data ändrades.",
    ),
    Reason.RELEASE_TIMEOUT: RoutineCause(
        (6,), (5,),
        "Motparten avslutade inte förbindelsen på rätt sätt. Säger detaljen att "
        "instansen lagrades, tar motparten emot: bara avslutet brister.",
    ),
    Reason.NOT_FOUND_AFTER_STORE: RoutineCause(
        (6,), (5,),
        "Motparten svarade att testobjektet togs emot, men när vi frågar efter det "
        "(C-FIND) finns det inte: mottagande system sparar inte det som skickas (t.ex. "
        "fullt lagringsutrymme, ett filter eller en importregel som misslyckas).",
    ),
    Reason.QUERY_REFUSED: RoutineCause(
        (5,), (3,),
        "Motparten tog emot testobjektet men låter oss inte fråga efter det (C-FIND "
        "eller lagringsbekräftelse nekas): vår AE-titel saknar behörighet hos motparten. "
        "Det är en inställning, inte ett avbrott.",
    ),
    Reason.NOT_COMMITTED: RoutineCause(
        (6,), (5,),
        "Motparten tog emot testobjektet men bekräftar inte att det lagrats "
        "(lagringsbekräftelse, Storage Commitment): mottagande system sparar inte det "
        "som skickas.",
    ),
    Reason.COMMITMENT_TIMEOUT: RoutineCause(
        (4, 5, 6), (4, 5),
        "Motparten tog emot testobjektet men ingen lagringsbekräftelse kom i tid: "
        "deras system är långsamt eller ur funktion, eller så når deras svar inte vår "
        "DICOM-mottagare (brandvägg, eller fel adress till oss hos motparten).",
    ),
    Reason.INTERNAL_ERROR: RoutineCause(
        (), (),
        "Fel i övervakningen själv, inte hos motparten: kontakta den som förvaltar "
        "dicom-exporter.",
    ),
    Reason.SHUTDOWN: RoutineCause(
        (), (),
        "Exportern stängdes av medan proben pågick: inget besked om motparten.",
    ),
}


# A reason that means something else in one phase of the probe. Wired to
# ProbeReport.failed_phase (issue 12) at merge; the phase names are those of
# exporter/config/prober_kinds.PHASES.
PHASED: dict[tuple[Reason, str], RoutineCause] = {
    (Reason.ABORTED, "dimse"): RoutineCause(
        (5,), (3,),
        "Motparten godtog förbindelsen men avbröt den direkt efter vår förfrågan "
        "(t.ex. C-STORE-RQ): så gör många system när vår AE-titel inte har behörighet "
        "att skicka till dem.",
    ),
}

# Reasons that say "the machine or its DICOM service is not working".
SERVICE_DOWN = frozenset({
    Reason.REFUSED, Reason.CONNECT_TIMEOUT, Reason.RESET, Reason.PROTOCOL_ERROR,
    Reason.ASSOCIATION_TIMEOUT, Reason.ABORTED, Reason.DIMSE_TIMEOUT, Reason.STATUS_FAILURE,
    Reason.RELEASE_TIMEOUT, Reason.NOT_FOUND_AFTER_STORE, Reason.NOT_COMMITTED,
})


def causes(
    reason: Reason, role: str, direction: str = "send", phase: str | None = None,
    *, link_send_cause: int | None = None,
) -> RoutineCause:
    """The routine's causes that can explain this failure of this kind of target.

    A link computer that refuses is "Z97117 ur funktion", not "mottagande region
    kan inte ta emot"; a partner that refuses is the reverse. `direction` is
    "receive" for our link computer called as a partner would call it.
    `link_send_cause` narrows a link computer to the one cause naming it.
    """
    base = PHASED.get((reason, phase or ""), ROUTINE[reason])
    send, receive = set(base.send_causes), set(base.receive_causes)
    down = reason in SERVICE_DOWN and (reason, phase or "") not in PHASED
    if direction == "receive":
        # Our receiver is the one that answers: "the sending region's system" (5) is,
        # seen from the partner, our receiving computer (1), e.g. a link computer that
        # rejects because it is overloaded (rejected_other).
        send = set()
        receive = (receive & {2, 3, 4}) | ({1} if down or 5 in receive else set())
    elif role == "link_computer":
        own = {link_send_cause} if link_send_cause else {1, 2}
        send = (send & {3, 4, 5}) | (own if down else set())
        receive = (receive & {3, 4}) | ({1} if down else set())
    else:
        send = (send - {1, 2}) | ({6} if down else set())
        receive = (receive - {1, 2}) | ({5} if down else set())
    return RoutineCause(tuple(sorted(send)), tuple(sorted(receive)), base.explanation)
