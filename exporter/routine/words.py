"""The words people read that are not the routine's: written once, here.

The routine's own sentences and every site fact (names of sites, regions,
link computers, networks) live in the config's `routine:` section. What is
left is the monitor's vocabulary: alert names, state and badge words, the
route advice phrases and the status page's headings. The status page, the
CLI, the route model and the alert generators import them from here, so a
word is changed in one place (tests/test_words.py keeps other modules free of
such literals).
"""

from __future__ import annotations

# The alert (and runbook) that each situation of the routine pages as.
ALERT_FOR = {
    "link_computer_down": "DicomLinkComputerDown",
    "partner_unreachable": "DicomPartnerUnreachable",
    "partner_rejects": "DicomPartnerRejectsAssociation",
    "partner_cannot_receive": "DicomPartnerCannotReceive",
    "all_partners_failing": "DicomAllPartnersFailing",
    "route_fallback": "RouteOnFallback",
    "no_route": "NoRouteAvailable",
    "receiver_rejects": "ReceiverRejectsPartner",
}
# The alerts that are not one of the routine's situations.
ALERT = {
    "echo_latency": "DicomEchoLatencyHigh",
    "probe_scrape": "DicomProbeScrapeFailing",
    "stale": "DicomProbesStale",
    "exporter_down": "DicomExporterDown",
    "reload_failed": "DicomExporterConfigReloadFailed",
    "watchdog": "Watchdog",
    "certificate": "DicomTLSCertificateExpiringSoon",
    "schedule_stalled": "DicomExporterScheduleStalled",
    "holiday_calendar": "DicomHolidayCalendarEnding",
    "link_computer_budget": "DicomLinkComputerErrorBudgetBurn",
    "partner_budget": "DicomPartnerErrorBudgetBurn",
    **ALERT_FOR,
}
RUNBOOK_FOR_ROUTE_STATUS = {"fallback": ALERT_FOR["route_fallback"],
                            "none": ALERT_FOR["no_route"]}

# Marks our own sentences: "Vår text (inte i rutinen)."
OWN = "inte i rutinen"
# The routine's two numbered lists of causes, by its own headings; "punkt 1 eller 3".
CAUSE_LIST = {"send": "Problem med att skicka", "receive": "Problem med att ta emot"}
POINT = "punkt"
OR = "eller"
NONE_OF_THEM = "\N{EN DASH}"  # a reason that is none of the routine's causes

# A slot of a route situation's steps (exporter/config/routine_model.SLOTS) as a
# runbook shows it: the alert and the status page choose by what is down.
SLOT_INTRO = {
    "restart": "Det rutinen säger först om det som är nere (larmet och statussidan "
               "väljer efter vad som är nere; inte i rutinen):",
    "last_resort": "Sista utväg, efter vad som är nere (larmet och statussidan väljer; "
                   "inte i rutinen):",
}
OTHERWISE = "annars"

# Where a partner is probed from, and what that cannot see (issue 27: the blind spot).
PARTNER_VANTAGE = ("Partnern kontrolleras från övervakningens dator, inte från länkdatorn: "
                   "ett fel här är partnerns eller nätets, men en brandväggsregel som bara "
                   "gäller länkdatorns egen adress syns inte (se nästa steg).")
# The networks, when the config's routine does not name them.
OUR_NETWORK = "vårt nätverk"
WIDE_NETWORK = "det gemensamma vårdnätet"

# -- states -----------------------------------------------------------------
# A path's state (öppen/stängd/okänd) and a hop's (upp/NERE/okänd), by HopState value.
PATH_STATE = {"up": "öppen", "down": "stängd", "unknown": "okänd"}
HOP_STATE = {"up": "upp", "down": "NERE", "unknown": "okänd"}
# A target's role as the status page says it, by its `role` label.
ROLE = {"link_computer": "länkdator", "partner": "partnerregion", "relay": "relä"}
YES = "ja"

# -- route advice -------------------------------------------------------------
SEND = "skicka"
NO_ROUTE = "ingen väg"
ROUTE_UNKNOWN = "okänt: kontroller saknas eller är för gamla"
NO_ROUTE_OPEN = "ingen väg är öppen."
NOW = "Nu:"
ASSUMED = "antas"
LAST_RESORT = "sista utväg"

# -- the status page ------------------------------------------------------------
# Badges: (CSS class, text) per state word or route status.
BADGE_CLASS = {"up": "ok", "down": "fel", "unknown": "okand"}
BADGE_SYMBOL = {"up": "✔", "down": "✖", "unknown": "?"}
ROUTE_BADGE = {
    "primary": ("ok", "✔ ordinarie väg"), "fallback": ("varning", "⚠ reservväg"),
    "none": ("fel", "✖ ingen väg"), "unknown": ("okand", "? okänt"),
}
PAGE = {
    "title_faults": "DICOM-överföring: {count} fel",
    "title_no_faults": "DICOM-överföring: inga fel",
    "heading": "Bildöverföring till och från andra regioner",
    "intro": "Läget enligt DICOM-övervakningen. Sidan uppdateras av sig själv.",
    "stamp": "Uppdaterad {stamp}. {down} av {total} datorer/regioner\nnere.",
    "faults": "Fel och nästa steg",
    "routes": "Vägar just nu",
    "nodes": "Länkadatorer och regioner",
    "more": "Mer",
    "runbooks_link": "Rutiner (runbooks)",
    "metrics_link": "Mätvärden (/metrics)",
    "sd_link": "Mål (/sd)",
    "no_faults": "<strong>Inga kända fel.</strong> Alla vägar och kontroller fungerar.",
    "next_step": "Nästa steg:",
    "runbook": "Runbook",
    "no_routes": "Inga vägar är konfigurerade",
    "routes_caption": "Vilken väg en undersökning går nu",
    "col_route": "Från → till",
    "col_state": "Läge",
    "col_do": "Gör så här",
    "col_paths": "Alla vägar",
    "col_node": "Dator/region",
    "col_role": "Roll",
    "col_checked": "Senast kontrollerad",
    "col_echo": "Svarstid (C-ECHO)",
    "col_reason": "Orsak",
    "receiving": "Tar vi emot från regionerna?",
    "col_receiver": "Länkadator och avsändare",
    "from": "från",
    "roles": "Vem nås hur",
    "never": "aldrig",
    "seconds_ago": "{seconds} s sedan",
    "minutes_ago": "{minutes} min sedan",
    "refresh_failed": "Kunde inte uppdatera: visar senast hämtade läge.",
}

# DicomLinkComputerDown's description, by which modules of the link computer fail:
# the reachability probes (tcp, echo) or only CT (negotiate, store), which closes
# its hop as much.
LINK_DOWN_UNREACHABLE = "svarar inte på DICOM från {{ $site }}"
LINK_DOWN_REFUSES_CT = ("svarar från {{ $site }} men tar inte emot CT: förhandlingen av "
                        "bildtyp eller lagringen misslyckas, så ingen överföring går via den")
