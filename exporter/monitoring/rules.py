"""The Prometheus alert rules (alerts/dicom.rules.yml), from the monitoring and exporter configs.

Selectors, thresholds and waits come from the monitoring config (shared with
the dashboards), site names, roles and targets from the exporter config.
`python -m tools.generate` writes the repository's copy for the example
config; a test fails when the committed file is not what this module makes.

Texts are Swedish, for the staff on call. Every next step (annotation
`next_step`) is rendered at build time by exporter/routine from the exporter
config's `routine:` section, the same function the status page and the CLI
call, and selected in the rule by the alert's labels: the same state gives the
same words everywhere. The explanation of a failure reason comes from
exporter/reasons.py. Labels `audience` route the alert: `staff` faults are for
the routine's communicators (Arkivet, LARS) and the administrators, `it`
faults for the administrators and radiology IT only.

To add rules, add a group to `groups()` (or an alert to `Rules.alerts`): every
alert goes through `Rules.alert`, which adds the names, runbook link and
labels the same way for all.
"""

from __future__ import annotations

from typing import Any

import yaml

from exporter import routine
from exporter.config import Config, Target
from exporter.config.routine_model import SLOTS
from exporter.config.strict import format_duration, parse_duration
from exporter.config.topology import Route
from exporter.metrics import HOLIDAY_CALENDAR_END, ROUTE_HOP_STATE
from exporter.monitoring import alertmanager, outages, slo
from exporter.monitoring.settings import Monitoring
from exporter.reasons import Reason
from exporter.routine import words

Rule = dict[str, Any]

STAFF = {"audience": "staff"}  # the routine's transfer faults: Arkivet/LARS communicate them
IT = {"audience": "it"}  # monitoring faults and early warnings: administrators and IT only
# Reasons that mean "the partner turns our association away on configuration".
AE_REJECTIONS = 'reason=~"rejected_calling_ae|rejected_called_ae"'
# Reasons that mean our receiver turns a partner away (not: the receiver is down).
RECEIVER_REFUSALS = (
    'reason=~"rejected_calling_ae|rejected_called_ae|rejected_other|no_accepted_context"'
)
# The calendar's end is a fixed time: an hour of the condition is no flap.
CALENDAR_FOR = "1h"
# Its rules' own file (promtool tests step through decades to reach it).
CALENDAR_RULES = "dicom.calendar.rules.yml"
STEP_DAYS = 10
_UNITS = {"s": "sekunder", "m": "minuter", "h": "timmar", "d": "dagar"}


def spoken(duration: str) -> str:
    """ "10m" -> "10 minuter": our prose writes durations out."""
    return f"{duration[:-1]} {_UNITS[duration[-1]]}" if duration[-1] in _UNITS else duration


def decimal(value: float | int | str) -> str:
    """0.5 -> "0,5": Swedish decimal comma."""
    return f"{value:g}".replace(".", ",")

# -- Template pieces ---------------------------------------------------------
def _named(label: str, names: dict[str, str]) -> str:
    """`${label}`: the label's value as people say it, the raw value otherwise."""
    return f"{{{{ ${label} := .Labels.{label} }}}}" + "".join(
        f'{{{{ if eq .Labels.{label} "{key}" }}}}{{{{ ${label} = "{name}" }}}}{{{{ end }}}}'
        for key, name in names.items()
    )


# The reason of the latest failed probe of this target, as a template variable.
REASON = (
    '{{ $reason := "okänd" }}'
    "{{ with printf `probe_dicom_failure_reason{target=\"%s\",instance=\"%s\"} == 1` "
    ".Labels.target .Labels.instance | query }}"
    '{{ $reason = (. | first | label "reason") }}{{ end }}'
)
def networks(config: Config) -> str:
    """ "Region Kronobergs nätverk, Sjunet": the config's names of the networks."""
    ours = config.routine.our_network or words.OUR_NETWORK
    return f"{ours}, {config.routine.wide_network or words.WIDE_NETWORK}"


