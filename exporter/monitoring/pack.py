"""The monitoring pack: every generated file, by its path relative to the pack's root.

One list, so the repository's `python -m tools.generate` and the installed
program write the same files for the same configs.
"""

from __future__ import annotations

from pathlib import Path

from exporter.config import Config
from exporter.monitoring import dashboards, rules, settings
from exporter.monitoring.settings import Monitoring

RULES = Path("alerts") / "dicom.rules.yml"
DASHBOARDS = Path("grafana") / "dashboards"


def generate(m: Monitoring, config: Config) -> dict[Path, str]:
    """Relative path -> text of every file generated for these configs."""
    files = {RULES: rules.render(m, config)}
    files |= {DASHBOARDS / name: text for name, text in dashboards.render(m).items()}
    return files


def load(config: Config, monitoring: Path = settings.CONFIG) -> Monitoring:
    """The monitoring settings for `config` (the shipped monitoring config by default)."""
    return settings.load(config, monitoring)
