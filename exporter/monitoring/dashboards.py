"""The Grafana dashboards (grafana/dashboards/), from one description and the monitoring config.

Selectors come from the monitoring config, shared with the alert rules.
`python -m tools.generate` writes the repository's copy; a test fails when
the JSON files differ from what this module makes. Generating them keeps panel ids
unique, grid positions tidy and every query behind the `${datasource}`
variable, which hand-edited dashboard JSON rarely stays.

Target: Grafana 10.4 and later (schemaVersion 39); the JSON uses only core
panel types (stat, timeseries, table, heatmap, state-timeline).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from exporter.metrics import TARGET_INFO
from exporter.monitoring.settings import Monitoring
from exporter.route_state import SWEDISH_HOP, HopState
from exporter.routine.itops import ANNOTATION_ALERTS

Json = dict[str, Any]
DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
# Dashboard JSON has no comments: the description says what made it.
GENERATED = ("(Genererad av exporter/monitoring/dashboards.py från övervakningens "
             "konfiguration: ändra där och kör python -m tools.generate.)")
UNKNOWN = SWEDISH_HOP[HopState.UNKNOWN]
# -1 is what the up/down tiles' queries answer for a configured target without a
# fresh sample; null is Grafana's own "no value": both read "okänd", never the
# last value seen.
UP_DOWN = [{"type": "value", "options": {
    "0": {"text": SWEDISH_HOP[HopState.DOWN], "color": "red", "index": 0},
    "1": {"text": SWEDISH_HOP[HopState.UP], "color": "green", "index": 1},
    "-1": {"text": UNKNOWN, "color": "text", "index": 2}}},
    {"type": "special", "options": {"match": "null", "result": {
        "text": UNKNOWN, "color": "text", "index": 3}}}]
# The latest value only: a stale series shows as unknown, not as its last value.
LAST = {"calcs": ["last"]}
# Firing alerts as annotations on every time-series panel.
ALERT_ANNOTATIONS = [{
    "name": ANNOTATION_ALERTS, "datasource": DS, "enable": True, "iconColor": "red",
    "expr": 'ALERTS{alertstate="firing"}', "step": "60s", "titleFormat": "{{alertname}}",
    "textFormat": "{{target}} {{site}}", "tagKeys": "severity,audience",
    "useValueForTime": False,
}]


def variable_datasource() -> Json:
    return {"name": "datasource", "label": "Datakälla", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0}


def variable_query(name: str, label: str, query: str, multi: bool = True) -> Json:
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
        "refresh": 2, "includeAll": True, "multi": multi, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1, "hide": 0,
    }


SITE = variable_query("site", "Plats (mätpunkt)",
                      "label_values(dicom_exporter_target_info, site)")


def variable_partner(m: Monitoring) -> Json:
    return variable_query(
        "partner", "Partnerregion",
        f'label_values(dicom_exporter_target_info{{{m.partners}, site=~"$site"}}, target)')


TARGET = variable_query("target", "Mål", 'label_values(probe_success{site=~"$site"}, target)')


def target(expr: str, legend: str = "", fmt: str = "time_series", instant: bool = False
           ) -> Json:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "format": fmt,
            "instant": instant, "range": not instant}


def panel(kind: str, title: str, targets: list[Json], width: int, height: int,
          description: str = "", unit: str = "", mappings: list[Json] | None = None,
          options: Json | None = None) -> Json:
    for index, each in enumerate(targets):
        each["refId"] = chr(ord("A") + index)
    defaults: Json = {"noValue": UNKNOWN} if kind == "stat" else {}
    if unit:
        defaults["unit"] = unit
    if mappings:
        defaults["mappings"] = mappings
        defaults["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "red", "value": None}, {"color": "green", "value": 1}]}
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options or {}, "_size": (width, height)}


def up_down_stat(m: Monitoring, title: str, selector: str, description: str) -> Json:
    """One tile per target and vantage point: "upp" or "NERE", never colour alone."""
    expr = (f'min by (site, target) (probe_success{{{m.probe}, {selector}, site=~"$site"}})\n'
            f"or on (site, target) -1 * group by (site, target) "
            f'({TARGET_INFO}{{{selector}, site=~"$site"}})')
    return panel("stat", title, [target(expr, "{{target}} från {{site}}", instant=True)],
                 12, 5, description, mappings=UP_DOWN,
                 options={"colorMode": "background", "textMode": "value_and_name",
                          "reduceOptions": LAST})


def layout(panels: list[Json]) -> list[Json]:
    """Ids from 1 and a left-to-right, top-to-bottom grid 24 units wide."""
    x = y = row_height = 0
    out = []
    for number, each in enumerate(panels, start=1):
        width, height = each.pop("_size")
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        each["id"] = number
        each["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        x += width
        row_height = max(row_height, height)
        out.append(each)
    return out


def dashboard(uid: str, title: str, description: str, variables: list[Json],
              panels: list[Json], tags: list[str]) -> Json:
    return {
        "uid": uid, "title": title, "tags": [*tags, "generated"],
        "description": f"{description} {GENERATED}",
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "timezone": "browser",
        "templating": {"list": [variable_datasource(), *variables]},
        "annotations": {"list": ALERT_ANNOTATIONS}, "links": [
            {"title": "DICOM-dashboards", "type": "dashboards", "tags": ["dicom"],
             "asDropdown": True}],
        "panels": layout(panels),
    }


def overview(m: Monitoring) -> Json:
    routes = 'dicom_route_active{site=~"$site"}'
    return dashboard(
        "dicom-overview", "DICOM-överföring: Överblick",
        "Länkadatorer, partnerregioner och vägar i ett ögonkast, per mätpunkt.",
        [SITE, variable_partner(m)],
        [
            up_down_stat(m, "Länkadatorer", m.link_computers,
                         f"{' och '.join(m.link_computer_titles)}, sett från varje "
                         "mätpunkt."),
            up_down_stat(m, "Partnerregioner", f'{m.partners}, target=~"$partner"',
                         "Svarar regionens PACS (alla moduler)?"),
            panel("table", "Vägar just nu", [target(
                routes, fmt="table", instant=True)], 12, 9,
                "Hur en undersökning går nu: ordinarie väg, reservväg eller ingen (sista utväg).",
                options={"showHeader": True}),
            panel("state-timeline", "Vägarnas läge över tid", [target(
                'max by (route, status) (dicom_route_active{site=~"$site"})',
                "{{route}}: {{status}}")], 12, 9, "primary, fallback, none eller unknown."),
            panel("timeseries", "Fel per orsak", [target(
                "sum by (reason) (rate(dicom_exporter_probe_failures_total["
                "$__rate_interval]) * on (target, instance) group_left (site) "
                'dicom_exporter_target_info{site=~"$site"})', "{{reason}}")], 12, 8,
                "Misslyckade prober per sekund, per klassad orsak.", unit="reqps"),
            panel("table", "Aktiva larm", [target(
                'ALERTS{alertstate="firing"}', fmt="table", instant=True)], 12, 8,
                "Larm som Prometheus skickar till Alertmanager just nu."),
        ],
        ["dicom"],
    )


def per_target(m: Monitoring) -> Json:
    selector = f'{m.probe}, target=~"$target", site=~"$site"'
    rates = ('rate(dicom_exporter_probe_duration_seconds_bucket{module="echo", '
             'target=~"$target"}[$__rate_interval]) * on (target, instance) group_left (site) '
             'dicom_exporter_target_info{site=~"$site"}')
    return dashboard(
        "dicom-target", "DICOM-överföring: Mål",
        "C-ECHO-tid, faser, mottagning och felorsaker för valda mål.",
        [SITE, TARGET],
        [
            panel("heatmap", "C-ECHO-tid (fördelning)", [target(
                f"sum by (le) ({rates})", "{{le}}",
                fmt="heatmap")], 12, 8, "Histogram över probtiden, från exporterns /metrics.",
                unit="s", options={"calculate": False, "yAxis": {"unit": "s"}}),
            panel("timeseries", "C-ECHO-tid (percentiler)", [
                target(f"histogram_quantile({q}, sum by (le) ({rates}))", f"p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)], 12, 8, unit="s"),
            panel("timeseries", "Faser (C-ECHO)", [target(
                f'avg by (phase) (probe_dicom_phase_duration_seconds{{{selector}, {m.echo}}})',
                "{{phase}}")], 12, 8, "connect, associate, dimse, release: var tiden går.",
                unit="s", options={"legend": {"displayMode": "table"}}),
            panel("timeseries", "Mottagning: negotiate och store lyckas", [target(
                f'avg by (target, module) (avg_over_time(probe_success{{{selector}, '
                f'{m.receiving}}}[$__rate_interval]))', "{{target}} {{module}}")],
                12, 8, "Andel lyckade förhandlingar och provsändningar.", unit="percentunit"),
            panel("timeseries", "Felorsaker över tid", [target(
                'sum by (reason) (increase(dicom_exporter_probe_failures_total{target=~"$target"}'
                "[$__rate_interval]))", "{{reason}}")], 12, 8, unit="short"),
            panel("timeseries", "DIMSE-status", [target(
                f"max by (target, module) (probe_dicom_dimse_status{{{selector}}})",
                "{{target}} {{module}}")], 12, 8, "0 är lyckat; annat är varning eller fel.",
                unit="none"),
        ],
        ["dicom"],
    )


def exporter_health(m: Monitoring) -> Json:
    return dashboard(
        "dicom-exporter", "DICOM-överföring: Exportern",
        "Övervakningen själv: prober, tider mot timeout, omladdningar, minne.",
        [SITE],
        [
            panel("timeseries", "Prober per sekund", [target(
                f"sum by (instance) (rate(dicom_exporter_probes_total{{{m.exporter}}}"
                "[$__rate_interval]))", "{{instance}}")], 12, 8, unit="reqps"),
            panel("timeseries", "Probtid mot timeout", [
                target(f'max by (module) (probe_duration_seconds{{{m.probe}, site=~"$site"}})',
                       "längsta {{module}}"),
                target(f"max by (module) (dicom_exporter_module_timeout_seconds{{{m.exporter}}})",
                       "timeout {{module}}")], 12, 8,
                "En prob som närmar sig sin timeout närmar sig ett falskt larm.", unit="s"),
            panel("timeseries", "Pågående prober", [target(
                f"dicom_exporter_probes_in_flight{{{m.exporter}}}", "{{instance}}")], 8, 7),
            panel("stat", "Senaste omladdning lyckades", [target(
                f"dicom_exporter_config_last_reload_successful{{{m.exporter}}}", "{{instance}}",
                instant=True)], 8, 7, mappings=UP_DOWN,
                options={"colorMode": "background", "reduceOptions": LAST}),
            panel("timeseries", "Minne (RSS)", [target(
                f"process_resident_memory_bytes{{{m.exporter}}}", "{{instance}}")], 8, 7,
                unit="bytes"),
            panel("timeseries", "Scrape-tid för /probe", [target(
                f'max by (instance) (scrape_duration_seconds{{{m.probe}}})', "{{instance}}")],
                24, 7, "Hur lång tid Prometheus väntar på exportern.", unit="s"),
        ],
        ["dicom"],
    )


DASHBOARDS: dict[str, Callable[[Monitoring], Json]] = {
    "overview.json": overview, "target.json": per_target, "exporter.json": exporter_health}


def render(m: Monitoring) -> dict[str, str]:
    """File name -> dashboard JSON."""
    return {name: json.dumps(build(m), indent=2, ensure_ascii=False) + "\n"
            for name, build in DASHBOARDS.items()}


def provisioning(m: Monitoring) -> dict[str, str]:
    """Grafana's provisioning files, by path under grafana/provisioning/.

    The datasource has a fixed uid and a name of its own, and is not the
    default: Grafana matches provisioned datasources by name, so a plain
    "Prometheus" could rewrite a site's existing datasource. The dashboards
    pick theirs through the ${datasource} variable, so any Prometheus works.
    """
    g = m.grafana
    head = ("# Generated by exporter/monitoring/dashboards.py from the monitoring config\n"
            "# (its `grafana:` section): do not edit; run `python -m tools.generate`.\n")
    datasource = {"apiVersion": 1, "datasources": [{
        "name": g.datasource_name, "uid": g.datasource_uid, "type": "prometheus",
        "access": "proxy", "url": m.prometheus.url, "isDefault": False,
        # The scrape interval: $__rate_interval is built on it.
        "jsonData": {"timeInterval": m.probe_interval_by_role["partner"]}}]}
    providers = {"apiVersion": 1, "providers": [{
        "name": "dicom-transfer", "folder": g.folder, "type": "file",
        "disableDeletion": False, "allowUiUpdates": False,
        "options": {"path": g.dashboards_path}}]}
    return {
        "datasources/dicom-exporter.yml": head + "# Copy to /etc/grafana/provisioning/"
        "datasources/.\n" + yaml.safe_dump(datasource, sort_keys=False, allow_unicode=True),
        "dashboards/dicom.yml": head + "# Copy to /etc/grafana/provisioning/dashboards/, and "
        "grafana/dashboards/*.json to the path below.\n"
        + yaml.safe_dump(providers, sort_keys=False, allow_unicode=True),
    }
