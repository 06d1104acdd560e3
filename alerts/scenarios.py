"""The scenario tables, written by hand from the routine: what must reach whom, with which step.

Nothing here is computed from the system's output. The next-step texts are
typed from the routine ("Reservrutin bildöverföring till annan region"): the
routine's sentences verbatim in quotation marks, our own marked "(inte i
rutinen)". Each scenario lists the alerts the rules fire in that state (the
input) and every notification that must arrive, per receiver; a test proves
that nothing else arrives. The promtool cases (alerts/promtool_cases.py), the
Alertmanager scenarios (tests/test_alertmanager_scenarios.py) and a full-stack
run (tools/stack.py) read the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# -- the routine's sentences, as the on-call reads them ----------------------
DASH = "\N{EN DASH}"  # as the routine writes it, between "portal" and "lämpligen"
RESTART_BOTH = ("”Felsökning måste börja med att starta om länka-dator Z97117 (Växjö) och "
                "Z83680 (Ljungby).”")
ASK = ("”Därefter får ni ta kontakt med mottagande/sändande enhet för att höra om de har några "
       "störningar i DICOM-överföring.”")
ONE_OR_ALL = "”Har vi störningar i överföring till/från andra enheter?”"
GE = "”Kontakta sedan leverantör GE enligt dokument ”Vem ringa...””"
ADMIN = "”Kontakta administratör eller någon av cheferna.”"
ADMIN_IT = "”Administratör kontakter sedan IT.”"
ESCALATION = (GE, ADMIN, ADMIN_IT)
SKANE_VIA = ("”Om Region Skåne inte kan ta emot undersökningar kan vi prova skicka via Blekinge "
             "eller Halland.”")
# The routine gives it for Skåne not receiving: shown only when Skåne's hop is down.
SKANE_PATIENT = ("”Kan Region Skåne inte ta emot bildöverföring från någon annan region, måste "
                 "det övervägas att skicka patienten till annan region. Remitterande enhet måste "
                 "då ta den kontakten med denna region.”")
SKANE_DVD = "”Vi kan även bränna DVD för att skicka med patienttransporten.”"
SKANE_LAST = f"{SKANE_PATIENT} {SKANE_DVD}"
RECEIVE_VIA = ("”I vissa fall kan de skicka via andra enheter, tex. kan Skåne skicka via Blekinge "
               "eller Halland (och vice versa).”")
RECEIVE_DVD = "”Vid akuta fall får de skicka DVD/CD.”"
Z97117_DVD = (f"”Bränna en DVD på dator med Intellispace portal {DASH} lämpligen på dator i "
              "granskningen.”")
Z83680_DVD = (f"”Ljungby får bränna DVD på dator med Intellispace Portal {DASH} lämpligen på "
              "dator i granskningen.”")
# The routine's first step for a link computer being down (Rutin 1, punkt 1).
Z97117_RESTART = "”Starta om datorn och prova igen.”"
Z83680_RESTART = "”Starta om datorn samt att Växjö starta om länka-datorn Z97117.”"
COMMUNICATE = ("”Personal i Arkivet samt LARS under jouren, ansvarar för att kommunicera "
               "överföringsfel in röntgen/klinfys.”")
RECEIVE_RESTART = "”Starta om länkadatorn och be dem skicka igen.”"
BLIND_SPOT = ("Partnern kontrolleras från övervakningens dator, inte från länkdatorn: en "
              "brandväggsregel som bara gäller länkdatorns egen adress syns inte här. Fråga "
              "mottagande enhet om våra överföringar kommer fram, även när larmet har upphört "
              "(inte i rutinen).")
DVD_OWN = ("Bränn DVD på dator med IntelliSpace Portal i granskningen om undersökningen är "
           "akut (inte i rutinen).")
READING = ("Så läser vi rutinen för Z97117 ur funktion, punkt 2: Ljungby skickar även Växjös "
           "undersökningar, så som Växjö skickar Ljungbys när Z83680 är ur funktion "
           "(inte i rutinen).")


def steps(*texts: str) -> str:
    return " ".join(f"{n}. {text}" for n, text in enumerate(texts, 1))


# A link computer both sends and receives: the routine's two parts under its own
# headings, each numbered from 1, then the escalation of its Felsökning.
SENDING = "”Driftstörning i överföring från Växjö/Ljungby till annan mottagare”:"
RECEIVING = "”Driftstörning i överföring till Växjö/Ljungby från avsändande enhet”:"
TROUBLESHOOTING = "”Felsökning”:"
NEXT = {
    ("link_computer_down", "z97117"): " ".join((
        SENDING, steps(
            Z97117_RESTART,
            "”Ljungby skicka undersökningar via Blekinge, Halland eller Jönköping.”",
            "Punkt 2 gäller även Växjös undersökningar: Ljungby skickar dem via Blekinge, "
            "Halland eller Jönköping så länge Z83680 är i drift; så läser vi rutinen, som för "
            "Z83680 där Växjö skickar Ljungbys (inte i rutinen).", Z97117_DVD),
        RECEIVING, steps(RECEIVE_RESTART, RECEIVE_VIA, RECEIVE_DVD),
        TROUBLESHOOTING, steps(*ESCALATION))),
    ("link_computer_down", "z83680"): " ".join((
        SENDING, steps(Z83680_RESTART, "”Växjö skickar undersökningar.”", Z83680_DVD),
        RECEIVING, steps(RECEIVE_RESTART, RECEIVE_VIA, RECEIVE_DVD),
        TROUBLESHOOTING, steps(*ESCALATION))),
    # The routine's order: "Har vi störningar ..." (Felsökning) before the Skåne fallback.
    ("partner_unreachable", "skane"): steps(RESTART_BOTH, ASK, BLIND_SPOT, ONE_OR_ALL,
                                            SKANE_VIA, *ESCALATION),
    ("partner_unreachable", "default"): steps(RESTART_BOTH, ASK, BLIND_SPOT, ONE_OR_ALL,
                                              *ESCALATION),
    ("partner_rejects", "default"): steps(
        RESTART_BOTH, ASK,
        "Jämför AE-titel, värdnamn och port med mottagande enhet (inte i rutinen).",
        "Övervakningen anropar från sin egen dator med sin egen AE-titel, inte som Z97117: en "
        "region som bara släpper in Z97117 avvisar övervakningen fast överföringen kan fungera. "
        "Fråga mottagande enhet innan något ändras (inte i rutinen).",
        BLIND_SPOT, *ESCALATION),
    ("partner_cannot_receive", "default"): steps(RESTART_BOTH, ASK, BLIND_SPOT, ONE_OR_ALL,
                                                 *ESCALATION),
    ("all_partners_failing", "default"): steps(RESTART_BOTH, ASK, ONE_OR_ALL, *ESCALATION),
    ("receiver_rejects", "default"): steps(
        "”Starta om länkadatorn och be dem skicka igen.”",
        "Kontrollera att avsändarens AE-titel, värdnamn och port finns i länkdatorns "
        "konfiguration (inte i rutinen).", RECEIVE_VIA, RECEIVE_DVD, *ESCALATION),
}


def fallback(path: str, reading: bool = False, restart: str = Z97117_RESTART) -> str:
    """RouteOnFallback's next step: the open path, how we read the routine, the routine's
    first step for what is down (Z97117: restart it; Skåne: Felsökning's restart of
    both link computers), who tells whom."""
    return f"Nu: {path}. " + (f"{READING} " if reading else "") + steps(restart, COMMUNICATE)


def no_route(last: str) -> str:
    """NoRouteAvailable's next step: Felsökning, and as step 4 the routine's last resort
    for what is down: a dead link computer's DVD sentence, Skåne's for Skåne not
    receiving, our own DVD advice for another region."""
    return steps(RESTART_BOTH, ASK, ONE_OR_ALL, last, *ESCALATION)


# -- scenarios -----------------------------------------------------------------
VX = "vaxjo-exporter:10104"  # instance label of the Växjö exporter
LJ = "ljungby-exporter:10104"
SITES = (("vaxjo", VX), ("ljungby", LJ))
PARTNERS = ("skane", "blekinge", "ostergotland", "jonkoping", "vastragotland", "halland")


@dataclass(frozen=True)
class Notification:
    """One notification to one receiver: the alert name and, per alert, its key and step."""

    receiver: str  # admin-pager | communicators (arkivet or lars by time) | it-mail | ...
    alertname: str
    alerts: dict[str, str]  # key ("z97117@vaxjo", "vaxjo-skane") -> next step ("" = none)
    resolved: tuple[str, ...] = ()  # keys sent as resolved in this notification


@dataclass(frozen=True)
class Stage:
    """A state of the region: what is down (target -> reason) and what must arrive."""

    down: dict[str, str]
    expected: list[Notification]


@dataclass(frozen=True)
class Scenario:
    name: str
    when: str  # wall-clock time in Europe/Stockholm, ISO format
    stages: list[Stage]
    exporter_down: tuple[str, ...] = ()  # instances of dead exporters
    notes: str = ""
    blip: dict[str, str] = field(default_factory=dict)


def both(key: str) -> tuple[str, str]:
    return (f"{key}@vaxjo", f"{key}@ljungby")


def each(key: str, step: str) -> dict[str, str]:
    return dict.fromkeys(both(key), step)


def staff(alertname: str, alerts: dict[str, str], critical: bool = True,
          resolved: tuple[str, ...] = ()) -> list[Notification]:
    """A transfer fault: the routine's communicators, plus the pager or the IT mailbox."""
    other = "admin-pager" if critical else "it-mail"
    return [Notification("communicators", alertname, alerts, resolved),
            Notification(other, alertname, alerts, resolved)]