def explanations(config: Config) -> str:
    """The reason's explanation, chosen in the template, with the config's network names."""
    return (
        "".join(
            f'{{{{ {"if" if i == 0 else "else if"} eq $reason "{reason.value}" }}}}'
            f"{routine.explanation(reason, config=config)}"
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



def query_else(query: str, found: str, otherwise: str) -> str:
    """A template that says `found` when the query (over the alert's target and
    instance) returns anything, else `otherwise`: the words depend on which series fail."""
    return (f"{{{{ with printf `{query}` .Labels.target .Labels.instance | query }}}}"
            f"{found}{{{{ else }}}}{otherwise}{{{{ end }}}}")

class Rules:
    """The alert rules for one monitoring config and one exporter config."""

    def __init__(self, m: Monitoring, config: Config) -> None:
        self.m = m
        self.config = config
        self.names = _named("site", m.site_names) + _named("region", dict(config.routine.regions))
        targets = config.targets.values()
        self.links = [t for t in targets if t.labels.get("role") == "link_computer"
                      and t.labels.get("direction") != "receive"]
        self.partner_targets = [t for t in targets
                                if t.labels.get("role") in ("partner", "relay")]
        # Read by the fallback, no-route and last-resort texts alike: made once.
        self.slots = {name: self._slots(route) for name, route in config.routes.items()}

    def by_target(self, situation: str, targets: list[Target]) -> str:
        """`next_step` of a target alert: the routine's steps for the alert's `target`."""
        return switch(
            [(f'eq .Labels.target "{t.name}"',
              routine.target_next_step(self.config, situation, t)) for t in targets],
            routine.next_step(self.config, situation),
        )

    def _slots(self, route: Route) -> dict[str, str]:
        """The route's slots as templates: each hop's words when that hop is down now
        (the exporter's dicom_route_hop_state, the route states' own reading), the
        slot's default when none of them is."""
        out = {}
        for slot in SLOTS:
            cases, default = routine.slot_cases(self.config, slot, route)
            said = f"$said_{slot}"
            text = f"{{{{ {said} := false }}}}" + "".join(
                f"{{{{ if printf `{ROUTE_HOP_STATE}{{instance=\"%s\",target=\"{hop}\","
                f"state=\"down\"}} == 1` .Labels.instance | query }}}}"
                f"{{{{ if {said} }}}} {{{{ end }}}}{{{{ {said} = true }}}}{words_of}{{{{ end }}}}"
                for hop, words_of in cases)
            out[slot] = (text + f"{{{{ if not {said} }}}}{default}{{{{ end }}}}"
                         if cases else default)
        return out

    def fallback_steps(self) -> str:
        cases = [
            (f'and (eq .Labels.route "{route.name}") (eq .Labels.path "{path.name}")',
             routine.fallback_next_step(self.config, route, path, slots=self.slots[route.name]))
            for route in self.config.routes.values() for path in route.fallbacks
        ]
        return switch(cases, "")

    def no_route_steps(self) -> str:
        return switch(
            [(f'eq .Labels.route "{route.name}"',
              routine.no_route_next_step(self.config, route, slots=self.slots[route.name]))
             for route in self.config.routes.values()],
            routine.next_step(self.config, "no_route"),
        )

    def last_resort(self) -> str:
        """What the routine says when no path is open, for what is down now."""
        return switch(
            [(f'eq .Labels.route "{route.name}"', self.slots[route.name]["last_resort"])
             for route in self.config.routes.values()],
            routine.slot_text(self.config.routine.steps_for("last_resort")),
        )

    def alert(
        self,
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
    ) -> Rule:
        annotations = {
            "summary": self.names + summary,
            "description": self.names + (REASON if reason else "") + description,
            "runbook_url": self.m.runbook(name, with_instance),
        }
        if next_step:
            annotations["next_step"] = next_step
        if reason:
            annotations["reason"] = REASON + "{{ $reason }}"
        return {"alert": name, "expr": expr, "for": duration,
                "labels": {"severity": severity, **(extra_labels or {})},
                "annotations": annotations}

    def alerts(self) -> list[Rule]:
        m, config, alert = self.m, self.config, self.alert
        # Selectors, from the monitoring config and the table of prober kinds.
        probe, exporter = m.probe, m.exporter
        link_computers, receive, partners = m.link_computers, m.receive, m.partners
        reachability, echo, receiving = m.reachability, m.echo, m.receiving
        # Thresholds, from the monitoring config.
        latency_warning = m.thresholds["echo_latency_warning_seconds"]
        latency_window = m.thresholds["echo_latency_window"]
        stale_window = str(m.thresholds["stale_window"])
        tls_days = m.thresholds["tls_expiry_warning_days"]
        min_partners = m.thresholds["min_partners_for_all_failing"]
        explanation = explanations(config)
        slow = f"probe_success{{{probe}, {link_computers}, {m.beyond_reachability}}}"
        slow_window = format_duration(parse_duration(m.probe_interval_by_role["partner"]) * 2.5)
        link_down = alert(
            words.ALERT["link_computer_down"],
            # Every module, not only reachability: a link computer that answers but
            # refuses CT (negotiate, store) closes its hop in the route state too.
            # Those modules are scraped with the partners, less often than the
            # link computers' own job: one failed sample stays the newest for a
            # whole partner interval, which would stretch a blip past `for:`.
            # They count as down only when at least two scrapes in a row failed:
            # every scrape of the last 2.5 intervals (two or three of them).
            f"min by (target, ae_title, site, instance) (\n"
            f"  probe_success{{{probe}, {link_computers}, {reachability}}}\n"
            f"  or (max_over_time({slow}[{slow_window}])\n"
            f"      and count_over_time({slow}[{slow_window}]) >= 2)\n"
            f") == 0",
            m.for_by_role["link_computer"],
            "critical",
            "Länkdator {{ $labels.ae_title }} är ur funktion (sett från {{ $site }})",
            "Länkdator {{ $labels.ae_title }} "
            + query_else(f'probe_success{{target="%s",instance="%s",{reachability},'
                         f'direction!="receive"}} == 0',
                         words.LINK_DOWN_UNREACHABLE, words.LINK_DOWN_REFUSES_CT)
            + ". Orsak: {{ $reason }}. " + explanation,
            reason=True,
            extra_labels=STAFF,
            next_step=self.by_target("link_computer_down", self.links),
        )
        partner_unreachable = alert(
            words.ALERT["partner_unreachable"],
            f"(probe_success{{{probe}, {partners}, {echo}}} == 0)\n"
            f"unless on (target, instance)\n"
            f"(probe_dicom_failure_reason{{{probe}, {AE_REJECTIONS}}} == 1)",
            m.for_by_role["partner"],
            "critical",
            "DICOM till {{ $region }} ({{ $labels.ae_title }}) fungerar inte från {{ $site }}",
            "{{ $labels.target }} ({{ $labels.ae_title }}) svarar inte på C-ECHO från {{ $site }}. "
            "Orsak: {{ $reason }}. " + explanation + " " + words.PARTNER_VANTAGE,
            reason=True,
            extra_labels=STAFF,
            next_step=self.by_target("partner_unreachable", self.partner_targets),
        )
        rejects = alert(
            words.ALERT["partner_rejects"],
            f"probe_dicom_failure_reason{{{probe}, {partners}, {AE_REJECTIONS}}} == 1",
            m.for_by_role["partner"],
            "critical",
            "{{ $region }} ({{ $labels.ae_title }}) avvisar vår DICOM-förbindelse",
            '{{ if eq $labels.reason "rejected_calling_ae" }}'
            "{{ $labels.target }} känner inte igen övervakningens AE-titel (calling AE)."
            "{{ else }}{{ $labels.target }} har inte AE-titeln {{ $labels.ae_title }} "
            "som vi anropar (called AE); vissa system svarar så även när det är vår egen "
            "AE-titel de inte känner igen.{{ end }} "
            # Both rejections are the same send cause (exporter/reasons.py): one text.
            + routine.partner_send_causes(config, Reason.REJECTED_CALLING_AE),
            extra_labels=STAFF,
            next_step=self.by_target("partner_rejects", self.partner_targets),
        )
        cannot_receive = alert(
            words.ALERT["partner_cannot_receive"],
            f"(probe_success{{{probe}, {partners}, {receiving}}} == 0)\n"
            f"and on (target, instance)\n"
            f"(probe_success{{{probe}, {echo}}} == 1)",
            m.wait("cannot_receive"),
            "critical",
            "{{ $region }} ({{ $labels.ae_title }}) svarar men kan inte ta emot bilder",
            "{{ $labels.target }} svarar på C-ECHO men {{ $labels.module }} misslyckas. "
            "Orsak: {{ $reason }}. " + explanation + " "
            # The routine's send causes of the reason (exporter/reasons.py): a store
            # that went through but may not be verified is configuration (5), a refused
            # image type configuration or a region that cannot receive (5, 6).
            + switch([(f'eq $reason "{reason.value}"', routine.partner_send_causes(config, reason))
                      for reason in Reason], ""),
            reason=True,
            extra_labels=STAFF,
            next_step=self.by_target("partner_cannot_receive", self.partner_targets),
        )
        all_failing = alert(
            words.ALERT["all_partners_failing"],
            f"(count by (site, instance) "
            f"(probe_success{{{probe}, {partners}, {echo}}} == 0)\n"
            f"== count by (site, instance) (probe_success{{{probe}, {partners}, {echo}}}))\n"
            f"and count by (site, instance) (probe_success{{{probe}, {partners}, {echo}}})"
            f" >= {min_partners}",
            m.wait("all_partners"),
            "critical",
            "Ingen partnerregion nås via DICOM från {{ $site }}",
            "Alla {{ $value }} partnerregioner misslyckas samtidigt från {{ $site }}: felet ligger "
            f"troligen hos oss, i {networks(config)} eller brandväggen "
            "(Problem med att skicka, punkt 3 och 4).",
            extra_labels=STAFF,
            next_step=switch(
                [(f'eq .Labels.site "{site}"',
                  routine.next_step(config, "all_partners_failing", site))
                 for site in config.sites],
                routine.next_step(config, "all_partners_failing")),
        )
        latency = alert(
            words.ALERT["echo_latency"],
            f"avg_over_time(probe_duration_seconds{{{probe}, {echo}}}[{latency_window}])\n"
            f"> {latency_warning}\n"
            f"and on (target, module, instance) (probe_success{{{probe}, {echo}}} == 1)",
            m.wait("echo_latency"),
            "warning",
            "Långsam DICOM-förbindelse till {{ $labels.target }} ({{ $labels.ae_title }})",
            "C-ECHO till {{ $labels.target }} från {{ $site }} tar i snitt "
            "{{ $value | humanizeDuration }} (gräns "
            f"{decimal(latency_warning)} s). Överföringar kan bli långsamma eller "
            "avbrytas; kontrollera nätverket och mottagarens system.",
            extra_labels=IT,
        )
        probe_scrape = alert(
            words.ALERT["probe_scrape"],
            f"up{{{probe}}} == 0",
            m.wait("probe_scrape"),
            "warning",
            "Prometheus får inget probsvar för {{ $labels.target }}",
            "Prometheus hämtar inte /probe för {{ $labels.target }} ({{ $labels.module }}) "
            "från exportern {{ $labels.instance }}: svaret tar längre tid än scrape_timeout "
            "eller exportern nås inte. Övervakningen av målet är blind.",
            extra_labels=IT,
        )
        stale = alert(
            words.ALERT["stale"],
            f"increase(dicom_exporter_probes_total{{{exporter}}}[{stale_window}]) == 0",
            m.wait("stale"),
            "warning",
            "{{ $labels.target }} ({{ $labels.module }}) har inte kontrollerats på "
            f"{spoken(stale_window)}",
            "Exportern {{ $labels.instance }} har inte kört någon prob mot {{ $labels.target }} "
            f"med modulen {{{{ $labels.module }}}} på {spoken(stale_window)}. "
            "Prometheus skrapar inte målet (service discovery, scrape-konfiguration): "
            "ett fel där skulle inte synas.",
            extra_labels=IT,
        )
        exporter_down = alert(
            words.ALERT["exporter_down"],
            f"up{{{exporter}}} == 0 or absent(up{{{exporter}}})",
            m.wait("exporter_down"),
            "critical",
            "DICOM-övervakningen {{ $labels.instance }} är nere",
            "Prometheus når inte dicom-exporter {{ $labels.instance }}. Ingen DICOM-överföring "
            "övervakas därifrån: fel upptäcks inte förrän en överföring uteblir.",
            with_instance=False,
            extra_labels=IT,
        )
        reload_failed = alert(
            words.ALERT["reload_failed"],
            f"dicom_exporter_config_last_reload_successful{{{exporter}}} == 0",
            m.wait("reload"),
            "warning",
            "Ny konfiguration för dicom-exporter {{ $labels.instance }} kunde inte läsas",
            "Senaste omladdningen av konfigurationen misslyckades; exportern kör vidare med den "
            "tidigare. Kör dicom-exporter check-config och rätta filen.",
            extra_labels=IT,
        )
        schedule_stalled = alert(
            words.ALERT["schedule_stalled"],
            f"time() - dicom_exporter_schedule_last_round_timestamp_seconds{{{exporter}}}\n"
            f"> 3 * dicom_exporter_schedule_interval_seconds{{{exporter}}} + 60",
            m.wait("schedule"),
            "warning",
            "Exportern {{ $labels.instance }} kontrollerar inte längre målen själv",
            "Exporterns inbyggda schema (--probe.interval) har inte avslutat någon omgång på "
            "{{ $value | humanizeDuration }}. Målen kontrolleras bara när Prometheus hämtar "
            "/probe; statussidan och dicom_exporter_last_probe_success blir inaktuella.",
            extra_labels=IT,
        )
        watchdog = alert(
            words.ALERT["watchdog"],
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
            words.ALERT["route_fallback"],
            'dicom_route_active{status="fallback"} == 1',
            m.wait("route"),
            "warning",
            "{{ $site }} → {{ $region }}: {{ $labels.path }}",
            "Ordinarie väg från {{ $site }} till {{ $region }} är stängd. Den reservväg som "
            "svarar mot felet och är öppen: {{ $labels.path }}.",
            with_instance=True,
            extra_labels=STAFF,
            next_step=self.fallback_steps(),
        )
        no_route = alert(
            words.ALERT["no_route"],
            # No way open, and it stays so while the route is merely unknown (results
            # stale or missing): it resolves only when a way is really open (issue 27).
            'dicom_route_active{status="none"} == 1\n'
            "or\n"
            '(last_over_time(dicom_route_active{status="none"}[1h]) == 1\n'
            ' and on (route, instance) dicom_route_active{status="unknown"} == 1)',
            m.wait("route"),
            "critical",
            "{{ $site }} → {{ $region }}: ingen väg öppen",
            "Varken ordinarie väg eller någon reservväg som svarar mot felet är öppen från "
            "{{ $site }} till {{ $region }}. Sista utväg: " + self.last_resort(),
            extra_labels=STAFF,
            next_step=self.no_route_steps(),
        )
        # The partner's region as people say it ("Skåne"), from the partner label.
        partner = _named("partner", {t.name: routine.place(config, t)
                                     for t in self.partner_targets})
        receiver = alert(
            words.ALERT["receiver_rejects"],
            f"probe_dicom_failure_reason{{{probe}, {receive}, {RECEIVER_REFUSALS}}} == 1",
            m.wait("receiver"),
            "critical",
            partner + "{{ $labels.ae_title }} tar inte emot DICOM från {{ $partner }}",
            partner + "Vår länkdator {{ $labels.ae_title }} ({{ $site }}) avvisar {{ $partner }} "
            "(orsak {{ $labels.reason }}) när den anropar med sin AE-titel. Undersökningar från "
            "{{ $partner }} kommer inte fram. "
            + switch([(f'eq .Labels.reason "{reason.value}"',
                       routine.receiver_causes(config, reason))
                      for reason in sorted(routine.RECEIVER_REFUSALS)], ""),
            extra_labels=STAFF,
            next_step=routine.next_step(config, "receiver_rejects"),
        )
        tls_expiry = alert(
            words.ALERT["certificate"],
            f"(probe_ssl_earliest_cert_expiry{{{probe}}} - time())\n"
            f"< {tls_days} * 86400",
            m.wait("tls_expiry"),
            "warning",
            "Certifikatet för {{ $labels.target }} ({{ $labels.ae_title }}) går snart ut",
            "TLS-certifikatet som {{ $labels.target }} visar går ut om "
            "{{ $value | humanizeDuration }}. När det har gått ut kan vi inte skicka DICOM dit "
            "(orsak tls). Be mottagande enhet förnya certifikatet i tid.",
            extra_labels=IT,
        )
        return [link_down, partner_unreachable, rejects, cannot_receive, all_failing, latency,
                probe_scrape, stale, exporter_down, reload_failed, schedule_stalled, watchdog,
                on_fallback, no_route, receiver, tls_expiry]


def _literal(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, in this dumper only (not every SafeDumper)."""


_Dumper.add_representer(str, _literal)


def _calendar_texts(m: Monitoring, remaining: str) -> tuple[str, str]:
    """Summary and description of the calendar warning (`remaining`: a template or a value)."""
    span = m.alertmanager.holidays.span
    return (
        "Larmens helgdagskalender tar slut {{ $labels.calendar_end }}",
        "Alertmanagers helgdagar (då larmen går till kommunikatören utanför kontorstid) "
        f"är utskrivna för {span[0]} till {span[-1]}; kalendern tar slut om {remaining}. "
        "Därefter larmas helgdagar som vardagar. Flytta alertmanager.holidays.start_year i "
        "övervakningens konfiguration framåt, generera om och installera alertmanager.yml.",
    )


def calendar_rules(m: Monitoring, config: Config) -> list[Rule]:
    """When the Alertmanager's holiday calendar ends, and a warning to IT before.

    The generated calendar holds a fixed span of years (the monitoring
    config's, never today's date); from its end a holiday pages as a workday.
    """
    ends = alertmanager.calendar_end(m)
    warn = int(parse_duration(m.alertmanager.holidays.warn_before))
    summary, description = _calendar_texts(m, "{{ $value | humanizeDuration }}")
    rule = Rules(m, config).alert(
        words.ALERT["holiday_calendar"], f"{HOLIDAY_CALENDAR_END} - time() < {warn}",
        CALENDAR_FOR, "warning", summary, description, with_instance=False, extra_labels=IT)
    # Nothing to name: the calendar has no site, region or target.
    for key in ("summary", "description"):
        rule["annotations"][key] = rule["annotations"][key].removeprefix(Rules(m, config).names)
    return [
        {"record": HOLIDAY_CALENDAR_END, "expr": f"vector({int(ends.timestamp())})",
         "labels": {"calendar_end": f"{ends:%Y-%m-%d}"}},
        rule,
    ]


def _humanized(seconds: int) -> str:
    """Prometheus' humanizeDuration for a whole number of seconds of a day or more."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    return f"{days}d {hours}h {minutes}m {rest}s"


def groups(m: Monitoring, config: Config) -> list[dict[str, Any]]:
    """The rule groups of dicom.rules.yml: one place to add a group."""
    rules = Rules(m, config)
    return [{"name": "dicom", "rules": rules.alerts()},
            *slo.recording_groups(m), outages.group(m),
            {"name": "dicom_slo", "rules": slo.burn_alerts(m, rules.names)}]


def render_calendar_tests(m: Monitoring) -> str:
    """promtool tests of the calendar-end warning, at times computed from the config's span.

    promtool starts every test at the Unix epoch and evaluates every step up to
    the calendar's end, so the rules are their own file and the steps are
    STEP_DAYS long: quiet at the last step before the warning is due, firing
    two steps later (pending, then firing). The warning starts within one step
    of `warn_before`.
    """
    ends = int(alertmanager.calendar_end(m).timestamp())
    warn = int(parse_duration(m.alertmanager.holidays.warn_before))
    step = STEP_DAYS * 86_400
    quiet = (ends - warn) // step * STEP_DAYS
    firing = quiet + 2 * STEP_DAYS
    summary, description = _calendar_texts(m, _humanized(ends - firing * 86_400))
    base = m.runbook_base_url or m.runbook_static_base_url
    test = {
        "name": "the holiday calendar warns IT before it ends, not earlier",
        "interval": f"{STEP_DAYS}d",
        "input_series": [],
        "alert_rule_test": [
            {"eval_time": f"{quiet}d", "alertname": words.ALERT["holiday_calendar"],
             "exp_alerts": []},
            {"eval_time": f"{firing}d", "alertname": words.ALERT["holiday_calendar"],
             "exp_alerts": [{"exp_labels": {
                 "severity": "warning", "audience": "it",
                 "calendar_end": f"{alertmanager.calendar_end(m):%Y-%m-%d}"},
                 "exp_annotations": {
                     "summary": summary.replace(
                         "{{ $labels.calendar_end }}", f"{alertmanager.calendar_end(m):%Y-%m-%d}"),
                     "description": description,
                     # No exporter answers in a promtool test: the static base.
                     "runbook_url":
                         f"{base.rstrip('/')}/runbooks/{words.ALERT['holiday_calendar']}",
                 }}]},
        ],
    }
    body = yaml.dump({"rule_files": [CALENDAR_RULES], "evaluation_interval": f"{STEP_DAYS}d",
                      "tests": [test]}, Dumper=_Dumper, sort_keys=False,
                     allow_unicode=True, width=10_000)
    return ("# Generated by exporter/monitoring/rules.py from the monitoring config: do not\n"
            "# edit. Run it with `promtool test rules alerts/dicom.calendar.test.yml`;\n"
            "# regenerate with `python -m tools.generate`.\n" + body)


def render_calendar(m: Monitoring, config: Config) -> str:
    body = yaml.dump(
        {"groups": [{"name": "dicom_calendar", "rules": calendar_rules(m, config)}]},
        Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)
    return (
        "# Generated by exporter/monitoring/rules.py from the monitoring config\n"
        "# (alertmanager.holidays): do not edit. Load it beside dicom.rules.yml;\n"
        "# regenerate with `python -m tools.generate`.\n" + body
    )


def render(m: Monitoring, config: Config) -> str:
    body = yaml.dump(
        {"groups": groups(m, config)}, Dumper=_Dumper,
        sort_keys=False, allow_unicode=True, width=10_000,
    )
    return (
        "# Generated by exporter/monitoring/rules.py from the monitoring config: do not edit.\n"
        "# Change the config (or the texts in exporter/monitoring/rules.py), then run\n"
        "# `python -m tools.generate`.\n" + body
    )
