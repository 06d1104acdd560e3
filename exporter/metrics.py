"""Every metric the exporter exposes: names, help texts and how they are built.

Names live here and nowhere else; the alert rules, dashboards and README are
checked against this module by the tests. Both endpoints use custom
collectors that yield metric families from plain data (client_python's
pattern for exporters): /probe from one ProbeReport in a fresh registry,
/metrics from the exporter's running statistics.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator

import pydicom
import pynetdicom
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__, route_state
from exporter.config import Config
from exporter.config.prober_kinds import KINDS
from exporter.probers.report import ProbeReport
from exporter.reasons import Reason
from exporter.stats import BUCKETS, Snapshot, Stats

# /probe ----------------------------------------------------------------------
PROBE_SUCCESS = "probe_success"
PROBE_DURATION = "probe_duration_seconds"
PROBE_DNS_LOOKUP = "probe_dns_lookup_time_seconds"
PROBE_PHASE_DURATION = "probe_dicom_phase_duration_seconds"
PROBE_FAILURE_REASON = "probe_dicom_failure_reason"
PROBE_ASSOCIATION_ACCEPTED = "probe_dicom_association_accepted"
PROBE_ASSOCIATION_REJECT = "probe_dicom_association_reject_info"
PROBE_ABORT = "probe_dicom_abort_info"
PROBE_DIMSE_STATUS = "probe_dicom_dimse_status"
PROBE_CONTEXT_ACCEPTED = "probe_dicom_presentation_context_accepted"
PROBE_PEER_INFO = "probe_dicom_peer_info"
PROBE_PEER_MAX_PDU = "probe_dicom_peer_max_pdu_length_bytes"
PROBE_RESULT_AGE = "probe_dicom_result_age_seconds"
PROBE_TIMEOUT = "probe_dicom_timeout_seconds"
PROBE_TLS_VERSION = "probe_dicom_tls_version_info"
PROBE_TLS_EXPIRY = "probe_dicom_tls_peer_certificate_expiry_seconds"

# /metrics --------------------------------------------------------------------
BUILD_INFO = "dicom_exporter_build_info"
CONFIG_RELOAD_OK = "dicom_exporter_config_last_reload_successful"
CONFIG_RELOAD_TIME = "dicom_exporter_config_last_reload_success_timestamp_seconds"
PROBES_TOTAL = "dicom_exporter_probes_total"
PROBE_FAILURES_TOTAL = "dicom_exporter_probe_failures_total"
PROBE_DURATION_HISTOGRAM = "dicom_exporter_probe_duration_seconds"
PROBES_IN_FLIGHT = "dicom_exporter_probes_in_flight"
LAST_SUCCESS = "dicom_exporter_last_probe_success"
LAST_TIMESTAMP = "dicom_exporter_last_probe_timestamp_seconds"
TARGET_INFO = "dicom_exporter_target_info"
MODULE_TIMEOUT = "dicom_exporter_module_timeout_seconds"
ROUTE_INFO = "dicom_route_info"
ROUTE_PATH_STATE = "dicom_route_path_state"
ROUTE_ACTIVE = "dicom_route_active"
WEB_INFO = "dicom_exporter_web_info"



class ProbeCollector(Collector):
    """The families of one /probe answer, as blackbox_exporter shapes them."""

    def __init__(self, report: ProbeReport) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        report = self.report
        prober = report.module.prober
        yield GaugeMetricFamily(
            PROBE_SUCCESS, "Whether the probe succeeded.", value=int(report.success)
        )
        yield GaugeMetricFamily(
            PROBE_DURATION, "How long the probe took, in seconds.", value=report.duration
        )
        yield GaugeMetricFamily(
            PROBE_DNS_LOOKUP, "Time spent resolving the target's host name, in seconds.",
            value=report.dns_lookup,
        )
        yield GaugeMetricFamily(
            PROBE_TIMEOUT,
            "The timeout this probe ran with, after the scrape timeout header.",
            value=report.timeout,
        )
        phases = GaugeMetricFamily(
            PROBE_PHASE_DURATION,
            "Time per phase, from sending the request to the last byte of the answer.",
            labels=["phase"],
        )
        tls = ("tls",) if report.target.tls is not None and prober != "tcp" else ()
        kind_phases = KINDS[prober].phases
        for phase in kind_phases[:1] + tls + kind_phases[1:]:
            phases.add_metric([phase], report.phases.get(phase, 0.0))
        yield phases
        if report.tls_version:
            version = GaugeMetricFamily(
                PROBE_TLS_VERSION, "The TLS version negotiated with the peer.",
                labels=["version"])
            version.add_metric([report.tls_version], 1)
            yield version
        if report.tls_expiry is not None:
            yield GaugeMetricFamily(
                PROBE_TLS_EXPIRY,
                "When the peer's (verified) certificate expires, in Unix time.",
                value=report.tls_expiry)
        reasons = GaugeMetricFamily(
            PROBE_FAILURE_REASON,
            "1 for the reason the probe failed, 0 for every other reason.",
            labels=["reason"],
        )
        for reason in Reason:
            reasons.add_metric([reason.value], int(report.reason is reason))
        yield reasons
        if prober == "tcp":
            return
        yield GaugeMetricFamily(
            PROBE_ASSOCIATION_ACCEPTED,
            "Whether the peer accepted the association.",
            value=int(report.peer is not None),
        )
        if report.reject is not None:
            reject = GaugeMetricFamily(
                PROBE_ASSOCIATION_REJECT,
                "The A-ASSOCIATE-RJ result, source and reason/diagnostic (PS3.8 9.3.4).",
                labels=["result", "source", "diagnostic"],
            )
            reject.add_metric([str(v) for v in report.reject], 1)
            yield reject
        if report.abort is not None:
            abort = GaugeMetricFamily(
                PROBE_ABORT,
                "The A-ABORT source and reason the peer sent (PS3.8 9.3.8).",
                labels=["source", "reason"],
            )
            abort.add_metric([str(v) for v in report.abort], 1)
            yield abort
        if report.status is not None:
            yield GaugeMetricFamily(
                PROBE_DIMSE_STATUS,
                "The DIMSE status code of the response (0 is success).",
                value=report.status,
            )
        if report.contexts:
            contexts = GaugeMetricFamily(
                PROBE_CONTEXT_ACCEPTED,
                "Whether the peer accepted the presentation context for this SOP class.",
                labels=["sop_class"],
            )
            names = {uid: keyword for keyword, uid in report.module.sop_classes}
            names["1.2.840.10008.1.1"] = "Verification"
            for cx in report.contexts:
                contexts.add_metric(
                    [names.get(cx.abstract_syntax, cx.abstract_syntax)], int(cx.accepted)
                )
            yield contexts
        if report.peer is not None:
            info = GaugeMetricFamily(
                PROBE_PEER_INFO,
                "The peer's implementation class UID and version name.",
                labels=["implementation_class_uid", "implementation_version_name"],
            )
            info.add_metric(
                [report.peer.implementation_class_uid, report.peer.implementation_version_name], 1
            )
            yield info
            yield GaugeMetricFamily(
                PROBE_PEER_MAX_PDU,
                "The largest PDU the peer accepts (0: unlimited).",
                value=report.peer.peer_max_pdu,
            )
        if prober == "store":
            yield GaugeMetricFamily(
                PROBE_RESULT_AGE,
                "Age of the store result; above 0 it repeats an earlier store "
                "(min_interval).",
                value=report.result_age or 0.0,
            )


def render_probe(report: ProbeReport) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(report))
    return generate_latest(registry)


class WebInfoCollector(Collector):
    """Where people reach this exporter: alert rules build runbook links from it."""

    def __init__(self, external_url: str) -> None:
        self.external_url = external_url

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            WEB_INFO,
            "The URL this exporter's pages (runbooks, status page) are reached at.",
            labels=["external_url"],
        )
        info.add_metric([self.external_url], 1)
        yield info


class ExporterCollector(Collector):
    """The exporter's own state: counters, last results and topology."""

    def __init__(self, stats: Stats, config: Callable[[], Config]) -> None:
        self.stats = stats
        self.config = config

    def collect(self) -> Iterator[Metric]:
        config: Config = self.config()
        snapshot = self.stats.snapshot()
        build = GaugeMetricFamily(
            BUILD_INFO,
            "Versions of the exporter and the DICOM libraries it encodes with.",
            labels=["version", "pynetdicom_version", "pydicom_version", "python_version"],
        )
        build.add_metric(
            [__version__, pynetdicom.__version__, pydicom.__version__, platform.python_version()],
            1,
        )
        yield build
        yield GaugeMetricFamily(
            CONFIG_RELOAD_OK,
            "Whether the last configuration reload succeeded.",
            value=int(snapshot.reload_ok),
        )
        yield GaugeMetricFamily(
            CONFIG_RELOAD_TIME,
            "When the configuration was last loaded successfully (Unix time).",
            value=snapshot.reload_time,
        )
        yield GaugeMetricFamily(
            PROBES_IN_FLIGHT, "Probes running right now.", value=snapshot.in_flight
        )
        label_keys = sorted({key for t in config.targets.values() for key in t.labels})
        info = GaugeMetricFamily(
            TARGET_INFO,
            "One series per configured target, carrying its topology labels.",
            labels=["target", "ae_title", "host", "port", *label_keys],
        )
        for target in config.targets.values():
            info.add_metric(
                [target.name, target.ae_title, target.host, str(target.port)]
                + [target.labels.get(key, "") for key in label_keys],
                1,
            )
        yield info
        timeouts = GaugeMetricFamily(
            MODULE_TIMEOUT, "The configured timeout of each module.", labels=["module", "prober"]
        )
        for module in config.modules.values():
            timeouts.add_metric([module.name, module.prober], module.timeout)
        yield timeouts

        totals = CounterMetricFamily(
            PROBES_TOTAL, "Probes run, per target and module.", labels=["target", "module"]
        )
        failures = CounterMetricFamily(
            PROBE_FAILURES_TOTAL,
            "Failed probes, per target, module and reason.",
            labels=["target", "module", "reason"],
        )
        histogram = HistogramMetricFamily(
            PROBE_DURATION_HISTOGRAM,
            "Probe durations, per target and module.",
            labels=["target", "module"],
        )
        last_success = GaugeMetricFamily(
            LAST_SUCCESS,
            "Whether the latest probe succeeded (absent until one ran).",
            labels=["target", "module"],
        )
        last_time = GaugeMetricFamily(
            LAST_TIMESTAMP,
            "When the latest probe finished (Unix time).",
            labels=["target", "module"],
        )
        for (target_name, module_name), series in sorted(snapshot.series.items()):
            labels = [target_name, module_name]
            totals.add_metric(labels, series.count)
            for reason in Reason:
                failures.add_metric([*labels, reason.value], series.failures.get(reason, 0))
            buckets = []
            cumulative = 0
            for bound, count in zip(BUCKETS, series.buckets, strict=True):
                cumulative += count
                buckets.append((str(bound), cumulative))
            buckets.append(("+Inf", series.count))
            histogram.add_metric(labels, buckets, series.duration_sum)
            if series.last_time:
                last_success.add_metric(labels, int(series.last_success))
                last_time.add_metric(labels, series.last_time)
        yield from (totals, failures, histogram, last_success, last_time)
        yield from route_families(config, snapshot)


