"""Builds alerts/dicom.rules.yml from monitoring/config.yml and the exporter config.

Selectors, thresholds and waits come from monitoring/config.yml (shared with
the dashboards), site names and roles from the exporter config it names.
Regenerate with `python -m tools.generate` and commit the result; a test
fails when the rules file is not what this script builds.

Texts are Swedish, for the staff on call. Every next step (annotation
`next_step`) is rendered at build time by exporter/routine from the exporter
config's `routine:` section, the same function the status page and the CLI
call, and selected in the rule by the alert's labels: the same state gives the
same words everywhere. The explanation of a failure reason comes from
exporter/reasons.py. Labels `audience` route the alert: `staff` faults are for
the routine's communicators (Arkivet, LARS) and the administrators, `it`
faults for the administrators and radiology IT only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter import config as exporter_config
from exporter import routine
from exporter.reasons import ROUTINE, Reason
from monitoring import settings

M = settings.load()
CONFIG = exporter_config.load(
    settings.ROOT / yaml.safe_load(settings.CONFIG.read_text("utf-8"))["exporter_config"])
REGION_NAMES = dict(CONFIG.routine.regions)
STAFF = {"audience": "staff"}  # the routine's transfer faults: Arkivet/LARS communicate them
IT = {"audience": "it"}  # monitoring faults and early warnings: administrators and IT only
# -- Selectors (from monitoring/config.yml and the table of prober kinds) ------
PROBE_JOB = M.probe
EXPORTER_JOB = M.exporter
LINK_COMPUTERS = M.link_computers
RECEIVE = M.receive
PARTNERS = M.partners
REACHABILITY = M.reachability
ECHO = M.echo
RECEIVING = M.receiving
# Reasons that mean "the partner turns our association away on configuration".
AE_REJECTIONS = 'reason=~"rejected_calling_ae|rejected_called_ae"'
# Reasons that mean our receiver turns a partner away (not: the receiver is down).
RECEIVER_REFUSALS = (
    'reason=~"rejected_calling_ae|rejected_called_ae|rejected_other|no_accepted_context"'
)

# -- Waits and thresholds (monitoring/config.yml) ------------------------------
FOR_LINK_COMPUTER = M.for_by_role["link_computer"]
FOR_PARTNER = M.for_by_role["partner"]
FOR_ALL_PARTNERS = M.wait("all_partners")
FOR_CANNOT_RECEIVE = M.wait("cannot_receive")
ECHO_LATENCY_WARNING_SECONDS = M.thresholds["echo_latency_warning_seconds"]
ECHO_LATENCY_WINDOW = M.thresholds["echo_latency_window"]
FOR_ECHO_LATENCY = M.wait("echo_latency")
STALE_WINDOW = M.thresholds["stale_window"]
FOR_STALE = M.wait("stale")
FOR_PROBE_SCRAPE = M.wait("probe_scrape")
FOR_EXPORTER_DOWN = M.wait("exporter_down")
FOR_RELOAD = M.wait("reload")
FOR_ROUTE = M.wait("route")
TLS_EXPIRY_WARNING_DAYS = M.thresholds["tls_expiry_warning_days"]
FOR_TLS_EXPIRY = M.wait("tls_expiry")
FOR_RECEIVER = M.wait("receiver")
MIN_PARTNERS_FOR_ALL_FAILING = M.thresholds["min_partners_for_all_failing"]
# Label values as the staff say them, from the exporter config's sites.
SITE_NAMES = M.site_names


OUT = Path(__file__).resolve().parent / "dicom.rules.yml"
_UNITS = {"s": "sekunder", "m": "minuter", "h": "timmar", "d": "dagar"}


def spoken(duration: str) -> str:
    """ "10m" -> "10 minuter": our prose writes durations out."""
    return f"{duration[:-1]} {_UNITS[duration[-1]]}" if duration[-1] in _UNITS else duration


def decimal(value: float) -> str:
    """0.5 -> "0,5": Swedish decimal comma."""
    return f"{value:g}".replace(".", ",")

# -- Template pieces ---------------------------------------------------------
def _named(label: str, names: dict[str, str]) -> str:
    """`${label}`: the label's value as people say it, the raw value otherwise."""
    return f"{{{{ ${label} := .Labels.{label} }}}}" + "".join(
        f'{{{{ if eq .Labels.{label} "{key}" }}}}{{{{ ${label} = "{name}" }}}}{{{{ end }}}}'
        for key, name in names.items()
    )


