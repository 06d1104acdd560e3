"""The monitoring pack: every generated file, by its path relative to the pack's root.

One list, so the repository's `python -m tools.generate` and the installed
program write the same files for the same configs.
"""

from __future__ import annotations

from pathlib import Path

from exporter.config import Config
from exporter.monitoring import (
    alertmanager,
    dashboards,
    itdashboard,
    rules,
    scrape_config,
    settings,
)
from exporter.monitoring.settings import Monitoring
from exporter.web import runbooks

RULES = Path("alerts") / "dicom.rules.yml"
CALENDAR_RULES = Path("alerts") / rules.CALENDAR_RULES
CALENDAR_TESTS = Path("alerts") / "dicom.calendar.test.yml"
ALERTMANAGER = Path("alerts") / "alertmanager.yml"
TEMPLATES = Path("alerts") / "templates"
DASHBOARDS = Path("grafana") / "dashboards"
PROVISIONING = Path("grafana") / "provisioning"
PROMETHEUS = Path("prometheus") / "prometheus.yml"
RUNBOOKS = Path("runbooks")
# Folders the pack copies as shipped rather than generates (no header of ours).
COPIED = (TEMPLATES, RUNBOOKS)
# Shipped as written (package data), copied into the pack.
SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "templates"


def generate(m: Monitoring, config: Config) -> dict[Path, str]:
    """Relative path -> text of every file generated for these configs."""
    files = {RULES: rules.render(m, config), CALENDAR_RULES: rules.render_calendar(m, config),
             CALENDAR_TESTS: rules.render_calendar_tests(m),
             ALERTMANAGER: alertmanager.render(m)}
    files |= {TEMPLATES / path.name: path.read_text(encoding="utf-8")
              for path in sorted(SHIPPED_TEMPLATES.glob("*.tmpl"))}
    files |= {DASHBOARDS / name: text for name, text in dashboards.render(m).items()}
    files[DASHBOARDS / itdashboard.FILE] = itdashboard.render(m)
    files |= {PROVISIONING / name: text for name, text in dashboards.provisioning(m).items()}
    files[PROMETHEUS] = scrape_config.render(m)
    # The runbooks as shipped, for a static web server (runbook_static_base_url).
    # They transcribe the example's routine: generating them from another
    # site's routine model is not done here.
    files |= {RUNBOOKS / f"{name}.md": runbooks.source(name) or ""
              for name in [*runbooks.names(), runbooks.INDEX]}
    return files


def load(config: Config, monitoring: Path = settings.CONFIG) -> Monitoring:
    """The monitoring settings for `config` (the shipped monitoring config by default)."""
    return settings.load(config, monitoring)


def stale(out: Path, files: dict[Path, str]) -> list[Path]:
    """The files under `out` whose text differs from (or lacks) what was generated."""
    changed = []
    for relative, text in files.items():
        path = out / relative
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            changed.append(relative)
    return changed


def write(out: Path, files: dict[Path, str]) -> list[Path]:
    """Write the files that differ under `out`; the relative paths written."""
    changed = stale(out, files)
    for relative in changed:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[relative], encoding="utf-8")
    return changed
