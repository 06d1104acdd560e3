"""Builds alerts/dicom.rules.yml: every selector and threshold lives here.

Like a monitoring mixin's config file: change a value below, run
`python alerts/build.py`, commit both files. A test fails when the rules file
is not what this script builds, so the two never drift apart.

Texts are Swedish: they are read by the staff on call, in the words of the
routine "Reservrutin bildöverföring till annan region". The explanation of a
failure reason comes from exporter/reasons.py, the same text the CLI prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.reasons import REGION_NAMES, ROUTINE, Reason

# -- Selectors -------------------------------------------------------------
# Prometheus jobs as in examples/prometheus.yml.
PROBE_JOB = 'job="dicom_probe"'
EXPORTER_JOB = 'job="dicom_exporter"'
# Target roles (the `role` label in the exporter config).
LINK_COMPUTERS = 'role="link_computer", direction!="receive"'
# Receive-side probes: our link computers called with a partner's AE title.
RECEIVE = 'direction="receive"'
PARTNERS = 'role=~"partner|relay"'
# Which probers say what (the `prober` label /sd sets).
REACHABILITY = 'prober=~"tcp|echo"'
ECHO = 'prober="echo"'
RECEIVING = 'prober=~"negotiate|store"'
# Reasons that mean "the partner turns our association away on configuration".
AE_REJECTIONS = 'reason=~"rejected_calling_ae|rejected_called_ae"'
# Reasons that mean our receiver turns a partner away (not: the receiver is down).
RECEIVER_REFUSALS = (
    'reason=~"rejected_calling_ae|rejected_called_ae|rejected_other|no_accepted_context"'
)

# -- Thresholds and waiting times --------------------------------------------
# With a 15 s scrape and evaluation interval, `for: 45s` needs four failing
# probes in a row: one lost probe never pages, a dead link computer pages in
# about 75-90 s (failure, 45 s, evaluation, Alertmanager's group_wait).
FOR_LINK_COMPUTER = "45s"
FOR_PARTNER = "1m"
FOR_ALL_PARTNERS = "45s"
FOR_CANNOT_RECEIVE = "2m"
ECHO_LATENCY_WARNING_SECONDS = 0.5  # partners are milliseconds away on Sjunet
ECHO_LATENCY_WINDOW = "5m"
FOR_ECHO_LATENCY = "10m"
STALE_WINDOW = "10m"  # a configured probe that did not run for this long
FOR_STALE = "5m"
FOR_PROBE_SCRAPE = "5m"
FOR_EXPORTER_DOWN = "1m"
FOR_RELOAD = "1m"
FOR_ROUTE = "1m"
TLS_EXPIRY_WARNING_DAYS = 21  # time to order and install a certificate at both ends
FOR_TLS_EXPIRY = "15m"
FOR_RECEIVER = "1m"
MIN_PARTNERS_FOR_ALL_FAILING = 2

# Where runbook links point when an alert has no exporter `instance` label.
RUNBOOK_FALLBACK_BASE = "http://dicom-exporter.vaxjo.invalid:10104"
# Label values as the staff say them.
SITE_NAMES = {"vaxjo": "Växjö", "ljungby": "Ljungby"}


OUT = Path(__file__).resolve().parent / "dicom.rules.yml"

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


def runbook(name: str, with_instance: bool = True) -> str:
    base = "http://{{ $labels.instance }}" if with_instance else RUNBOOK_FALLBACK_BASE
    return f"{base}/runbooks/{name}"


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
) -> dict:
    annotations = {
        "summary": NAMES + summary,
        "description": NAMES + (REASON if reason else "") + description,
        "runbook_url": runbook(name, with_instance),
    }
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
        "Länkadator {{ $labels.ae_title }} är ur funktion (sett från {{ $site }})",
        "Länkadator {{ $labels.ae_title }} svarar inte på DICOM från {{ $site }}. "
        "Orsak: {{ $reason }}. " + EXPLANATION + " "
        "Enligt rutinen: starta om {{ $labels.ae_title }} och prova igen. "
        '{{ if eq $labels.ae_title "Z83680" }}Under tiden skickar Växjö undersökningar '
        "för Ljungby; Ljungby kan bränna DVD på dator med Intellispace Portal."
        "{{ else }}Under tiden skickar Ljungby via Blekinge, Halland eller Jönköping; "
        "annars bränn DVD på dator med Intellispace Portal i granskningen.{{ end }}",
        reason=True,
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
        "Orsak: {{ $reason }}. " + EXPLANATION + " "
        "Kontakta mottagande enhet och fråga om de har störningar i DICOM-överföring. "
        '{{ if eq $labels.region "skane" }}Skåne: prova att skicka via Blekinge eller Halland.'
        "{{ else }}Skicka via annan region eller bränn DVD.{{ end }}",
        reason=True,
    )
    rejects = alert(
        "DicomPartnerRejectsAssociation",
        f"probe_dicom_failure_reason{{{PROBE_JOB}, {PARTNERS}, {AE_REJECTIONS}}} == 1",
        FOR_PARTNER,
        "critical",
        "{{ $region }} ({{ $labels.ae_title }}) avvisar vår DICOM-förbindelse",
        '{{ if eq $labels.reason "rejected_calling_ae" }}'
        "{{ $labels.target }} känner inte igen vår AE-titel (calling AE)."
        "{{ else }}{{ $labels.target }} har inte AE-titeln {{ $labels.ae_title }} "
        "som vi anropar (called AE).{{ end }} "
        "Kommunikation mellan mottagare och sändare är inte rätt konfigurerad "
        "(Problem med att skicka, punkt 5). Kontakta mottagande enhet och jämför "
        "AE-titel, värdnamn och port på båda sidor.",
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
        "Mottagande region kan inte ta emot DICOM (Problem med att skicka, punkt 6). "
        "Kontakta mottagande enhet; skicka via annan region eller bränn DVD.",
        reason=True,
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
        "(Problem med att skicka, punkt 3 och 4). Starta om länkadatorerna Z97117 och "
        "Z83680, kontakta sedan administratör som kontaktar IT.",
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
        f"{ECHO_LATENCY_WARNING_SECONDS:g} s). Överföringar kan bli långsamma eller "
        "avbrytas; kontrollera nätverket och mottagarens system.",
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
    )
    stale = alert(
        "DicomProbesStale",
        f"increase(dicom_exporter_probes_total{{{EXPORTER_JOB}}}[{STALE_WINDOW}]) == 0",
        FOR_STALE,
        "warning",
        "{{ $labels.target }} ({{ $labels.module }}) har inte kontrollerats på "
        f"{STALE_WINDOW}",
        "Exportern {{ $labels.instance }} har inte kört någon prob mot {{ $labels.target }} "
        f"med modulen {{{{ $labels.module }}}} på {STALE_WINDOW}. Prometheus skrapar inte "
        "målet (service discovery, scrape-konfiguration): ett fel där skulle inte synas.",
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
    )
    reload_failed = alert(
        "DicomExporterConfigReloadFailed",
        f"dicom_exporter_config_last_reload_successful{{{EXPORTER_JOB}}} == 0",
        FOR_RELOAD,
        "warning",
        "Ny konfiguration för dicom-exporter {{ $labels.instance }} kunde inte läsas",
        "Senaste omladdningen av konfigurationen misslyckades; exportern kör vidare med den "
        "tidigare. Kör dicom-exporter check-config och rätta filen.",
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
    )
    on_fallback = alert(
        "RouteOnFallback",
        'dicom_route_active{status="fallback"} == 1',
        FOR_ROUTE,
        "warning",
        "{{ $site }} → {{ $region }}: skicka {{ $labels.path }}",
        "Ordinarie väg från {{ $site }} till {{ $region }} är stängd. Den första öppna "
        "reservvägen enligt rutinen är: {{ $labels.path }}. Skicka den vägen tills ordinarie "
        "väg är öppen igen, och meddela röntgen/klinfys.",
    )
    no_route = alert(
        "NoRouteAvailable",
        'dicom_route_active{status="none"} == 1',
        FOR_ROUTE,
        "critical",
        "{{ $site }} → {{ $region }}: ingen väg, {{ $labels.path }}",
        "Varken ordinarie väg eller någon reservväg från {{ $site }} till {{ $region }} är "
        "öppen. Enligt rutinen: {{ $labels.path }}. "
        '{{ if eq $labels.partner "skane" }}Kan Region Skåne inte ta emot bildöverföring från '
        "någon annan region, måste det övervägas att skicka patienten till annan region; "
        "remitterande enhet tar den kontakten.{{ end }}",
    )
    receiver = alert(
        "ReceiverRejectsPartner",
        f"probe_dicom_failure_reason{{{PROBE_JOB}, {RECEIVE}, {RECEIVER_REFUSALS}}} == 1",
        FOR_RECEIVER,
        "critical",
        "{{ $labels.ae_title }} tar inte emot DICOM från {{ $labels.partner }}",
        "Vår länkadator {{ $labels.ae_title }} ({{ $site }}) avvisar {{ $labels.partner }} "
        "(orsak {{ $labels.reason }}) när den anropar med sin AE-titel. Undersökningar från "
        "{{ $labels.partner }} kommer inte fram: kommunikation mellan sändande och mottagande "
        "enhet är felaktigt konfigurerad (Problem med att ta emot, punkt 3). Kontrollera "
        "att {{ $labels.partner }} finns med rätt AE-titel i {{ $labels.ae_title }}s "
        "konfiguration.",
    )
    tls_expiry = alert(
        "DicomTLSCertificateExpiringSoon",
        f"(probe_ssl_earliest_cert_expiry{{{PROBE_JOB}}} - time())\n"
        f"< {TLS_EXPIRY_WARNING_DAYS} * 86400",
        FOR_TLS_EXPIRY,
        "warning",
        "Certifikatet för {{ $labels.target }} ({{ $labels.ae_title }}) går snart ut",
        "TLS-certifikatet som {{ $labels.target }} visar går ut om "
        "{{ $value | humanizeDuration }}. När det har gått ut kan vi inte skicka DICOM dit "
        "(orsak tls). Be mottagande enhet förnya certifikatet i tid.",
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
        "# Generated by alerts/build.py: edit the selectors and thresholds there,\n"
        "# then run `python alerts/build.py`.\n" + body
    )


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