NAMES = _named("site", SITE_NAMES) + _named("region", REGION_NAMES)
# The reason of the latest failed probe of this target, as a template variable.
REASON = (
    '{{ $reason := "okänd" }}'
    "{{ with printf `probe_dicom_failure_reason{target=\"%s\",instance=\"%s\"} == 1` "
    ".Labels.target .Labels.instance | query }}"
    '{{ $reason = (. | first | label "reason") }}{{ end }}'
)
EXPLANATION = (
    "".join(
        f'{{{{ {"if" if i == 0 else "else if"} eq $reason "{reason.value}" }}}}'
        f"{ROUTINE[reason].explanation}"
        for i, reason in enumerate(Reason)
    )
    + "{{ else }}Orsaken är okänd: kör dicom-exporter probe för detaljer.{{ end }}"
)


def switch(cases: list[tuple[str, str]], default: str) -> str:
    """A Go template choosing one text by condition; cases equal to the default are left out."""
    kept = [(condition, text) for condition, text in cases if text != default]
    if not kept:
        return default
    out = "".join(
        f"{{{{ {'if' if index == 0 else 'else if'} {condition} }}}}{text}"
        for index, (condition, text) in enumerate(kept)
    )
    return out + f"{{{{ else }}}}{default}{{{{ end }}}}"


def by_target(situation: str, targets: list) -> str:
    """`next_step` of a target alert: the routine's steps for the alert's `target`."""
    return switch(
        [(f'eq .Labels.target "{t.name}"', routine.target_next_step(CONFIG, situation, t))
         for t in targets],
        routine.next_step(CONFIG, situation),
    )


LINKS = [t for t in CONFIG.targets.values()
         if t.labels.get("role") == "link_computer" and t.labels.get("direction") != "receive"]
PARTNER_TARGETS = [t for t in CONFIG.targets.values()
                   if t.labels.get("role") in ("partner", "relay")]


def fallback_steps() -> str:
    cases = [
        (f'and (eq .Labels.route "{route.name}") (eq .Labels.path "{path.name}")',
         routine.fallback_next_step(CONFIG, route, path))
        for route in CONFIG.routes.values() for path in route.fallbacks
    ]
    return switch(cases, "")


def no_route_steps() -> str:
    return switch(
        [(f'eq .Labels.route "{route.name}"', routine.no_route_next_step(CONFIG, route))
         for route in CONFIG.routes.values()],
        routine.next_step(CONFIG, "no_route"),
    )


def runbook(name: str, with_instance: bool = True) -> str:
    return M.runbook(name, with_instance)


def alert(
    name: str,
    expr: str,
    duration: str,
    severity: str,
    summary: str,
    description: str,
    reason: bool = False,
    with_instance: bool = True,
    extra_labels: dict[str, str] | None = None,
    next_step: str = "",
) -> dict:
    annotations = {
        "summary": NAMES + summary,
        "description": NAMES + (REASON if reason else "") + description,
        "runbook_url": runbook(name, with_instance),
    }
    if next_step:
        annotations["next_step"] = next_step
    if reason:
        annotations["reason"] = REASON + "{{ $reason }}"
    rule = {"alert": name, "expr": expr, "for": duration,
            "labels": {"severity": severity, **(extra_labels or {})},
            "annotations": annotations}
    return rule


