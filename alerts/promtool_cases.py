"""The promtool unit tests of the alert rules, written out by hand.

Every expected Swedish text is spelled out here, and for the reason-dependent
texts there is one case per failure reason: a firing and a quiet case for
every alert. `python -m tools.generate` writes them to
alerts/dicom.rules.test.yml, so an operator who changes a threshold can run
`promtool test rules alerts/dicom.rules.test.yml` without the test suite.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any

import yaml

from alerts import slo_cases
from alerts.scenarios import BLIP_Z83680, DVD_OWN, NEXT, SKANE_LAST, Z97117_DVD, fallback, no_route
from exporter.reasons import Reason

OUT = Path(__file__).resolve().parent / "dicom.rules.test.yml"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kronoberg.yml"
INSTANCE = "exporter.vaxjo.invalid:10104"
# The other site's exporter, still answering: where alerts about INSTANCE's loss link.
OTHER_URL = "https://exporter.ljungby.invalid:10104"
Json = dict[str, Any]
AE_REJECTIONS = {Reason.REJECTED_CALLING_AE, Reason.REJECTED_CALLED_AE}


def series(metric: str, values: str, **labels: str) -> Json:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


def probe_labels(target: str, module: str, role: str, site: str, region: str, ae: str) -> Json:
    return {"job": "dicom_probe", "instance": INSTANCE, "target": target, "module": module,
            "prober": module, "role": role, "site": site, "region": region, "ae_title": ae}


def probe(target: str, ae: str, success: str, reason: Reason | None = None, *,
          module: str = "echo", role: str = "partner", site: str = "vaxjo",
          region: str = "skane", duration: str = "0.01+0x40") -> list[Json]:
    """The series one probe target leaves in Prometheus, over 40 scrapes of 15 s."""
    labels = probe_labels(target, module, role, site, region, ae)
    out = [series("probe_success", success, **labels),
           series("probe_duration_seconds", duration, **labels)]
    for each in Reason:
        if reason is each:
            failing = success.replace("0", "X").replace("1", "0").replace("X", "1")
            out.append(series("probe_dicom_failure_reason", failing, **labels, reason=each.value))
    return out


def runbook(name: str) -> str:
    return f"http://{INSTANCE}/runbooks/{name}"


@functools.cache
def explanation(reason: Reason) -> str:
    from exporter import config as config_module
    from exporter import routine

    return routine.explanation(reason, config=config_module.load(EXAMPLE))


def link_down_alert(ae: str, target: str, site: str, site_name: str, reason: Reason,
                    instance: str = INSTANCE, refuses_ct: bool = False) -> Json:
    what = (f"svarar från {site_name} men tar inte emot CT: förhandlingen av bildtyp eller "
            f"lagringen misslyckas, så ingen överföring går via den" if refuses_ct
            else f"svarar inte på DICOM från {site_name}")
    return {
        "exp_labels": {"severity": "critical", "audience": "staff", "target": target,
                       "ae_title": ae, "site": site, "instance": instance},
        "exp_annotations": {
            "summary": f"Länkdator {ae} är ur funktion (sett från {site_name})",
            "description": f"Länkdator {ae} {what}. Orsak: "
                           f"{reason.value}. {explanation(reason)}",
            "runbook_url": f"http://{instance}/runbooks/DicomLinkComputerDown",
            "reason": reason.value,
            "next_step": NEXT[("link_computer_down", target)],
        },
    }


DIRECT = ("Partnern kontrolleras från övervakningens dator, inte från länkdatorn: ett fel "
          "här är partnerns eller nätets, men en brandväggsregel som bara gäller länkdatorns "
          "egen adress syns inte (se nästa steg).")


def partner_unreachable_alert(reason: Reason) -> Json:
    return {
        "exp_labels": {**probe_labels("skane", "echo", "partner", "vaxjo", "skane", "SKANE_PACS"),
                       "severity": "critical", "audience": "staff"},
        "exp_annotations": {
            "summary": "DICOM till Skåne (SKANE_PACS) fungerar inte från Växjö",
            "description": f"skane (SKANE_PACS) svarar inte på C-ECHO från Växjö. Orsak: "
                           f"{reason.value}. {explanation(reason)} {DIRECT}",
            "runbook_url": runbook("DicomPartnerUnreachable"),
            "reason": reason.value,
            "next_step": NEXT[("partner_unreachable", "skane")],
        },
    }


FAILING = "1 1 1 1 0x36"  # up for a minute, then down
UP = "1+0x80"


def case(name: str, input_series: list[Json], checks: list[tuple[str, str, list[Json]]]) -> Json:
    return {
        "name": name,
        "interval": "15s",
        "input_series": input_series,
        "alert_rule_test": [
            {"eval_time": at, "alertname": alert, "exp_alerts": expected}
            for at, alert, expected in checks
        ],
    }


def cases() -> list[Json]:
    out = []
    # -- DicomLinkComputerDown -------------------------------------------------
    out.append(case(
        "a dead link computer pages, naming the computer, its site and the reason",
        probe("z97117", "Z97117", FAILING, Reason.REFUSED, role="link_computer",
              region="kronoberg")
        + probe("z83680", "Z83680", FAILING, Reason.CONNECT_TIMEOUT, role="link_computer",
                site="ljungby", region="kronoberg", module="tcp"),
        [
            ("1m15s", "DicomLinkComputerDown", []),  # failing for 15 s: still pending
            ("3m", "DicomLinkComputerDown", [
                link_down_alert("Z83680", "z83680", "ljungby", "Ljungby",
                                Reason.CONNECT_TIMEOUT),
                link_down_alert("Z97117", "z97117", "vaxjo", "Växjö", Reason.REFUSED),
            ]),
        ],
    ))
    ljungby = "exporter.ljungby.invalid:10104"
    out.append(case(
        "scenario: Z97117 dies, seen from both vantage points, pages with the routine's steps",
        probe("z97117", "Z97117", FAILING, Reason.REFUSED, role="link_computer",
              region="kronoberg")
        + [{**item, "series": item["series"].replace(INSTANCE, ljungby).replace(
            'site="vaxjo"', 'site="ljungby"')}
           for item in probe("z97117", "Z97117", FAILING, Reason.CONNECT_TIMEOUT,
                             role="link_computer", region="kronoberg", module="tcp")],
        [("3m", "DicomLinkComputerDown", [
            link_down_alert("Z97117", "z97117", "ljungby", "Ljungby", Reason.CONNECT_TIMEOUT,
                            instance=ljungby),
            link_down_alert("Z97117", "z97117", "vaxjo", "Växjö", Reason.REFUSED),
        ])],
    ))
    out.append(case(
        "a link computer that answers but refuses CT pages too: its hop is closed",
        probe("z97117", "Z97117", UP, role="link_computer", region="kronoberg")
        + probe("z97117", "Z97117", FAILING, Reason.NO_ACCEPTED_CONTEXT, role="link_computer",
                region="kronoberg", module="negotiate"),
        [("3m", "DicomLinkComputerDown", [
            link_down_alert("Z97117", "z97117", "vaxjo", "Växjö", Reason.NO_ACCEPTED_CONTEXT,
                            refuses_ct=True),
        ])],
    ))
    out.append(case(
        "scenario: a 10 s blip of Z83680 (one failed probe) pages nobody",
        probe("z83680", "Z83680", BLIP_Z83680, Reason.CONNECT_TIMEOUT, role="link_computer",
              site="ljungby", region="kronoberg", module="tcp"),
        [(f"{s}s", "DicomLinkComputerDown", []) for s in range(15, 600, 15)],
    ))
    out.append(case(
        "one lost probe of a link computer never pages",
        probe("z97117", "Z97117", "1 1 1 1 0 1 1 1 0 1+0x30", Reason.RESET,
              role="link_computer", region="kronoberg"),
        [(f"{m}m", "DicomLinkComputerDown", []) for m in range(1, 9)],
    ))
    # -- DicomPartnerUnreachable, one case per reason ---------------------------
    for reason in Reason:
        if reason in AE_REJECTIONS:
            continue
        out.append(case(
            f"an unreachable partner names the reason {reason.value}",
            probe("skane", "SKANE_PACS", FAILING, reason, region="skane"),
            [("3m", "DicomPartnerUnreachable", [partner_unreachable_alert(reason)])],
        ))
    out.append(case(
        "a healthy partner does not alert",
        probe("skane", "SKANE_PACS", UP),
        [("5m", alert, []) for alert in ("DicomPartnerUnreachable",
                                          "DicomPartnerRejectsAssociation",
                                          "DicomPartnerCannotReceive", "DicomAllPartnersFailing",
                                          "DicomEchoLatencyHigh", "DicomLinkComputerDown")],
    ))
    # -- DicomPartnerRejectsAssociation ----------------------------------------
    rejection_alerts = []
    for reason, target, ae, text in (
        (Reason.REJECTED_CALLED_AE, "blekinge", "BLEKINGE_PACS",
         "blekinge har inte AE-titeln BLEKINGE_PACS som vi anropar (called AE); vissa system "
         "svarar så även när det är vår egen AE-titel de inte känner igen."),
        (Reason.REJECTED_CALLING_AE, "skane", "SKANE_PACS",
         "skane känner inte igen övervakningens AE-titel (calling AE)."),
    ):
        region = {"skane": "Skåne", "blekinge": "Blekinge"}[target]
        rejection_alerts.append({
            "exp_labels": {**probe_labels(target, "echo", "partner", "vaxjo", target, ae),
                           "reason": reason.value, "severity": "critical",
                           "audience": "staff"},
            "exp_annotations": {
                "summary": f"{region} ({ae}) avvisar vår DICOM-förbindelse",
                "description": f"{text} Problem med att skicka, punkt 5: ”Kommunikation "
                               "mellan mottagare och sändare är inte rätt konfigurerad.”",
                "runbook_url": runbook("DicomPartnerRejectsAssociation"),
                "next_step": NEXT[("partner_rejects", "default")],
            },
        })
    out.append(case(
        "a partner rejecting our calling or called AE title is a configuration alert",
        probe("skane", "SKANE_PACS", FAILING, Reason.REJECTED_CALLING_AE, region="skane")
        + probe("blekinge", "BLEKINGE_PACS", FAILING, Reason.REJECTED_CALLED_AE,
                region="blekinge"),
        [("3m", "DicomPartnerRejectsAssociation", rejection_alerts),
         ("3m", "DicomPartnerUnreachable", [])],
    ))
    # -- DicomPartnerCannotReceive ---------------------------------------------
    labels = probe_labels("jonkoping", "negotiate", "partner", "vaxjo", "jonkoping",
                          "JONKOPING_PACS")
    out.append(case(
        "a partner that answers echo but refuses our images cannot receive",
        probe("jonkoping", "JONKOPING_PACS", UP, region="jonkoping")
        + probe("jonkoping", "JONKOPING_PACS", FAILING, Reason.NO_ACCEPTED_CONTEXT,
                module="negotiate", region="jonkoping")
        + probe("halland", "HALLAND_PACS", FAILING, Reason.REFUSED, region="halland")
        + probe("halland", "HALLAND_PACS", FAILING, Reason.REFUSED, region="halland",
                module="negotiate"),
        [("4m", "DicomPartnerCannotReceive", [{
            "exp_labels": {**labels, "severity": "critical", "audience": "staff"},
            "exp_annotations": {
                "summary": "Jönköping (JONKOPING_PACS) svarar men kan inte ta emot bilder",
                "description": "jonkoping svarar på C-ECHO men negotiate misslyckas. Orsak: "
                               "no_accepted_context. "
                               f"{explanation(Reason.NO_ACCEPTED_CONTEXT)} Problem med att "
                               "skicka, punkt 5 eller 6: ”Kommunikation mellan mottagare och "
                               "sändare är inte rätt konfigurerad.” eller ”Mottagande region "
                               "kan inte ta emot DICOM.”",
                "runbook_url": runbook("DicomPartnerCannotReceive"),
                "reason": "no_accepted_context",
                "next_step": NEXT[("partner_cannot_receive", "default")],
            },
        }])],
    ))
    labels = probe_labels("jonkoping", "store", "partner", "vaxjo", "jonkoping",
                          "JONKOPING_PACS")
    out.append(case(
        "a partner that takes our store but will not let us query it is configuration",
        probe("jonkoping", "JONKOPING_PACS", UP, region="jonkoping")
        + probe("jonkoping", "JONKOPING_PACS", FAILING, Reason.QUERY_REFUSED,
                module="store", region="jonkoping")
        + probe("halland", "HALLAND_PACS", UP, region="halland"),
        [("4m", "DicomPartnerCannotReceive", [{
            "exp_labels": {**labels, "severity": "critical", "audience": "staff"},
            "exp_annotations": {
                "summary": "Jönköping (JONKOPING_PACS) svarar men kan inte ta emot bilder",
                "description": "jonkoping svarar på C-ECHO men store misslyckas. Orsak: "
                               "query_refused. "
                               f"{explanation(Reason.QUERY_REFUSED)} Problem med att skicka, "
                               "punkt 5: ”Kommunikation mellan mottagare och sändare är inte "
                               "rätt konfigurerad.”",
                "runbook_url": runbook("DicomPartnerCannotReceive"),
                "reason": "query_refused",
                "next_step": NEXT[("partner_cannot_receive", "default")],
            },
        }])],
    ))
    # -- DicomAllPartnersFailing -----------------------------------------------
    out.append(case(
        "every partner failing at once points at our own network",
        probe("skane", "SKANE_PACS", FAILING, Reason.CONNECT_TIMEOUT, region="skane")
        + probe("halland", "HALLAND_PACS", FAILING, Reason.CONNECT_TIMEOUT, region="halland"),
        [("3m", "DicomAllPartnersFailing", [{
            "exp_labels": {"site": "vaxjo", "instance": INSTANCE, "severity": "critical",
                           "audience": "staff"},
            "exp_annotations": {
                "summary": "Ingen partnerregion nås via DICOM från Växjö",
                "description": "Alla 2 partnerregioner misslyckas samtidigt från Växjö: felet "
                               "ligger troligen hos oss, i Region Kronobergs nätverk, Sjunet "
                               "eller brandväggen (Problem med att skicka, punkt 3 och 4).",
                "runbook_url": runbook("DicomAllPartnersFailing"),
                "next_step": NEXT[("all_partners_failing", "default")],
            },
        }])],
    ))
    out.append(case(
        "one partner of two failing is not all partners",
        probe("skane", "SKANE_PACS", FAILING, Reason.CONNECT_TIMEOUT, region="skane")
        + probe("halland", "HALLAND_PACS", UP, region="halland"),
        [("3m", "DicomAllPartnersFailing", [])],
    ))
    # -- DicomEchoLatencyHigh --------------------------------------------------
    out.append(case(
        "a slow partner warns, a fast one does not",
        probe("skane", "SKANE_PACS", UP, region="skane", duration="0.8+0x80")
        + probe("halland", "HALLAND_PACS", UP, region="halland", duration="0.05+0x80"),
        [("16m", "DicomEchoLatencyHigh", [{
            "exp_labels": {**probe_labels("skane", "echo", "partner", "vaxjo", "skane",
                                          "SKANE_PACS"), "severity": "warning",
                           "audience": "it"},
            "exp_annotations": {
                "summary": "Långsam DICOM-förbindelse till skane (SKANE_PACS)",
                "description": "C-ECHO till skane från Växjö tar i snitt 800ms (gräns 0,5 s). "
                               "Överföringar kan bli långsamma eller avbrytas; kontrollera "
                               "nätverket och mottagarens system.",
                "runbook_url": runbook("DicomEchoLatencyHigh"),
            },
        }])],
    ))
    # -- monitoring itself -----------------------------------------------------
    scrape = {"job": "dicom_probe", "instance": INSTANCE, "target": "skane", "module": "echo"}
    exporter = {"job": "dicom_exporter", "instance": INSTANCE}
    counter = {**exporter, "target": "skane", "module": "echo"}
    out.append(case(
        "the monitoring watches itself",
        [series("up", "0x40", **scrape),
         series("up", "0x40", **exporter),
         series("dicom_exporter_probes_total", "5+0x80", **counter),
         series("dicom_exporter_config_last_reload_successful", "0x40", **exporter),
         series("dicom_exporter_web_info", "1x40", job="dicom_exporter",
                instance="exporter.ljungby.invalid:10104", external_url=OTHER_URL)],
        [
            ("6m", "DicomProbeScrapeFailing", [{
                "exp_labels": {**scrape, "severity": "warning", "audience": "it"},
                "exp_annotations": {
                    "summary": "Prometheus får inget probsvar för skane",
                    "description": "Prometheus hämtar inte /probe för skane (echo) från "
                                   f"exportern {INSTANCE}: svaret tar längre tid än "
                                   "scrape_timeout eller exportern nås inte. Övervakningen av "
                                   "målet är blind.",
                    "runbook_url": runbook("DicomProbeScrapeFailing"),
                },
            }]),
            ("16m", "DicomProbesStale", [{
                "exp_labels": {**counter, "severity": "warning", "audience": "it"},
                "exp_annotations": {
                    "summary": "skane (echo) har inte kontrollerats på 10 minuter",
                    "description": f"Exportern {INSTANCE} har inte kört någon prob mot skane "
                                   "med modulen echo på 10 minuter. Prometheus skrapar inte målet "
                                   "(service discovery, scrape-konfiguration): ett fel där "
                                   "skulle inte synas.",
                    "runbook_url": runbook("DicomProbesStale"),
                },
            }]),
            ("2m", "DicomExporterDown", [{
                "exp_labels": {**exporter, "severity": "critical", "audience": "it"},
                "exp_annotations": {
                    "summary": f"DICOM-övervakningen {INSTANCE} är nere",
                    "description": f"Prometheus når inte dicom-exporter {INSTANCE}. Ingen "
                                   "DICOM-överföring övervakas därifrån: fel upptäcks inte "
                                   "förrän en överföring uteblir.",
                    "runbook_url": f"{OTHER_URL}/runbooks/DicomExporterDown",
                },
            }]),
            ("2m", "DicomExporterConfigReloadFailed", [{
                "exp_labels": {**exporter, "severity": "warning", "audience": "it"},
                "exp_annotations": {
                    "summary": f"Ny konfiguration för dicom-exporter {INSTANCE} kunde inte "
                               "läsas",
                    "description": "Senaste omladdningen av konfigurationen misslyckades; "
                                   "exportern kör vidare med den tidigare. Kör dicom-exporter "
                                   "check-config och rätta filen.",
                    "runbook_url": runbook("DicomExporterConfigReloadFailed"),
                },
            }]),
            ("1m", "Watchdog", [{
                "exp_labels": {"severity": "none", "audience": "it"},
                "exp_annotations": {
                    "summary": "Larmkedjan fungerar",
                    "description": "Detta larm ska alltid vara aktivt. Om det tystnar fungerar "
                                   "inte kedjan Prometheus → Alertmanager → personsökare.",
                    "runbook_url": f"{OTHER_URL}/runbooks/Watchdog",
                },
            }]),
        ],
    ))
    # The built-in schedule (10 s interval): rounds complete every 15 s, then stop at 150 s.
    out.append(case(
        "a schedule that stops completing rounds alerts; one that overruns does not",
        [series("dicom_exporter_schedule_last_round_timestamp_seconds", "0+15x10 150x30",
                **exporter),
         series("dicom_exporter_schedule_interval_seconds", "10x40", **exporter)],
        [
            ("3m", "DicomExporterScheduleStalled", []),  # rounds 15 s apart: late, not stalled
            ("5m", "DicomExporterScheduleStalled", []),  # stalled 2m 30s: still pending
            ("7m", "DicomExporterScheduleStalled", [{
                "exp_labels": {**exporter, "severity": "warning", "audience": "it"},
                "exp_annotations": {
                    "summary": f"Exportern {INSTANCE} kontrollerar inte längre målen själv",
                    "description": "Exporterns inbyggda schema (--probe.interval) har inte "
                                   "avslutat någon omgång på 4m 30s. Målen kontrolleras bara "
                                   "när Prometheus hämtar /probe; statussidan och "
                                   "dicom_exporter_last_probe_success blir inaktuella.",
                    "runbook_url": runbook("DicomExporterScheduleStalled"),
                },
            }]),
        ],
    ))
    out.append(case(
        "a healthy exporter that probes and reloads fine does not alert",
        [series("up", "1x40", **scrape),
         series("up", "1x40", **exporter),
         series("dicom_exporter_probes_total", "5+1x80", **counter),
         series("dicom_exporter_config_last_reload_successful", "1x40", **exporter)],
        [("16m", alert, []) for alert in ("DicomProbeScrapeFailing", "DicomProbesStale",
                                           "DicomExporterDown",
                                           "DicomExporterConfigReloadFailed")],
    ))
    out.append(case(
        "an exporter Prometheus never saw is down too, and its runbook link is absolute",
        [series("up", "1x40", **scrape)],
        [("2m", "DicomExporterDown", [{
            "exp_labels": {"job": "dicom_exporter", "severity": "critical", "audience": "it"},
            "exp_annotations": {
                "summary": "DICOM-övervakningen  är nere",
                "description": "Prometheus når inte dicom-exporter . Ingen DICOM-överföring "
                               "övervakas därifrån: fel upptäcks inte förrän en överföring "
                               "uteblir.",
                # No exporter answers (one site): the static base, never a bare path.
                "runbook_url": "https://intranet.kronoberg.invalid/dicom/runbooks/"
                               "DicomExporterDown",
            },
        }])],
    ))
    # -- routes ---------------------------------------------------------------
    route = {"job": "dicom_exporter", "instance": INSTANCE, "route": "ljungby-skane",
             "site": "ljungby", "partner": "skane", "region": "skane"}
    dvd = "Ljungby bränner DVD på dator med IntelliSpace Portal i granskningen"
    other = {**route, "route": "vaxjo-skane", "site": "vaxjo"}
    # What is down, as the route states read it: the alerts choose the routine's words.
    hop = {"job": "dicom_exporter", "instance": INSTANCE}
    z97117_then_skane = [series("dicom_route_hop_state", "1x44", **hop, target="z97117",
                                state="down"),
                         series("dicom_route_hop_state", "_x24 1x20", **hop, target="skane",
                                state="down")]
    out.append(case(
        "a route on its fallback names the path and the routine's first step for what is "
        "down, then no route gives the routine's last resort for what is down; one route "
        "without a path never hides another route's fallback",
        [*z97117_then_skane,
         series("dicom_route_active", "1x12 stale",
                **route, status="primary", path="ordinarie väg"),
         series("dicom_route_active", "_x12 1x12 stale",
                **route, status="fallback", path="skicka via Blekinge"),
         series("dicom_route_active", "_x24 1x20", **route, status="none", path=dvd),
         series("dicom_route_active", "_x24 1x20", **other, status="fallback",
                path="Ljungby skickar via Halland")],
        [
            ("2m", "RouteOnFallback", []),
            ("2m", "NoRouteAvailable", []),
            ("5m", "RouteOnFallback", [{
                "exp_labels": {**route, "status": "fallback", "path": "skicka via Blekinge",
                               "severity": "warning", "audience": "staff"},
                "exp_annotations": {
                    "summary": "Ljungby → Skåne: skicka via Blekinge",
                    "description": "Ordinarie väg från Ljungby till Skåne är stängd. Den "
                                   "reservväg som svarar mot felet och är öppen: skicka via "
                                   "Blekinge.",
                    "runbook_url": runbook("RouteOnFallback"),
                    "next_step": fallback("skicka via Blekinge"),
                },
            }]),
            ("8m", "RouteOnFallback", [{
                "exp_labels": {**other, "status": "fallback",
                               "path": "Ljungby skickar via Halland", "severity": "warning",
                               "audience": "staff"},
                "exp_annotations": {
                    "summary": "Växjö → Skåne: Ljungby skickar via Halland",
                    "description": "Ordinarie väg från Växjö till Skåne är stängd. Den "
                                   "reservväg som svarar mot felet och är öppen: Ljungby "
                                   "skickar via Halland.",
                    "runbook_url": runbook("RouteOnFallback"),
                    "next_step": fallback("Ljungby skickar via Halland", reading=True),
                },
            }]),
            ("8m", "NoRouteAvailable", [{
                "exp_labels": {**route, "status": "none", "path": dvd, "severity": "critical",
                               "audience": "staff"},
                "exp_annotations": {
                    "summary": "Ljungby → Skåne: ingen väg öppen",
                    "description": "Varken ordinarie väg eller någon reservväg som svarar mot "
                                   "felet är öppen från Ljungby till Skåne. Sista utväg: "
                                   f"{Z97117_DVD} {SKANE_LAST}",
                    "runbook_url": runbook("NoRouteAvailable"),
                    "next_step": no_route(f"{Z97117_DVD} {SKANE_LAST}"),
                },
            }]),
        ],
    ))
    # No hop state known (an exporter before dicom_route_hop_state): our own DVD advice.
    unknown = {"exp_labels": {**route, "status": "none", "path": dvd, "severity": "critical",
                              "audience": "staff"},
               "exp_annotations": {
                   "summary": "Ljungby → Skåne: ingen väg öppen",
                   "description": "Varken ordinarie väg eller någon reservväg som svarar mot "
                                  "felet är öppen från Ljungby till Skåne. Sista utväg: "
                                  f"{DVD_OWN}",
                   "runbook_url": runbook("NoRouteAvailable"),
                   "next_step": no_route(DVD_OWN)}}
    out.append(case(
        "no route stays firing while the route is only unknown (stale results), and resolves "
        "when a way is really open",
        [series("dicom_route_active", "1x12 stale", **route, status="none", path=dvd),
         series("dicom_route_active", "_x13 1x10 stale", **route, status="unknown", path=""),
         series("dicom_route_active", "_x25 1x20", **route, status="primary",
                path="ordinarie väg")],
        [("2m", "NoRouteAvailable", [unknown]), ("5m", "NoRouteAvailable", [unknown]),
         ("8m", "NoRouteAvailable", [])],
    ))
    # -- receive side ---------------------------------------------------------
    receive = {**probe_labels("z97117.from.skane", "receive_echo", "link_computer", "vaxjo",
                              "kronoberg", "Z97117"),
               "prober": "echo", "partner": "skane", "direction": "receive"}
    refused = {**receive, "target": "z97117.from.blekinge", "partner": "blekinge"}

    def rejects(labels: dict[str, str], reason: str, region: str, causes: str) -> Json:
        return {"exp_labels": {**labels, "reason": reason, "severity": "critical",
                               "audience": "staff"},
                "exp_annotations": {
                    "summary": f"Z97117 tar inte emot DICOM från {region}",
                    "description": f"Vår länkdator Z97117 (Växjö) avvisar {region} (orsak "
                                   f"{reason}) när den anropar med sin AE-titel. "
                                   f"Undersökningar från {region} kommer inte fram. {causes}",
                    "runbook_url": runbook("ReceiverRejectsPartner"),
                    "next_step": NEXT[("receiver_rejects", "default")]}}

    busy = {**receive, "target": "z97117.from.ostergotland", "partner": "ostergotland"}
    out.append(case(
        "our link computer turning a partner's AE title away is a receive alert, not a "
        "dead link computer; it names the region and the routine's receive causes",
        [series("probe_success", FAILING, **receive),
         series("probe_dicom_failure_reason", "0 0 0 0 1x36", **receive,
                reason="rejected_calling_ae"),
         series("probe_success", FAILING, **refused),
         series("probe_dicom_failure_reason", "0 0 0 0 1x36", **refused, reason="refused"),
         series("probe_success", FAILING, **busy),
         series("probe_dicom_failure_reason", "0 0 0 0 1x36", **busy, reason="rejected_other")],
        [
            ("3m", "ReceiverRejectsPartner", [
                rejects(receive, "rejected_calling_ae", "Skåne",
                        "Problem med att ta emot, punkt 3: ”Kommunikation mellan sändande och "
                        "mottagande enhet är felaktigt konfigurerad.”"),
                # Rejected for another reason (e.g. overloaded): our receiving computer
                # (ta emot 1) or the configuration (3), not the sending region (5).
                rejects(busy, "rejected_other", "Östra Götaland",
                        "Problem med att ta emot, punkt 1 eller 3: ”Mottagande dator Z83680 "
                        "eller Z97117 är ur funktion/avstängd” eller ”Kommunikation mellan "
                        "sändande och mottagande enhet är felaktigt konfigurerad.”"),
            ]),
            ("3m", "DicomLinkComputerDown", []),
        ],
    ))
    out.append(case(
        "a receiver that accepts every partner does not alert",
        [series("probe_success", UP, **receive)]
        + [series("probe_dicom_failure_reason", "0x40", **receive, reason=r.value)
           for r in Reason],
        [("3m", "ReceiverRejectsPartner", [])],
    ))
    # -- TLS certificate expiry ------------------------------------------------
    tls = probe_labels("skane", "echo", "partner", "vaxjo", "skane", "SKANE_PACS")
    out.append(case(
        "a peer certificate close to expiry warns in time, a fresh one does not",
        [series("probe_ssl_earliest_cert_expiry", "864000+0x80", **tls),
         series("probe_ssl_earliest_cert_expiry", "31536000+0x80",
                **{**tls, "target": "halland", "ae_title": "HALLAND_PACS"})],
        [("20m", "DicomTLSCertificateExpiringSoon", [{
            "exp_labels": {**tls, "severity": "warning", "audience": "it"},
            "exp_annotations": {
                "summary": "Certifikatet för skane (SKANE_PACS) går snart ut",
                "description": "TLS-certifikatet som skane visar går ut om 9d 23h 40m 0s. När "
                               "det har gått ut kan vi inte skicka DICOM dit (orsak tls). Be "
                               "mottagande enhet förnya certifikatet i tid.",
                "runbook_url": runbook("DicomTLSCertificateExpiringSoon"),
            },
        }]), ("10m", "DicomTLSCertificateExpiringSoon", [])],
    ))
    out.extend(route_cases())
    return out


# -- sampled multi-fault states: the route alerts as Prometheus renders them -------
# Every route's dicom_route_active as the route model (exporter/route_state.py) gives
# it in each state, and the alerts the rules must fire, with the texts the status page
# shows for the same state. Whether the model's answers are the routine's is checked in
# every state by tests/test_route_truth.py, which also checks these samples.
ROUTE_NODES = ("z97117", "z83680", "skane", "blekinge", "ostergotland", "jonkoping",
               "vastragotland", "halland")
# The cases first, then every ninth state with at least two hops down.
NAMED_ROUTE_STATES = (
    ("blekinge", "z97117"), ("z97117", "skane", "blekinge", "halland"), ("z97117", "jonkoping"),
    ("skane", "blekinge"), ("z97117", "z83680"), ("z83680", "blekinge"),
)


def sampled_route_states() -> list[tuple[str, ...]]:
    """About 30 multi-fault states (the down hops of each), in a fixed order."""
    every = [tuple(n for n, bit in zip(ROUTE_NODES, bits, strict=True) if bit)
             for bits in itertools.product((0, 1), repeat=len(ROUTE_NODES))]
    named = [tuple(n for n in ROUTE_NODES if n in state) for state in NAMED_ROUTE_STATES]
    multi = [state for state in every if len(state) >= 2 and state not in named]
    return [*named, *multi[::9]]


def route_cases() -> list[Json]:
    from exporter import config as config_module
    from exporter import routine
    from exporter.route_state import HopState, RouteStatus, evaluate
    from exporter.web.oncall import route_title

    config = config_module.load(EXAMPLE)
    out = []
    for down in sampled_route_states():
        hops = {n: HopState.DOWN if n in down else HopState.UP for n in ROUTE_NODES}
        inputs, fallbacks, nones = [], [], []
        inputs += [series("dicom_route_hop_state", "1x20", job="dicom_exporter",
                          instance=INSTANCE, target=n, state=hops[n].value) for n in ROUTE_NODES]
        for route in config.routes.values():
            state = evaluate(route, hops)
            partner = config.targets[route.partner]
            labels = {"job": "dicom_exporter", "instance": INSTANCE, "route": route.name,
                      "site": route.site, "partner": route.partner,
                      "region": partner.labels["region"]}
            site, region = routine.site_name(config, route.site), routine.place(config, partner)
            title = route_title(config, route)
            if state.status is RouteStatus.FALLBACK and state.active is not None:
                path = state.active.path
                inputs.append(series("dicom_route_active", "1x20", **labels,
                                     status="fallback", path=path.name))
                fallbacks.append({
                    "exp_labels": {**labels, "status": "fallback", "path": path.name,
                                   "severity": "warning", "audience": "staff"},
                    "exp_annotations": {
                        "summary": f"{title}: {path.name}",
                        "description": f"Ordinarie väg från {site} till {region} är stängd. "
                                       "Den reservväg som svarar mot felet och är öppen: "
                                       f"{path.name}.",
                        "runbook_url": runbook("RouteOnFallback"),
                        "next_step": routine.fallback_next_step(config, route, path,
                                                                state.down_hops),
                    }})
            elif state.status is RouteStatus.NONE:
                inputs.append(series("dicom_route_active", "1x20", **labels,
                                     status="none", path=route.last_resort))
                nones.append({
                    "exp_labels": {**labels, "status": "none", "path": route.last_resort,
                                   "severity": "critical", "audience": "staff"},
                    "exp_annotations": {
                        "summary": f"{title}: ingen väg öppen",
                        "description": "Varken ordinarie väg eller någon reservväg som "
                                       f"svarar mot felet är öppen från {site} till {region}. "
                                       "Sista utväg: "
                                       + routine.last_resort(config, route, state.down_hops),
                        "runbook_url": runbook("NoRouteAvailable"),
                        "next_step": routine.no_route_next_step(config, route,
                                                                state.down_hops),
                    }})
            else:
                inputs.append(series("dicom_route_active", "1x20", **labels,
                                     status=state.status.value,
                                     path=route.primary.name if state.status is
                                     RouteStatus.PRIMARY else ""))
        out.append(case(f"routes with {', '.join(down)} down: the model's answer as alerts",
                        inputs, [("2m", "RouteOnFallback", fallbacks),
                                 ("2m", "NoRouteAvailable", nones)]))
    return out


def render() -> str:
    body = yaml.safe_dump({
        "rule_files": ["dicom.rules.yml"],
        "evaluation_interval": "15s",
        "tests": cases() + slo_cases.cases() + slo_cases.outage_cases(),
    }, allow_unicode=True, sort_keys=False, width=10_000)
    return ("# Generated by alerts/promtool_cases.py: do not edit. Run it with\n"
            "# `promtool test rules alerts/dicom.rules.test.yml`; regenerate with\n"
            "# `python -m tools.generate`.\n" + body)
