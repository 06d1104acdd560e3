"""promtool cases of the recording rules and the SLO burn-rate alerts, written out by hand.

alerts/promtool_cases.py adds them to alerts/dicom.rules.test.yml. The
expected texts are spelled out here, so a change of the objectives or the
words shows up as a failing case, not as a silently regenerated one.
"""

from __future__ import annotations

from typing import Any

Case = dict[str, Any]
INSTANCE = "exporter.vaxjo.invalid:10104"
OTHER_URL = "https://exporter.ljungby.invalid:10104"
LINK_JOB = "dicom_probe_link_computer"


def series(metric: str, values: str, **labels: str) -> Case:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


def probe(target: str, module: str, site: str, values: str, role: str = "partner",
          region: str = "skane", ae: str = "SKANE_PACS") -> Case:
    job = LINK_JOB if role == "link_computer" else "dicom_probe"
    return series("probe_success", values, job=job, instance=f"exporter.{site}.invalid:10104",
                  target=target, module=module, prober=module, role=role, site=site,
                  region=region, ae_title=ae)


WEB_INFO = series("dicom_exporter_web_info", "1+0x600", job="dicom_exporter",
                  instance=INSTANCE, external_url=OTHER_URL)


def burn(name: str, window: str, objective: str, target: str, role: str, region: str,
         ae: str, summary: str, description: str) -> Case:
    return {
        "exp_labels": {"severity": "warning", "audience": "it", "slo_window": window,
                       "slo_objective": objective, "slo": f"{role}s",
                       "target": target, "role": role, "region": region, "ae_title": ae},
        "exp_annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{OTHER_URL}/runbooks/{name}"},
    }


FAST_LINK = (
    "Målet räknas som uppe när minst en plats når det, och ändå misslyckas över 1,44 % av "
    "proven även från den plats som når det bäst, både de senaste 1h och de senaste 5m: "
    "14,4 gånger den takt som målet 99,9 % tillgänglighet över 30 dygn tillåter. I den "
    "takten är felbudgeten för 30 dygn slut inom 50 timmar. Ett larm till IT per "
    "e-post, inte till personalen: akuta fel larmar för sig (inte i rutinen)."
)
SLOW_PARTNER = (
    "Målet räknas som uppe när minst en plats når det, och ändå misslyckas över 3 % av "
    "proven även från den plats som når det bäst, både de senaste 6h och de senaste 30m: "
    "6 gånger den takt som målet 99,5 % tillgänglighet över 30 dygn tillåter. "
    "I den takten är felbudgeten för 30 dygn slut inom 5 dygn. Ett larm till IT per e-post, "
    "inte till personalen: akuta fel larmar för sig (inte i rutinen)."
)


def reason(site: str, values: str) -> Case:
    """Skåne's echo from `site` failing with connect_timeout where `values` is 1."""
    return series("probe_dicom_failure_reason", values, job="dicom_probe",
                  instance=f"exporter.{site}.invalid:10104", target="skane", module="echo",
                  prober="echo", role="partner", site=site, region="skane",
                  ae_title="SKANE_PACS", reason="connect_timeout")


def last_evaluation_within_one(seconds: int, labels: str) -> Case:
    """The alerts' latest evaluation at `seconds`: that one, or the one 15 s before when
    promtool happens to run the outage group first (it orders groups at random)."""
    return {"expr": f"{seconds} - target_reason:dicom_outage:last_evaluation <= bool 15",
            "eval_time": f"{seconds}s", "exp_samples": [{"labels": labels, "value": 1}]}


