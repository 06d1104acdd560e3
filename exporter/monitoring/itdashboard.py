"""IT operations' dashboard: availability, error budget, store success and outages.

Availability and budget read the recording rules of exporter.monitoring.slo
(30 days of raw 5-second samples would be slow to average on every load);
the outage timeline reads raw `probe_success`, the outage table the
recording rules of exporter.monitoring.outages, so each outage keeps its
start. Words from exporter.routine.itops; the SLO objectives from the
monitoring config.
"""

from __future__ import annotations

import json

from exporter.monitoring import outages, slo
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


# Grafana's column names for the two queries, before the table renames them.
START, END = "Value #A", "Value #B"
END_MAX = f"{END} (max)"
REASONS = "reason (uniqueValues)"


def outage_queries() -> tuple[str, str]:
    """Each outage's start and the last evaluation that saw it, per step of the range.

    The recording rules of exporter.monitoring.outages hold both only while
    the target is out; max_over_time over Grafana's step sees every
    evaluation, whatever the step. Two outages of one target less than a step
    apart: the step that holds both shows the later, so the earlier one's end
    reads up to a step early (or, inside one step, the row is the later's).
    """
    return (f"max_over_time({outages.START}[$__interval]) * 1000",
            f"max_over_time({outages.LAST_EVALUATION}[$__interval]) * 1000")


def outage_transformations() -> list[Json]:
    """One row per outage: the rows of every step, grouped by target and start."""
    c = words.OUTAGE_COLUMNS_DASHBOARD
    return [
        {"id": "merge", "options": {}},
        {"id": "groupBy", "options": {"fields": {
            "target": {"operation": "groupby", "aggregations": []},
            START: {"operation": "groupby", "aggregations": []},
            END: {"operation": "aggregate", "aggregations": ["max"]},
            "reason": {"operation": "aggregate", "aggregations": ["uniqueValues"]},
        }}},
        {"id": "calculateField", "options": {
            "mode": "binary", "alias": c["duration"], "replaceFields": False,
            "binary": {"left": END_MAX, "operator": "-", "right": START}}},
        {"id": "organize", "options": {
            "indexByName": {"target": 0, START: 1, END_MAX: 2, c["duration"]: 3, REASONS: 4},
            "renameByName": {"target": c["target"], START: c["start"], END_MAX: c["end"],
                             REASONS: c["reason"]}}},
        {"id": "sortBy", "options": {"sort": [{"field": c["start"], "desc": True}]}},
    ]


def outage_table(m: Monitoring) -> Json:
    start, last = outage_queries()
    c = words.OUTAGE_COLUMNS_DASHBOARD
    queries = [target(start, c["start"], "table"), target(last, c["end"], "table")]
    for each_query in queries:
        each_query["interval"] = "1m"
    each = panel("table", words.PANELS["outage_table"], queries, 24, 8,
                 words.OUTAGE_TABLE_DESCRIPTION.format(alerts=" / ".join(outages.ALERTS)))
    each["transformations"] = outage_transformations()
    each["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byName", "options": c["start"]},
         "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},
        {"matcher": {"id": "byName", "options": c["end"]},
         "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},
        {"matcher": {"id": "byName", "options": c["duration"]},
         "properties": [{"id": "unit", "value": "ms"}]},
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
