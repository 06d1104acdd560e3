"""Probers by name, all with one signature: `probe(context, report) -> bool`.

A prober reads its target, module, deadline and the state it may touch (open
associations, the store memory) from the frozen context and writes what it
finds into the report. `run` is the one place that turns a ProbeFailure, or a bug, into a
classified result, so no prober can raise past it and no probe can outlive
its deadline by more than the socket call in progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from exporter.config import Module, Target
from exporter.config.prober_kinds import KINDS
from exporter.dicom.failure import ProbeFailure
from exporter.probers import echo, negotiate, store, tcp
from exporter.probers.context import ProbeContext
from exporter.probers.memory import ProberState
from exporter.probers.report import ProbeReport
from exporter.reasons import Reason

Prober = Callable[[ProbeContext, ProbeReport], bool]

PROBERS: dict[str, Prober] = {
    "tcp": tcp.probe,
    "echo": echo.probe,
    "negotiate": negotiate.probe,
    "store": store.probe,
}
assert set(PROBERS) == set(KINDS), "every kind in prober_kinds needs its prober"

logger = logging.getLogger("dicom_exporter.probe")


def run(
    target: Target, module: Module, timeout: float, state: ProberState | None = None,
    deferred: list[Callable[[], None]] | None = None, log: bool = False,
) -> ProbeReport:
    """One probe; without `state` it starts from nothing (a one-off, e.g. the CLI).

    With `deferred`, closing the probe's socket is left in that list for the
    caller to run once it has answered (ProbeContext.tidy). With `log`, the
    context keeps the probe's notes for `report.context.log`.
    """
    context = ProbeContext.start(target, module, timeout, state, deferred, log)
    report = ProbeReport(context)
    context.note("probing %s (%s:%s) with module %s (%s), timeout %.3fs", target.name,
                target.host, target.port, module.name, module.prober, timeout)
    try:
        report.success = PROBERS[module.prober](context, report)
    except ProbeFailure as failure:
        report.success = report.fail(failure)
    except Exception as exc:  # a bug of ours must not look like a peer fault
        logger.exception("prober %s crashed on %s", module.prober, target.name)
        report.success = report.fail(ProbeFailure(Reason.INTERNAL_ERROR, repr(exc)))
    report.duration = time.perf_counter() - context.started
    if report.success and report.result_age is None and "connect" in report.phases:
        # The time on the network: the name lookup and every phase, each timed at the socket,
        # without our own work between them (exporter/dicom/timed_io.py).
        network = sum(report.phases.values()) + (report.dns_lookup or 0.0)
        report.duration = min(report.duration, network)
    context.note("probe succeeded" if report.success else "probe failed")
    return report
