"""`dicom-exporter monitoring generate`: the installed program writes the monitoring pack.

The repository's committed files are this command's output for the example
config; a bad monitoring config is one line naming the file, not a traceback.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from exporter.cli import main as cli
from exporter.monitoring import pack, settings
from tests.support.realpeers import require
from tools.generate import EXAMPLE, ROOT


def generate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["monitoring", "generate", *args])
    return result.exit_code, result.output


def test_the_command_writes_the_committed_files_for_the_example_config(tmp_path: Path) -> None:
    code, output = generate("--config.file", str(EXAMPLE), "--out", str(tmp_path))
    assert code == 0, output
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written and pack.RULES in written
    for relative in written:
        assert (tmp_path / relative).read_text(encoding="utf-8") == (
            ROOT / relative).read_text(encoding="utf-8"), relative
    # Run again: nothing changes, nothing is rewritten.
    code, output = generate("--config.file", str(EXAMPLE), "--out", str(tmp_path))
    assert code == 0 and "0 files written" in output, output


def test_a_broken_monitoring_config_is_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "monitoring.yml"
    broken.write_text("jobs: {probe: dicom_probe}\n", encoding="utf-8")
    code, output = generate("--config.file", str(EXAMPLE), "--monitoring.file", str(broken),
                            "--out", str(tmp_path / "out"))
    assert code == 1
    assert output.count("\n") == 1 and output.startswith(str(broken)), output
    assert "Traceback" not in output and not (tmp_path / "out").exists()


ONE_SITE = """\
sites:
  solo: {name: Solo}
modules:
  echo: {prober: echo, timeout: 5s}
targets:
  link:
    host: link.solo.invalid
    port: 104
    ae_title: SOLO_LINK
    modules: [echo]
    labels: {site: solo, region: solo, role: link_computer}
  partner:
    host: pacs.partner.invalid
    port: 104
    ae_title: PARTNER
    modules: [echo]
    labels: {site: solo, region: partner, role: partner}
"""


def branches(template: str) -> list[str]:
    """What a runbook_url template can render to, one text per path through it:
    `{{ with Q }}A{{ else }}B{{ end }}C` gives A C and B C. A lookup's value (the
    exporter's published URL) stands as EXTERNAL_URL."""
    template = template.replace('{{ . | first | label "external_url" }}', "EXTERNAL_URL")
    match = re.search(r"\{\{ with .*? \| query \}\}(.*?)(?:\{\{ else \}\}(.*?))?\{\{ end \}\}",
                      template)
    if not match:
        return [template]
    head, tail = template[:match.start()], template[match.end():]
    return [out for inner in (match[1], match[2] or "")
            for out in branches(head + inner + tail)]


def runbook_urls(pack: Path) -> dict[str, str]:
    out = {}
    for path in sorted((pack / "alerts").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[rule["alert"]] = rule["annotations"]["runbook_url"]
    return out


def test_with_one_site_and_no_base_every_runbook_link_is_absolute(tmp_path: Path) -> None:
    config = tmp_path / "solo.yml"
    config.write_text(ONE_SITE, encoding="utf-8")
    code, output = generate("--config.file", str(config), "--out", str(tmp_path / "pack"))
    assert code == 0, output
    urls = runbook_urls(tmp_path / "pack")
    assert "DicomExporterDown" in urls and "DicomLinkComputerDown" in urls
    for name, template in urls.items():
        for text in branches(template):
            assert text.startswith(("http://", "https://", "EXTERNAL_URL")), (name, text)
            assert text.endswith(f"/runbooks/{name}"), (name, text)
    # The exporter-down alert, with no other exporter answering: the static base.
    assert "https://intranet.kronoberg.invalid/dicom/runbooks/DicomExporterDown" in branches(
        urls["DicomExporterDown"])
    # A reporting exporter's own alert: its own URL, never a static host.
    assert all("intranet" not in text for text in branches(urls["DicomLinkComputerDown"]))


def without_static_base(tmp_path: Path) -> Path:
    raw = yaml.safe_load(settings.CONFIG.read_text(encoding="utf-8"))
    raw["runbook_base_url"] = ""
    raw["runbook_static_base_url"] = ""
    path = tmp_path / "monitoring.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_generate_refuses_a_config_that_would_leave_a_runbook_link_relative(
        tmp_path: Path) -> None:
    monitoring = without_static_base(tmp_path)
    code, output = generate("--config.file", str(EXAMPLE), "--monitoring.file", str(monitoring),
                            "--out", str(tmp_path / "out"))
    assert code == 1 and output.count("\n") == 1, output
    assert output.startswith(f"{monitoring}: runbook_static_base_url: ") and "relative" in output
    assert not (tmp_path / "out").exists()


def test_check_config_refuses_it_too(tmp_path: Path) -> None:
    monitoring = without_static_base(tmp_path)
    result = CliRunner().invoke(cli, ["check-config", str(EXAMPLE),
                                      "--monitoring.file", str(monitoring)])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "runbook_static_base_url" in result.output and "relative" in result.output
    shipped = CliRunner().invoke(cli, ["check-config", str(EXAMPLE)])
    assert shipped.exit_code == 0, shipped.output


def test_a_base_that_is_not_an_absolute_url_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(settings.CONFIG.read_text(encoding="utf-8"))
    raw["runbook_static_base_url"] = "/dicom"
    path = tmp_path / "monitoring.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    code, output = generate("--config.file", str(EXAMPLE), "--monitoring.file", str(path),
                            "--out", str(tmp_path / "out"))
    assert code == 1 and "runbook_static_base_url: '/dicom' is not an absolute" in output


def test_the_grafana_datasource_cannot_collide_and_is_not_the_default() -> None:
    text = (ROOT / "grafana" / "provisioning" / "datasources" / "dicom-exporter.yml").read_text(
        encoding="utf-8")
    (source,) = yaml.safe_load(text)["datasources"]
    assert source["uid"] == "dicom-exporter-prometheus"
    assert source["name"] != "Prometheus" and "dicom-exporter" in source["name"]
    assert source["isDefault"] is False


@pytest.mark.slow
def test_the_generated_pack_passes_promtool_and_amtool(tmp_path: Path) -> None:
    """From the generated folder alone: the rules, their tests, the Prometheus config
    and the Alertmanager config are accepted by Prometheus' and Alertmanager's own tools."""
    pack_dir = tmp_path / "pack"
    code, output = generate("--config.file", str(EXAMPLE), "--out", str(pack_dir))
    assert code == 0, output
    promtool, amtool = require("promtool"), require("amtool")
    for command in (
        [promtool, "check", "rules", "alerts/dicom.rules.yml", "alerts/dicom.calendar.rules.yml"],
        [promtool, "test", "rules", "alerts/dicom.calendar.test.yml"],
        [promtool, "check", "config", "prometheus/prometheus.yml"],
        [amtool, "check-config", "alerts/alertmanager.yml"],
    ):
        result = subprocess.run(command, cwd=pack_dir, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
