"""Dashboard JSON: generated, structurally valid, every query behind ${datasource}.

Grafana itself cannot run here; the queries are run against a real Prometheus
in test_stack.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools.generate import outputs

ROOT = Path(__file__).parent.parent
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_dashboards_are_what_the_generator_makes() -> None:
    rendered = {path: text for path, text in outputs().items() if path.suffix == ".json"}
    assert sorted(rendered) == DASHBOARDS
    for path in DASHBOARDS:
        assert path.read_text(encoding="utf-8") == rendered[path], (
            f"{path.name} is out of date: run python -m tools.generate")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"].startswith("dicom-")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "site" in variables
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"


def test_the_overview_and_target_dashboards_have_site_and_partner_or_target() -> None:
    overview = {v["name"] for v in load(GRAFANA / "dashboards" / "overview.json")
                ["templating"]["list"]}
    target = {v["name"] for v in load(GRAFANA / "dashboards" / "target.json")
              ["templating"]["list"]}
    assert {"site", "partner"} <= overview and {"site", "target"} <= target


def test_no_hard_coded_datasource_anywhere() -> None:
    for path in DASHBOARDS:
        text = path.read_text(encoding="utf-8")
        uids = {part.split('"')[0] for part in text.split('"uid": "')[1:]}
        assert uids <= {"${datasource}", load(path)["uid"]}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_stale_is_unknown_and_firing_alerts_are_annotations(path: Path) -> None:
    """No panel shows a stale series' last value; every dashboard marks firing alerts."""
    dashboard = load(path)
    for panel in dashboard["panels"]:
        calcs = panel["options"].get("reduceOptions", {}).get("calcs", [])
        assert "lastNotNull" not in calcs, panel["title"]
        if panel["type"] == "stat":
            assert calcs == ["last"] and panel["fieldConfig"]["defaults"]["noValue"] == "okänd"
    (alerts,) = dashboard["annotations"]["list"]
    assert alerts["expr"] == 'ALERTS{alertstate="firing"}' and alerts["enable"]


def test_it_dashboard_panels_link_to_their_runbook_and_the_status_page() -> None:
    dashboard = load(GRAFANA / "dashboards" / "itops.json")
    assert dashboard["time"]["from"] == "now-30d"
    titles = [panel["title"] for panel in dashboard["panels"]]
    for fixed in ("24 h", "7 dygn", "30 dygn"):
        assert any(title.endswith(fixed) for title in titles), fixed
    for panel in dashboard["panels"]:
        urls = [link["url"] for link in panel["links"]]
        assert any("/runbooks/Dicom" in url and url.endswith("ErrorBudgetBurn") for url in urls)
        assert "${exporter_url}/" in urls, panel["title"]


# Grafana's transformations (DataTransformerID, packages/grafana-data/src/
# transformations/transformers/ids.ts) and calculations (ReducerID, fieldReducer.ts)
# as of Grafana 8; later versions add, never remove.
TRANSFORMATIONS = {
    "append", "reduce", "order", "organize", "rename", "calculateField", "seriesToColumns",
    "seriesToRows", "merge", "concatenate", "labelsToFields", "filterFields",
    "filterFieldsByName", "filterFrames", "filterByRefId", "renameByRegex", "filterByValue",
    "noop", "ensureColumns", "groupBy", "sortBy"}
REDUCERS = {
    "sum", "max", "min", "logmin", "mean", "last", "first", "count", "range", "diff",
    "diffperc", "delta", "step", "firstNotNull", "lastNotNull", "changeCount",
    "distinctCount", "allIsZero", "allIsNull", "allValues", "uniqueValues"}
RECORDED = re.compile(r"\b([a-z_]+):[a-z_]+:[a-z_0-9]+\b")


def query_fields(panel: dict) -> set[str]:
    """The columns of the panel's table-format queries: Time, `Value #<refId>` and the
    labels, here those of recording rules (`level:metric:operations`, the level naming
    the labels kept)."""
    fields = {"Time"}
    for query in panel["targets"]:
        assert query["format"] == "table", panel["title"]
        fields.add(f"Value #{query['refId']}")
        for level in RECORDED.findall(query["expr"]):
            fields.update(level.split("_"))
    return fields


def fields_after(step: dict, fields: set[str]) -> set[str]:
    """What one transformation makes of the fields, failing on a name it does not have."""
    kind, options = step["id"], step["options"]
    if kind == "merge":
        return fields
    if kind == "groupBy":
        out = set()
        for name, option in options["fields"].items():
            assert name in fields, f"groupBy: no field {name!r} in {sorted(fields)}"
            if option["operation"] == "groupby":
                out.add(name)
            else:
                assert option["operation"] == "aggregate" and option["aggregations"]
                assert set(option["aggregations"]) <= REDUCERS, option
                out.update(f"{name} ({calc})" for calc in option["aggregations"])
        return out
    if kind == "calculateField":
        binary = options["binary"]
        for side in (binary["left"], binary["right"]):
            assert side in fields, f"calculateField: no field {side!r} in {sorted(fields)}"
        assert options["mode"] == "binary" and binary["operator"] in "+-*/"
        return fields | {options["alias"]}
    if kind == "organize":
        for key in ("renameByName", "indexByName", "excludeByName"):
            for name in options.get(key, {}):
                assert name in fields, f"organize: no field {name!r} in {sorted(fields)}"
        kept = {f for f in fields if not options.get("excludeByName", {}).get(f)}
        return {options.get("renameByName", {}).get(f, f) for f in kept}
    if kind == "sortBy":
        for each in options["sort"]:
            assert each["field"] in fields, f"sortBy: no field {each['field']!r}"
        return fields
    raise AssertionError(f"no field rule here for {kind}")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_transformations_exist_in_grafana_and_read_fields_made_before(path: Path) -> None:
    for panel in load(path)["panels"]:
        if not panel.get("transformations"):
            continue
        fields = query_fields(panel)
        for step in panel["transformations"]:
            assert step["id"] in TRANSFORMATIONS, step["id"]
            fields = fields_after(step, fields)
        for override in panel["fieldConfig"]["overrides"]:
            if override["matcher"]["id"] == "byName":
                assert override["matcher"]["options"] in fields, (panel["title"], fields)


def test_the_outage_table_is_one_row_per_target_and_start() -> None:
    (table,) = [p for p in load(GRAFANA / "dashboards" / "itops.json")["panels"]
                if p["type"] == "table"]
    steps = {step["id"]: step["options"] for step in table["transformations"]}
    keys = {k for k, o in steps["groupBy"]["fields"].items() if o["operation"] == "groupby"}
    assert keys == {"target", "Value #A"}  # the target and its outage's start
    assert all(not q["instant"] for q in table["targets"])  # every step of the range
