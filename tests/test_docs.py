"""The README, the docs/ pages and the examples say what the code does: fail when they drift."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from exporter import metrics
from exporter.reasons import ROUTINE, Reason
from tests.support.realpeers import require

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _numbers(cell: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", cell))


def test_reason_table_matches_the_routine_mapping() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]*) \| ([^|]*) \|", page("reasons.md"),
                      re.MULTILINE)
    table = {name: (_numbers(send), _numbers(receive)) for name, send, receive in rows
             if name in {r.value for r in Reason}}
    expected = {
        reason.value: (cause.send_causes, cause.receive_causes)
        for reason, cause in ROUTINE.items()
    }
    assert table == expected


def test_every_reason_has_a_routine_mapping() -> None:
    assert set(ROUTINE) == set(Reason)


def test_every_metric_is_documented_in_the_metrics_page() -> None:
    names = {
        value for key, value in vars(metrics).items()
        if key.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+", value)
    }
    assert len(names) > 20
    text = page("metrics.md")
    missing = sorted(name for name in names if f"`{name}" not in text)
    assert missing == []


@pytest.mark.slow
def test_example_prometheus_config_is_valid() -> None:
    result = subprocess.run(
        [require("promtool"), "check", "config", str(ROOT / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_examples_never_name_an_ip_address() -> None:
    for path in (p for p in (ROOT / "examples").rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", text), path


def test_every_alert_is_in_the_alerts_table() -> None:
    import yaml

    names = {r["alert"] for path in sorted((ROOT / "alerts").glob("*.rules.yml"))
             for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
             for r in group["rules"] if "alert" in r}
    rows = set(re.findall(r"^\| `([A-Za-z]+)` \| (?:critical|warning|none) \|",
                          page("alerts.md"), re.MULTILINE))
    assert rows == names


def test_the_scenario_table_shows_every_next_step_as_delivered() -> None:
    from alerts.scenarios import SCENARIOS

    text = page("alerts.md")
    section = text[text.index("## Scenarios"):]
    for scenario in SCENARIOS:
        assert f"| {scenario.name}" in section, scenario.name
        for stage in scenario.stages:
            for notification in stage.expected:
                for step in notification.alerts.values():
                    assert not step or step in section, step