LCD_Z97117 = NEXT[("link_computer_down", "z97117")]
LCD_Z83680 = NEXT[("link_computer_down", "z83680")]
PU_SKANE = NEXT[("partner_unreachable", "skane")]
PU = NEXT[("partner_unreachable", "default")]
VAXJO_ROUTES = ("vaxjo-skane", "vaxjo-blekinge", "vaxjo-ostergotland", "vaxjo-jonkoping",
                "vaxjo-vastragotland")
LJUNGBY_ROUTES = tuple(r.replace("vaxjo", "ljungby") for r in VAXJO_ROUTES)

Z97117_FALLBACKS = {
    "vaxjo-skane": fallback("Ljungby skickar via Blekinge", reading=True),
    "vaxjo-blekinge": fallback("Ljungby skickar till Blekinge", reading=True),
    "vaxjo-ostergotland": fallback("Ljungby skickar via Blekinge", reading=True),
    # Jönköping is one of the routine's relays for Z97117: Ljungby sends to it directly.
    "vaxjo-jonkoping": fallback("Ljungby skickar till Jönköping", reading=True),
    "vaxjo-vastragotland": fallback("Ljungby skickar via Blekinge", reading=True),
    "ljungby-skane": fallback("skicka via Blekinge"),
    "ljungby-blekinge": fallback("skicka direkt till Blekinge"),
    "ljungby-ostergotland": fallback("skicka via Blekinge"),
    "ljungby-jonkoping": fallback("skicka direkt till Jönköping"),
    "ljungby-vastragotland": fallback("skicka via Blekinge"),
}
# Z97117 and Blekinge down: nothing may go via Blekinge, and nothing reaches Blekinge
# (Halland cannot forward to a Blekinge that is down; the routine gives no way round
# Blekinge's own outage), so the Blekinge routes have no route at all.
Z97117_BLEKINGE_FALLBACKS = {
    "vaxjo-skane": fallback("Ljungby skickar via Halland", reading=True),
    "vaxjo-ostergotland": fallback("Ljungby skickar via Halland", reading=True),
    "vaxjo-jonkoping": fallback("Ljungby skickar till Jönköping", reading=True),
    "vaxjo-vastragotland": fallback("Ljungby skickar via Halland", reading=True),
    "ljungby-skane": fallback("skicka via Halland"),
    "ljungby-ostergotland": fallback("skicka via Halland"),
    "ljungby-jonkoping": fallback("skicka direkt till Jönköping"),
    "ljungby-vastragotland": fallback("skicka via Halland"),
}
BLEKINGE_NO_ROUTE = dict.fromkeys(("vaxjo-blekinge", "ljungby-blekinge"), no_route(DVD_OWN))
# With Z97117 down too, the routine's DVD sentence for Z97117 (the route's first hop down).
Z97117_BLEKINGE_NO_ROUTE = dict.fromkeys(("vaxjo-blekinge", "ljungby-blekinge"),
                                         no_route(Z97117_DVD))

