"""Dashboard JSON: generated, structurally valid, every query behind ${datasource}.

Grafana itself cannot run here; the queries are run against a real Prometheus
in test_stack.py.
"""

from __future__ import annotations

import json
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
