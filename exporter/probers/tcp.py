"""TCP connect only: is the link computer there at all."""

from __future__ import annotations

from exporter.probers.context import ProbeContext
from exporter.probers.report import ProbeReport
from exporter.probers.session import open_socket


def probe(context: ProbeContext, report: ProbeReport) -> bool:
    context.tidy(open_socket(context, report).close)
    return True