SCENARIOS = [
    Scenario("Z97117 dies on a Saturday night", "2026-11-28T03:00", [Stage(
        {"z97117": "refused"},
        staff("DicomLinkComputerDown", each("z97117", LCD_Z97117))
        + staff("RouteOnFallback", Z97117_FALLBACKS, critical=False),
    )], notes="One page for both vantage points; partners are not silenced (none is down)."),
    Scenario("Z83680 dies on a weekday in office hours", "2026-11-25T10:00", [Stage(
        {"z83680": "connect_timeout"},
        staff("DicomLinkComputerDown", each("z83680", LCD_Z83680))
        + staff("RouteOnFallback", {r: fallback("Växjö skickar", restart=Z83680_RESTART)
                                    for r in LJUNGBY_ROUTES},
                critical=False),
    )]),
    Scenario("Skåne down, weekday evening", "2026-11-24T22:00", [Stage(
        {"skane": "connect_timeout"},
        staff("DicomPartnerUnreachable", each("skane", PU_SKANE))
        + staff("RouteOnFallback",
                {"vaxjo-skane": fallback("skicka via Blekinge", restart=RESTART_BOTH),
                 "ljungby-skane": fallback("skicka via Blekinge", restart=RESTART_BOTH)},
                critical=False),
    )]),
    Scenario("Skåne rejects our AE title, office hours", "2026-11-25T09:00", [Stage(
        {"skane": "rejected_calling_ae"},
        staff("DicomPartnerRejectsAssociation",
              each("skane", NEXT[("partner_rejects", "default")])),
    )], notes="Only our monitor's calling AE title is turned away: the real transfer may "
              "work, so the Skåne routes are unknown, not on a fallback (one answer: ask "
              "the receiving unit first, as the rejection alert says)."),
    Scenario("Every partner down: our network, a weekday night", "2026-11-25T23:30", [Stage(
        dict.fromkeys(PARTNERS, "connect_timeout"),
        staff("DicomAllPartnersFailing",
              {"vaxjo": NEXT[("all_partners_failing", "default")],
               "ljungby": NEXT[("all_partners_failing", "default")]})
        + staff("NoRouteAvailable",
                {"vaxjo-skane": no_route(SKANE_LAST),
                 "ljungby-skane": no_route(SKANE_LAST),
                 **{r: no_route(DVD_OWN) for r in VAXJO_ROUTES[1:] + LJUNGBY_ROUTES[1:]}}),
    )], notes="Single-partner alerts are inhibited by DicomAllPartnersFailing of their site."),
    Scenario("Z97117 rejects Blekinge's calling AE title, office hours", "2026-11-26T13:00", [
        Stage({"z97117.from.blekinge": "rejected_calling_ae"},
              staff("ReceiverRejectsPartner",
                    {"z97117.from.blekinge@vaxjo": NEXT[("receiver_rejects", "default")]})),
    ]),
    Scenario("Skåne, Blekinge and Halland down, Sunday afternoon", "2026-11-29T15:00", [Stage(
        {"skane": "refused", "blekinge": "refused", "halland": "refused"},
        staff("DicomPartnerUnreachable", each("skane", PU_SKANE))
        + staff("DicomPartnerUnreachable", each("blekinge", PU))
        + staff("DicomPartnerUnreachable", each("halland", PU))
        + staff("NoRouteAvailable", {"vaxjo-skane": no_route(SKANE_LAST),
                                     "ljungby-skane": no_route(SKANE_LAST),
                                     **BLEKINGE_NO_ROUTE}),
    )], notes="Skåne's own outage: Jönköping is not the routine's relay for it."),
    Scenario("Skåne and Blekinge down, office hours", "2026-11-27T08:30", [Stage(
        {"skane": "refused", "blekinge": "refused"},
        staff("DicomPartnerUnreachable", each("skane", PU_SKANE))
        + staff("DicomPartnerUnreachable", each("blekinge", PU))
        + staff("RouteOnFallback",
                {"vaxjo-skane": fallback("skicka via Halland", restart=RESTART_BOTH),
                 "ljungby-skane": fallback("skicka via Halland", restart=RESTART_BOTH)},
                critical=False)
        + staff("NoRouteAvailable", BLEKINGE_NO_ROUTE),
    )], notes="A NoRouteAvailable (critical, no target) beside another route's "
              "RouteOnFallback on the same exporter: the fallback is delivered."),
    Scenario("Z97117, then Blekinge, a weekday night", "2026-11-26T02:00", [
        Stage({"z97117": "refused"},
              staff("DicomLinkComputerDown", each("z97117", LCD_Z97117))
              + staff("RouteOnFallback", Z97117_FALLBACKS, critical=False)),
        Stage({"z97117": "refused", "blekinge": "connect_timeout"},
              staff("DicomPartnerUnreachable", each("blekinge", PU))
              # The route page is updated within one group_interval: new advice firing,
              # the Blekinge advice resolved; the Blekinge routes have no route left.
              + staff("RouteOnFallback", Z97117_BLEKINGE_FALLBACKS, critical=False,
                      resolved=tuple(k for k, v in Z97117_FALLBACKS.items()
                                     if "Blekinge" in v))
              + staff("NoRouteAvailable", Z97117_BLEKINGE_NO_ROUTE)),
    ], notes="Blekinge's own outage is delivered while Z97117 is down."),
    Scenario("Blekinge, then Z97117, a weekday night", "2026-11-26T02:00", [
        Stage({"blekinge": "connect_timeout"},
              staff("DicomPartnerUnreachable", each("blekinge", PU))
              + staff("NoRouteAvailable", BLEKINGE_NO_ROUTE)),
        Stage({"blekinge": "connect_timeout", "z97117": "refused"},
              staff("DicomLinkComputerDown", each("z97117", LCD_Z97117))
              + staff("RouteOnFallback", Z97117_BLEKINGE_FALLBACKS, critical=False)),
    ], notes="A NoRouteAvailable of one route never silences RouteOnFallback of another; "
             "Z97117 failing too opens no way to Blekinge, so its NoRouteAvailable stays "
             "firing (nothing is sent as resolved)."),
    Scenario("The Växjö exporter dies, office hours", "2026-11-25T11:00", [Stage(
        {}, [Notification("admin-pager", "DicomExporterDown", {VX: ""})],
    )], exporter_down=(VX,),
        notes="Monitoring faults reach the administrators only; its stale probes are "
              "inhibited."),
]

# A blip: one failed probe of Z83680 (10 s of downtime in a 15 s probe interval) pages
# nobody. Rule layer only (promtool): nothing reaches Alertmanager.
BLIP_Z83680 = "1 1 1 1 0 1 1 1 1+0x30"
