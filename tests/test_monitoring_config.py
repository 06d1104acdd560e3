"""The monitoring config drives the rules and dashboards; names come from the exporter config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from exporter import config as exporter_config
from exporter.config import ConfigError
from exporter.monitoring import settings
from tools.generate import EXAMPLE, example

ROOT = Path(__file__).parent.parent


def rules_by_name() -> dict[str, dict]:
    document = yaml.safe_load((ROOT / "alerts" / "dicom.rules.yml").read_text(encoding="utf-8"))
    return {rule["alert"]: rule for rule in document["groups"][0]["rules"]}


def test_waits_per_role_come_from_the_monitoring_config() -> None:
    m = example()
    rules = rules_by_name()
    assert rules["DicomLinkComputerDown"]["for"] == m.for_by_role["link_computer"]
    assert rules["DicomPartnerUnreachable"]["for"] == m.for_by_role["partner"]
    assert rules["DicomExporterConfigReloadFailed"]["for"] == m.wait("reload")


def test_site_names_are_read_from_the_exporter_config() -> None:
    m = example()
    assert m.site_names == {"vaxjo": "Växjö", "ljungby": "Ljungby"}
    assert '"Växjö"' in (ROOT / "alerts" / "dicom.rules.yml").read_text(encoding="utf-8")


def test_prober_selectors_come_from_the_table_of_prober_kinds() -> None:
    m = example()
    assert m.reachability == 'prober=~"tcp|echo"'
    assert m.receiving == 'prober=~"negotiate|store"'


def test_a_role_without_a_wait_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(settings.CONFIG.read_text(encoding="utf-8"))
    del raw["for_by_role"]["relay"]
    path = tmp_path / "monitoring.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="no wait for role"):
        settings.load(exporter_config.load(str(EXAMPLE)), path)


def test_runbook_links_use_the_exporters_published_url_and_never_the_lost_one() -> None:
    m = example()
    assert 'instance=\\"%s\\"' in m.runbook("X")
    assert m.runbook("X").endswith("http://{{ $labels.instance }}{{ end }}/runbooks/X")
    lost = m.runbook("DicomExporterDown", with_instance=False)
    assert 'instance!=\\"%s\\"' in lost
    assert "$labels.instance" not in lost


def test_a_configured_runbook_base_url_wins() -> None:
    m = dataclasses.replace(example(), runbook_base_url="https://intranet.example/dicom/")
    assert m.runbook("Watchdog", with_instance=False) == (
        "https://intranet.example/dicom/runbooks/Watchdog")
