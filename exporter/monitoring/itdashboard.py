"""IT operations' dashboard: availability, error budget, store success and outages.

Availability and budget read the recording rules of exporter.monitoring.slo
(30 days of raw 5-second samples would be slow to average on every load);
the outage panels read raw `probe_success` so each outage keeps its start and
end. Words from exporter.routine.itops; the SLO objectives from the
monitoring config.
"""

from __future__ import annotations

import json

from exporter.monitoring import slo
from exporter.monitoring.dashboards import (
    SITE,
    UNKNOWN,
    UP_DOWN,
    Json,
    dashboard,
    panel,
    target,
    variable_query,
)
from exporter.monitoring.settings import Monitoring
from exporter.routine import itops as words

UID = "dicom-itops"
FILE = "itops.json"
PERCENT = {"unit": "percentunit", "decimals": 2, "min": 0, "max": 1}
STAT = {"colorMode": "value", "textMode": "value_and_name", "graphMode": "none",
        "reduceOptions": {"calcs": ["last"]}}
EXPORTER_URL = variable_query("exporter_url", "Exporter (runbooks, statussida)",
                              "label_values(dicom_exporter_web_info, external_url)",
                              multi=False)


def links(m: Monitoring, runbook: str) -> list[Json]:
    """The runbook of the alert the panel is about, and the status page."""
    base = m.runbook_base_url.rstrip("/") or "${exporter_url}"
    return [{"title": words.LINK_RUNBOOK, "url": f"{base}/runbooks/{runbook}",
             "targetBlank": True},
            {"title": words.LINK_STATUS, "url": f"{base}/", "targetBlank": True}]


def stat(m: Monitoring, title: str, expr: str, legend: str, width: int,
         runbook: str = slo.ALERT_NAME["partners"], description: str = "") -> Json:
    each = panel("stat", title, [target(expr, legend, instant=True)], width, 6, description,
                 options=STAT)
    each["fieldConfig"]["defaults"].update(PERCENT)
    each["links"] = links(m, runbook)
    return each


def budget(m: Monitoring) -> str:
    """Remaining error budget over 30 days, per target, with its role's objective."""
    parts = []
    for role, objective in sorted(m.slo_objectives.items()):
        ratio = f'avg_over_time({slo.target_ratio("5m")}{{role="{role}"}}[{slo.BUDGET_DAYS}d])'
        parts.append(f"(1 - (1 - {ratio}) / {1 - objective:.6g})")
    return "\n or ".join(parts)


def outage_table(m: Monitoring) -> Json:
    down = (f"(min by (target, site) (probe_success{{{m.probe}, {m.reachability}, "
            f'direction!="receive", site=~"$site"}}) == 0)')
    reasons = (f"max by (target, site, reason) (max_over_time(probe_dicom_failure_reason"
               f'{{{m.probe}, {m.reachability}, direction!="receive", site=~"$site"}}'
               f"[$__range])) == 1")
    c = words.OUTAGE_COLUMNS_DASHBOARD
    each = panel("table", words.PANELS["outage_table"], [
        target(f"min_over_time(timestamp{down}[$__range:1m]) * 1000", c["first"], "table", True),
        target(f"max_over_time(timestamp{down}[$__range:1m]) * 1000", c["last"], "table", True),
        target(f"count_over_time({down}[$__range:1m]) * 60", c["down"], "table", True),
        target(reasons, c["reason"], "table", True),
    ], 24, 8, words.OUTAGE_TABLE_DESCRIPTION)
    each["transformations"] = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {"Time": True, "Value #D": True},
            "renameByName": {"Value #A": c["first"], "Value #B": c["last"],
                             "Value #C": c["down"], "reason": c["reason"]}}},
    ]
    each["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byName", "options": c["first"]},
         "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},
        {"matcher": {"id": "byName", "options": c["last"]},
         "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},
        {"matcher": {"id": "byName", "options": c["down"]},
         "properties": [{"id": "unit", "value": "s"}]},
    ]
    each["links"] = links(m, slo.ALERT_NAME["partners"])
    return each


def itops(m: Monitoring) -> Json:
    p = words.PANELS
    ratio = slo.target_ratio("5m")
    reach_now = (f"max by (target) (min by (target, site) (probe_success{{{m.probe}, "
                 f'{m.reachability}, direction!="receive"}}))')
    timeline = panel("state-timeline", p["outages"], [target(reach_now, "{{target}}")], 24, 8,
                     mappings=UP_DOWN,
                     options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8})
    timeline["fieldConfig"]["defaults"]["noValue"] = UNKNOWN
    timeline["links"] = links(m, slo.ALERT_NAME["link_computers"])
    over_time = panel("timeseries", p["ratio"], [target(ratio, "{{target}}")], 24, 8)
    over_time["fieldConfig"]["defaults"].update(PERCENT)
    over_time["links"] = links(m, slo.ALERT_NAME["partners"])
    board = dashboard(
        UID, words.DASHBOARD_TITLE, words.DASHBOARD_DESCRIPTION, [SITE, EXPORTER_URL],
        [
            stat(m, p["availability_range"], f"avg_over_time({ratio}[$__range])",
                 "{{target}}", 24),
            stat(m, p["availability_24h"], f"avg_over_time({ratio}[24h])", "{{target}}", 8),
            stat(m, p["availability_7d"], f"avg_over_time({ratio}[7d])", "{{target}}", 8),
            stat(m, p["availability_30d"], f"avg_over_time({ratio}[30d])", "{{target}}", 8),
            stat(m, p["budget"], budget(m), "{{target}}", 24),
            stat(m, p["per_site"],
                 f'avg_over_time({slo.site_ratio("5m")}{{site=~"$site"}}[$__range])',
                 "{{target}} från {{site}}", 12),
            stat(m, p["store"], f"avg_over_time({slo.store_ratio()}[$__range])",
                 "{{target}}", 12),
            over_time,
            timeline,
            outage_table(m),
        ],
        ["dicom", "it"],
    )
    board["time"] = {"from": "now-30d", "to": "now"}
    board["refresh"] = "5m"
    return board


def render(m: Monitoring) -> str:
    return json.dumps(itops(m), indent=2, ensure_ascii=False) + "\n"