def rules() -> list[dict]:
    link_down = alert(
        "DicomLinkComputerDown",
        f"min by (target, ae_title, site, instance) "
        f"(probe_success{{{PROBE_JOB}, {LINK_COMPUTERS}, {REACHABILITY}}}) == 0",
        FOR_LINK_COMPUTER,
        "critical",
        "Länkdator {{ $labels.ae_title }} är ur funktion (sett från {{ $site }})",
        "Länkdator {{ $labels.ae_title }} svarar inte på DICOM från {{ $site }}. "
        "Orsak: {{ $reason }}. " + EXPLANATION,
        reason=True,
        extra_labels=STAFF,
        next_step=by_target("link_computer_down", LINKS),
    )
    partner_unreachable = alert(
        "DicomPartnerUnreachable",
        f"(probe_success{{{PROBE_JOB}, {PARTNERS}, {ECHO}}} == 0)\n"
        f"unless on (target, instance)\n"
        f"(probe_dicom_failure_reason{{{PROBE_JOB}, {AE_REJECTIONS}}} == 1)",
        FOR_PARTNER,
        "critical",
        "DICOM till {{ $region }} ({{ $labels.ae_title }}) fungerar inte från {{ $site }}",
        "{{ $labels.target }} ({{ $labels.ae_title }}) svarar inte på C-ECHO från {{ $site }}. "
        "Orsak: {{ $reason }}. " + EXPLANATION + " Partnern kontrolleras direkt från "
        "övervakningens dator, inte via länkdatorn: felet är partnerns eller nätets.",
        reason=True,
        extra_labels=STAFF,
        next_step=by_target("partner_unreachable", PARTNER_TARGETS),
    )
    rejects = alert(
        "DicomPartnerRejectsAssociation",
        f"probe_dicom_failure_reason{{{PROBE_JOB}, {PARTNERS}, {AE_REJECTIONS}}} == 1",
        FOR_PARTNER,
        "critical",
        "{{ $region }} ({{ $labels.ae_title }}) avvisar vår DICOM-förbindelse",
        '{{ if eq $labels.reason "rejected_calling_ae" }}'
        "{{ $labels.target }} känner inte igen övervakningens AE-titel (calling AE)."
        "{{ else }}{{ $labels.target }} har inte AE-titeln {{ $labels.ae_title }} "
        "som vi anropar (called AE); vissa system svarar så även när det är vår egen "
        "AE-titel de inte känner igen.{{ end }} "
        "Kommunikation mellan mottagare och sändare är inte rätt konfigurerad "
        "(Problem med att skicka, punkt 5).",
        extra_labels=STAFF,
        next_step=by_target("partner_rejects", PARTNER_TARGETS),
    )
    cannot_receive = alert(
        "DicomPartnerCannotReceive",
        f"(probe_success{{{PROBE_JOB}, {PARTNERS}, {RECEIVING}}} == 0)\n"
        f"and on (target, instance)\n"
        f"(probe_success{{{PROBE_JOB}, {ECHO}}} == 1)",
        FOR_CANNOT_RECEIVE,
        "critical",
        "{{ $region }} ({{ $labels.ae_title }}) svarar men kan inte ta emot bilder",
        "{{ $labels.target }} svarar på C-ECHO men {{ $labels.module }} misslyckas. "
        "Orsak: {{ $reason }}. " + EXPLANATION + " "
        "Mottagande region kan inte ta emot DICOM (Problem med att skicka, punkt 6).",
        reason=True,
        extra_labels=STAFF,
        next_step=by_target("partner_cannot_receive", PARTNER_TARGETS),
    )
    all_failing = alert(
        "DicomAllPartnersFailing",
        f"(count by (site, instance) "
        f"(probe_success{{{PROBE_JOB}, {PARTNERS}, {ECHO}}} == 0)\n"
        f"== count by (site, instance) (probe_success{{{PROBE_JOB}, {PARTNERS}, {ECHO}}}))\n"
        f"and count by (site, instance) (probe_success{{{PROBE_JOB}, {PARTNERS}, {ECHO}}})"
        f" >= {MIN_PARTNERS_FOR_ALL_FAILING}",
        FOR_ALL_PARTNERS,
        "critical",
        "Ingen partnerregion nås via DICOM från {{ $site }}",
        "Alla {{ $value }} partnerregioner misslyckas samtidigt från {{ $site }}: felet ligger "
        "troligen hos oss, i Region Kronobergs nätverk, Sjunet eller brandväggen "
        "(Problem med att skicka, punkt 3 och 4).",
        extra_labels=STAFF,
        next_step=switch(
            [(f'eq .Labels.site "{site}"', routine.next_step(CONFIG, "all_partners_failing", site))
             for site in CONFIG.sites],
            routine.next_step(CONFIG, "all_partners_failing")),
    )
    latency = alert(
        "DicomEchoLatencyHigh",
        f"avg_over_time(probe_duration_seconds{{{PROBE_JOB}, {ECHO}}}[{ECHO_LATENCY_WINDOW}])\n"
        f"> {ECHO_LATENCY_WARNING_SECONDS}\n"
        f"and on (target, module, instance) (probe_success{{{PROBE_JOB}, {ECHO}}} == 1)",
        FOR_ECHO_LATENCY,
        "warning",
        "Långsam DICOM-förbindelse till {{ $labels.target }} ({{ $labels.ae_title }})",
        "C-ECHO till {{ $labels.target }} från {{ $site }} tar i snitt "
        "{{ $value | humanizeDuration }} (gräns "
        f"{decimal(ECHO_LATENCY_WARNING_SECONDS)} s). Överföringar kan bli långsamma eller "
        "avbrytas; kontrollera nätverket och mottagarens system.",
        extra_labels=IT,
    )
    probe_scrape = alert(
        "DicomProbeScrapeFailing",
        f"up{{{PROBE_JOB}}} == 0",
        FOR_PROBE_SCRAPE,
        "warning",
        "Prometheus får inget probsvar för {{ $labels.target }}",
        "Prometheus hämtar inte /probe för {{ $labels.target }} ({{ $labels.module }}) "
        "från exportern {{ $labels.instance }}: svaret tar längre tid än scrape_timeout "
        "eller exportern nås inte. Övervakningen av målet är blind.",
        extra_labels=IT,
    )
    stale = alert(
        "DicomProbesStale",
        f"increase(dicom_exporter_probes_total{{{EXPORTER_JOB}}}[{STALE_WINDOW}]) == 0",
        FOR_STALE,
        "warning",
        "{{ $labels.target }} ({{ $labels.module }}) har inte kontrollerats på "
        f"{spoken(STALE_WINDOW)}",
        "Exportern {{ $labels.instance }} har inte kört någon prob mot {{ $labels.target }} "
        f"med modulen {{{{ $labels.module }}}} på {spoken(STALE_WINDOW)}. Prometheus skrapar inte "
        "målet (service discovery, scrape-konfiguration): ett fel där skulle inte synas.",
        extra_labels=IT,
    )
    exporter_down = alert(
        "DicomExporterDown",
        f"up{{{EXPORTER_JOB}}} == 0 or absent(up{{{EXPORTER_JOB}}})",
        FOR_EXPORTER_DOWN,
        "critical",
        "DICOM-övervakningen {{ $labels.instance }} är nere",
        "Prometheus når inte dicom-exporter {{ $labels.instance }}. Ingen DICOM-överföring "
        "övervakas därifrån: fel upptäcks inte förrän en överföring uteblir.",
        with_instance=False,
        extra_labels=IT,
    )
    reload_failed = alert(
        "DicomExporterConfigReloadFailed",
        f"dicom_exporter_config_last_reload_successful{{{EXPORTER_JOB}}} == 0",
        FOR_RELOAD,
        "warning",
        "Ny konfiguration för dicom-exporter {{ $labels.instance }} kunde inte läsas",
        "Senaste omladdningen av konfigurationen misslyckades; exportern kör vidare med den "
        "tidigare. Kör dicom-exporter check-config och rätta filen.",
        extra_labels=IT,
    )
    watchdog = alert(
        "Watchdog",
        "vector(1)",
        "0s",
        "none",
        "Larmkedjan fungerar",
        "Detta larm ska alltid vara aktivt. Om det tystnar fungerar inte kedjan "
        "Prometheus → Alertmanager → personsökare.",
        with_instance=False,
        extra_labels=IT,
    )
    on_fallback = alert(
        "RouteOnFallback",
        'dicom_route_active{status="fallback"} == 1',
        FOR_ROUTE,
        "warning",
        "{{ $site }} → {{ $region }}: {{ $labels.path }}",
        "Ordinarie väg från {{ $site }} till {{ $region }} är stängd. Den reservväg som "
        "svarar mot felet och är öppen: {{ $labels.path }}.",
        with_instance=True,
        extra_labels=STAFF,
        next_step=fallback_steps(),
    )
    no_route = alert(
        "NoRouteAvailable",
        'dicom_route_active{status="none"} == 1',
        FOR_ROUTE,
        "critical",
        "{{ $site }} → {{ $region }}: ingen väg öppen",
        "Varken ordinarie väg eller någon reservväg som svarar mot felet är öppen från "
        "{{ $site }} till {{ $region }}. Sista utväg: {{ $labels.path }}.",
        extra_labels=STAFF,
        next_step=no_route_steps(),
    )
    receiver = alert(
        "ReceiverRejectsPartner",
        f"probe_dicom_failure_reason{{{PROBE_JOB}, {RECEIVE}, {RECEIVER_REFUSALS}}} == 1",
        FOR_RECEIVER,
        "critical",
        "{{ $labels.ae_title }} tar inte emot DICOM från {{ $labels.partner }}",
        "Vår länkdator {{ $labels.ae_title }} ({{ $site }}) avvisar {{ $labels.partner }} "
        "(orsak {{ $labels.reason }}) när den anropar med sin AE-titel. Undersökningar från "
        "{{ $labels.partner }} kommer inte fram: kommunikation mellan sändande och mottagande "
        "enhet är felaktigt konfigurerad (Problem med att ta emot, punkt 3).",
        extra_labels=STAFF,
        next_step=routine.next_step(CONFIG, "receiver_rejects"),
    )
    tls_expiry = alert(
        "DicomTLSCertificateExpiringSoon",
        f"(probe_dicom_tls_peer_certificate_expiry_seconds{{{PROBE_JOB}}} - time())\n"
        f"< {TLS_EXPIRY_WARNING_DAYS} * 86400",
        FOR_TLS_EXPIRY,
        "warning",
        "Certifikatet för {{ $labels.target }} ({{ $labels.ae_title }}) går snart ut",
        "TLS-certifikatet som {{ $labels.target }} visar går ut om "
        "{{ $value | humanizeDuration }}. När det har gått ut kan vi inte skicka DICOM dit "
        "(orsak tls). Be mottagande enhet förnya certifikatet i tid.",
        extra_labels=IT,
    )
    return [link_down, partner_unreachable, rejects, cannot_receive, all_failing, latency,
            probe_scrape, stale, exporter_down, reload_failed, watchdog, on_fallback, no_route,
            receiver, tls_expiry]


def _literal(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def render() -> str:
    yaml.SafeDumper.add_representer(str, _literal)
    body = yaml.safe_dump(
        {"groups": [{"name": "dicom", "rules": rules()}]},
        sort_keys=False, allow_unicode=True, width=10_000,
    )
    return (
        "# Generated by alerts/build.py from monitoring/config.yml: do not edit.\n"
        "# Change the config (or the texts in alerts/build.py), then run\n"
        "# `python -m tools.generate`.\n" + body
    )


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