def route_families(config: Config, snapshot: Snapshot) -> Iterator[Metric]:
    """Route state from route_state.current(): the same answer the status page gives."""
    states = route_state.current(config, snapshot, time.time())
    common = ["route", "site", "partner", "region"]
    info = GaugeMetricFamily(
        ROUTE_INFO, "One series per configured route, with its last resort.",
        labels=[*common, "last_resort"],
    )
    paths = GaugeMetricFamily(
        ROUTE_PATH_STATE,
        "1 for the current state (up, down, unknown) of each path of each route.",
        labels=[*common, "path", "kind", "state"],
    )
    active = GaugeMetricFamily(
        ROUTE_ACTIVE,
        "The way a study goes now: status primary, fallback, none (last resort) or "
        "unknown, and the path's name.",
        labels=[*common, "status", "path"],
    )
    for state in states:
        route = state.route
        partner = config.targets[route.partner]
        base = [route.name, route.site, route.partner, partner.labels.get("region", "")]
        info.add_metric([*base, route.last_resort], 1)
        for path in state.paths:
            kind = "primary" if path.primary else "fallback"
            for each in route_state.HopState:
                paths.add_metric([*base, path.path.name, kind, each.value],
                                 int(path.state is each))
        if state.active is not None:
            name = state.active.path.name
        elif state.status is route_state.RouteStatus.NONE:
            name = route.last_resort
        else:
            name = ""
        active.add_metric([*base, state.status.value, name], 1)
    yield from (info, paths, active)
