"""TCP connect only: is the link computer there at all."""

from __future__ import annotations

from exporter.probers.report import ProbeReport
from exporter.probers.session import open_socket


def probe(report: ProbeReport) -> bool:
    report.tidy(open_socket(report).close)
    return True
