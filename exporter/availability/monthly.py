"""The report's period and the one call the CLI makes: read, compute, render."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

from exporter.availability import figures, prometheus, render


def period(start: date, end: date) -> tuple[float, float]:
    """[start, end) as Unix seconds: local midnights in Europe/Stockholm."""
    if end <= start:
        raise ValueError(f"--to {end} must be after --from {start}")
    begin, finish = (datetime(d.year, d.month, d.day, tzinfo=render.ZONE).timestamp()
                     for d in (start, end))
    return begin, finish


def make(url: str, start: float, end: float, fmt: str, probe_selector: str,
         for_by_role: Mapping[str, float], names: render.Names) -> str:
    """The report over [start, end) from the Prometheus at `url`, in format `fmt`."""
    client = prometheus.Client(url)
    probes, alerts = prometheus.fetch(client, probe_selector, start, end)
    report = figures.build(probes, alerts, start, end, for_by_role)
    return render.FORMATS[fmt](report, names)


class ReportError(RuntimeError):
    """A bad flag, config or Prometheus answer: one line for the user."""


def run(url: str, start: date, end: date, fmt: str, config_file: str,
        monitoring_file: str | None) -> str:
    """What `dicom-exporter report` prints: names and waits from the configs, figures
    from the Prometheus at `url`."""
    from exporter import config as config_module
    from exporter.config.strict import parse_duration
    from exporter.monitoring import settings

    try:
        begin, finish = period(start, end)
        config = config_module.load(config_file)
        m = settings.load(config, Path(monitoring_file) if monitoring_file else settings.CONFIG)
        for_by_role = {role: parse_duration(wait) for role, wait in m.for_by_role.items()}
    except (ValueError, OSError, config_module.ConfigError) as exc:
        raise ReportError(str(exc)) from None
    names = render.Names(m.site_names, dict(config.routine.regions))
    try:
        return make(url, begin, finish, fmt, m.probe, for_by_role, names)
    except prometheus.PrometheusError as exc:
        raise ReportError(str(exc)) from None