def outage_cases() -> list[Case]:
    """The outage table's recording rules: a run the alert's `for:` long, from every site."""
    down = "1x9 0x10 1x10"  # one sample a minute: down from 10m to 20m
    failing = "0x9 1x10 0x10"
    start = 'target_reason:dicom_outage:start{reason="connect_timeout",target="skane"}'
    last = '{reason="connect_timeout",target="skane"}'  # arithmetic drops the name
    return [
        {
            "name": "Skåne down from both sites: its outage's start and last evaluation, "
                    "with the reason",
            "interval": "1m",
            "input_series": [probe("skane", "echo", "vaxjo", down),
                             probe("skane", "echo", "ljungby", down),
                             reason("vaxjo", failing), reason("ljungby", failing)],
            "promql_expr_test": [
                # 10m: the alerts are pending (for: 1m), not an outage yet.
                {"expr": "target_reason:dicom_outage:start", "eval_time": "10m",
                 "exp_samples": []},
                {"expr": "target_reason:dicom_outage:start", "eval_time": "15m",
                 "exp_samples": [{"labels": start, "value": 600}]},
                *[last_evaluation_within_one(seconds, last) for seconds in (900, 1200)],
                {"expr": "target_reason:dicom_outage:start", "eval_time": "21m",
                 "exp_samples": []},
            ],
        },
        {
            "name": "Skåne down from Ljungby only is reached from Växjö: no outage",
            "interval": "1m",
            "input_series": [probe("skane", "echo", "vaxjo", "1x30"),
                             probe("skane", "echo", "ljungby", down),
                             reason("ljungby", failing)],
            "promql_expr_test": [
                {"expr": "target_reason:dicom_outage:start", "eval_time": "15m",
                 "exp_samples": []},
            ],
        },
        {
            "name": "a link computer whose CT negotiation alone fails pages, but is reached: "
                    "no outage",
            "interval": "15s",  # the rule wants two failed negotiations in a row
            "input_series": [
                probe("z97117", module, site,
                      "1x80" if module != "negotiate_ct" else "1x19 0x40 1x20",
                      role="link_computer", region="kronoberg", ae="Z97117")
                for site in ("vaxjo", "ljungby") for module in ("tcp", "echo", "negotiate_ct")],
            "promql_expr_test": [
                {"expr": 'count(ALERTS{alertname="DicomLinkComputerDown", '
                         'alertstate="firing"})',
                 "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 2}]},
                {"expr": "target_reason:dicom_outage:start", "eval_time": "10m",
                 "exp_samples": []},
            ],
        },
        {
            "name": "the last site to fail starts the outage; no reason reported: no label",
            "interval": "1m",
            "input_series": [probe("skane", "echo", "vaxjo", "1x4 0x15 1x10"),
                             probe("skane", "echo", "ljungby", down)],
            "promql_expr_test": [
                {"expr": "target_reason:dicom_outage:start", "eval_time": "15m",
                 "exp_samples": [{"labels": 'target_reason:dicom_outage:start{target="skane"}',
                                  "value": 600}]},
            ],
        },
    ]


def cases() -> list[Case]:
    link = {"role": "link_computer", "region": "kronoberg", "ae": "Z97117"}
    down_10m = "1x49 0x10 1x60"  # one sample a minute: up 50 m, down 10 m, up
    every_20m = " ".join(["1x18 0"] * 15)  # one failed minute in every twenty, 5 h
    return [
        {
            "name": "a link computer down 10 minutes of the hour burns its budget fast: IT mail",
            "interval": "1m",
            "input_series": [probe("z97117", "tcp", "vaxjo", down_10m, **link),
                             probe("z97117", "echo", "vaxjo", down_10m, **link),
                             WEB_INFO],
            "alert_rule_test": [
                {"eval_time": "45m", "alertname": "DicomLinkComputerErrorBudgetBurn",
                 "exp_alerts": []},
                {"eval_time": "58m", "alertname": "DicomLinkComputerErrorBudgetBurn",
                 "exp_alerts": [burn(
                     "DicomLinkComputerErrorBudgetBurn", "1h/5m", "0.999", "z97117",
                     "link_computer", "kronoberg", "Z97117",
                     "Länkdator Z97117 förbrukar sin felbudget för snabbt", FAST_LINK)]},
            ],
        },
        {
            "name": "down as long in a Prometheus started minutes ago: no budget judged yet",
            "interval": "1m",
            "input_series": [probe("z97117", "tcp", "vaxjo", "1x2 0x10 1x20", **link),
                             probe("z97117", "echo", "vaxjo", "1x2 0x10 1x20", **link),
                             WEB_INFO],
            "alert_rule_test": [
                {"eval_time": "14m", "alertname": "DicomLinkComputerErrorBudgetBurn",
                 "exp_alerts": []},
            ],
        },
        {
            "name": "a partner failing one minute in twenty burns slowly, not fast",
            "interval": "1m",
            "input_series": [probe("skane", "echo", "vaxjo", every_20m), WEB_INFO],
            "alert_rule_test": [
                # Not before half of the 6 h window is recorded.
                {"eval_time": "2h", "alertname": "DicomPartnerErrorBudgetBurn",
                 "exp_alerts": []},
                {"eval_time": "4h", "alertname": "DicomPartnerErrorBudgetBurn",
                 "exp_alerts": [burn(
                     "DicomPartnerErrorBudgetBurn", "6h/30m", "0.995", "skane", "partner", "skane",
                     "SKANE_PACS",
                     "DICOM till Skåne (SKANE_PACS) förbrukar sin felbudget för snabbt",
                     SLOW_PARTNER)]},
            ],
        },
        {
            "name": "a partner down from Ljungby only is up from at least one site: no burn",
            "interval": "1m",
            "input_series": [probe("skane", "echo", "vaxjo", "1x120"),
                             probe("skane", "echo", "ljungby", "0x120"), WEB_INFO],
            "alert_rule_test": [
                {"eval_time": "90m", "alertname": "DicomPartnerErrorBudgetBurn",
                 "exp_alerts": []},
            ],
            "promql_expr_test": [
                {"expr": 'target:probe_success:reachable_avg1h{target="skane"}',
                 "eval_time": "90m",
                 "exp_samples": [{"labels": 'target:probe_success:reachable_avg1h{'
                                            'ae_title="SKANE_PACS",region="skane",'
                                            'role="partner",slo="partners",target="skane"}',
                                  "value": 1}]},
                {"expr": 'target_site:probe_success:reachable_avg1h{site="ljungby"}',
                 "eval_time": "90m",
                 "exp_samples": [{"labels": 'target_site:probe_success:reachable_avg1h{'
                                            'ae_title="SKANE_PACS",region="skane",role="partner",'
                                            'site="ljungby",slo="partners",target="skane"}',
                                  "value": 0}]},
            ],
        },
        {
            "name": "store success per partner is the store probes' share of successes",
            "interval": "1m",
            "input_series": [probe("jonkoping", "store", "vaxjo", "1 1 1 0 0 1 1 1 1 1 1",
                                   region="jonkoping", ae="JONKOPING_PACS")],
            "promql_expr_test": [
                {"expr": "target:probe_success:store_avg5m", "eval_time": "5m",
                 "exp_samples": [{"labels": 'target:probe_success:store_avg5m{'
                                            'ae_title="JONKOPING_PACS",region="jonkoping",'
                                            'role="partner",slo="partners",target="jonkoping"}',
                                  "value": 4 / 6}]},
            ],
        },
    ]
