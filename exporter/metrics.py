"""Every metric the exporter exposes: names, help texts and how they are built.

Names live here and nowhere else; the alert rules, dashboards and
docs/metrics.md are checked against this module by the tests. Both endpoints use custom
collectors that yield metric families from plain data (client_python's
pattern for exporters): /probe from one ProbeReport in a fresh registry,
/metrics from the exporter's running statistics.
"""

from __future__ import annotations

import copy
import functools
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pydicom
import pynetdicom
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter import __version__, route_state
from exporter.buildinfo import REVISION
from exporter.config import Config
from exporter.config.prober_kinds import KINDS, PHASES, VERIFY_PHASES
from exporter.dicom.listener import DicomListener
from exporter.probers.report import ProbeReport
from exporter.reasons import Reason
from exporter.stats import BUCKETS, Changes, Series, Snapshot, Stats

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
PROBE_CONTEXT_RESULT = "probe_dicom_presentation_context_result"
PROBE_PEER_INFO = "probe_dicom_peer_info"
PROBE_PEER_MAX_PDU = "probe_dicom_peer_max_pdu_length_bytes"
PROBE_RESULT_AGE = "probe_dicom_result_age_seconds"
PROBE_TIMEOUT = "probe_dicom_timeout_seconds"
PROBE_TLS_VERSION = "probe_dicom_tls_version_info"
PROBE_TLS_EXPIRY = "probe_ssl_earliest_cert_expiry"

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
ROUTE_HOP_STATE = "dicom_route_hop_state"
SCHEDULED_SKIPS = "dicom_exporter_scheduled_probes_skipped_total"
SCHEDULE_INTERVAL = "dicom_exporter_schedule_interval_seconds"
SCHEDULE_LAST_ROUND = "dicom_exporter_schedule_last_round_timestamp_seconds"
SCHEDULE_QUEUED = "dicom_exporter_schedule_queued_probes"
WEB_INFO = "dicom_exporter_web_info"
LISTENER_ASSOCIATIONS = "dicom_exporter_listener_associations_total"
LISTENER_MESSAGES = "dicom_exporter_listener_messages_total"
LISTENER_IN_PROGRESS = "dicom_exporter_listener_associations_in_progress"
# Recorded by the generated alert rules, not exposed by the exporter: when the
# Alertmanager's generated holiday calendar ends (exporter/monitoring).
HOLIDAY_CALENDAR_END = "dicom:holiday_calendar_end_timestamp_seconds"



@dataclass(slots=True)
class Gauge:
    """One gauge family of a /probe answer as plain data: building client_python
    families per probe (name checks, Sample tuples) cost more than the rest of
    the answer, so /probe writes these directly (`probe_page`) and `collect()`
    converts them for everything else."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    @classmethod
    def single(cls, name: str, documentation: str, value: float) -> Gauge:
        return cls(name, documentation, (), [((), value)])


@functools.cache
def _reason_samples(failed: Reason | None) -> list[tuple[tuple[str, ...], float]]:
    """The failure-reason family's samples: a few dozen, one list per reason."""
    return [((reason.value,), int(failed is reason)) for reason in Reason]


class ProbeCollector(Collector):
    """The families of one /probe answer, as blackbox_exporter shapes them."""

    def __init__(self, report: ProbeReport) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        for gauge in self.families():
            family = GaugeMetricFamily(gauge.name, gauge.documentation,
                                       labels=list(gauge.labels))
            for values, value in gauge.samples:
                family.add_metric(list(values), value)
            yield family

    def families(self) -> Iterator[Gauge]:
        report = self.report
        context = report.context
        prober = context.module.prober
        yield Gauge.single(PROBE_SUCCESS, "Whether the probe succeeded.", int(report.success))
        yield Gauge.single(PROBE_DURATION, "How long the probe took, in seconds.",
                           report.duration)
        yield Gauge.single(
            PROBE_DNS_LOOKUP, "Time spent resolving the target's host name, in seconds.",
            report.dns_lookup)
        yield Gauge.single(
            PROBE_TIMEOUT, "The timeout this probe ran with, after the scrape timeout header.",
            context.timeout)
        tls = ("tls",) if context.target.tls is not None and prober != "tcp" else ()
        shown = {*KINDS[prober].phases, *tls, *VERIFY_PHASES[context.module.verify]}
        yield Gauge(
            PROBE_PHASE_DURATION,
            "Time per phase, from sending the request to the last byte of the answer.",
            ("phase",), [((phase,), report.phases.get(phase, 0.0))
                         for phase in PHASES if phase in shown])
        if report.tls_version:
            yield Gauge(PROBE_TLS_VERSION, "The TLS version negotiated with the peer.",
                        ("version",), [((report.tls_version,), 1)])
        if report.tls_expiry is not None:
            yield Gauge.single(
                PROBE_TLS_EXPIRY,
                "When the peer's verified leaf certificate expires, in Unix time (Python 3.11 "
                "exposes no chain; blackbox's name kept for its users' alerts).",
                report.tls_expiry)
        yield Gauge(
            PROBE_FAILURE_REASON, "1 for the reason the probe failed, 0 for every other reason.",
            ("reason",), _reason_samples(report.reason))
        if prober == "tcp":
            return
        yield Gauge.single(PROBE_ASSOCIATION_ACCEPTED,
                           "Whether the peer accepted the association.",
                           int(report.peer is not None))
        if report.reject is not None:
            yield Gauge(
                PROBE_ASSOCIATION_REJECT,
                "The A-ASSOCIATE-RJ result, source and reason/diagnostic (PS3.8 9.3.4).",
                ("result", "source", "diagnostic"),
                [(tuple(str(v) for v in report.reject), 1)])
        if report.abort is not None:
            yield Gauge(
                PROBE_ABORT, "The A-ABORT source and reason the peer sent (PS3.8 9.3.8).",
                ("source", "reason"), [(tuple(str(v) for v in report.abort), 1)])
        if report.status is not None:
            yield Gauge.single(PROBE_DIMSE_STATUS,
                               "The DIMSE status code of the response (0 is success).",
                               report.status)
        if report.contexts:
            names = {uid: keyword for keyword, uid in context.module.sop_classes}
            names["1.2.840.10008.1.1"] = "Verification"
            labelled = [((names.get(cx.abstract_syntax, cx.abstract_syntax),), cx)
                        for cx in report.contexts]
            yield Gauge(
                PROBE_CONTEXT_ACCEPTED,
                "Whether the peer accepted the presentation context for this SOP class.",
                ("sop_class",), [(label, int(cx.accepted)) for label, cx in labelled])
            yield Gauge(
                PROBE_CONTEXT_RESULT,
                "The peer's result for the presentation context (PS3.8 Table 9-18): 0 "
                "accepted, 1 user rejection, 2 no reason, 3 SOP class (abstract syntax) not "
                "supported, 4 none of our transfer syntaxes supported.",
                ("sop_class",), [(label, cx.result) for label, cx in labelled])
        if report.peer is not None:
            yield Gauge(
                PROBE_PEER_INFO, "The peer's implementation class UID and version name.",
                ("implementation_class_uid", "implementation_version_name"),
                [((report.peer.implementation_class_uid,
                   report.peer.implementation_version_name), 1)])
            yield Gauge.single(PROBE_PEER_MAX_PDU,
                               "The largest PDU the peer accepts (0: unlimited).",
                               report.peer.peer_max_pdu)
        if prober == "store":
            yield Gauge.single(
                PROBE_RESULT_AGE,
                "Age of the store result; above 0 this answer repeats the real store of that "
                "age (min_interval): its result and phase timings are that store's, "
                "probe_duration_seconds is this request's own.",
                report.result_age if report.result_age is not None else 0.0)


# Text of /probe answers kept between probes. A /probe answer is the same text
# probe after probe but for its durations, so per shape of report (what
# `families` writes besides float values: the module, outcome, codes, the peer
# and its contexts, which phases ran) the text around the durations is kept as a
# template. Objects in a shape are keyed by identity and held by the template,
# so their ids cannot be reused; peers choose some of that text, so the
# templates are bounded in number and size. Building one uses the line caches.
_PROBE_HEADS: dict[str, str] = {}
_PROBE_PREFIXES: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
PROBE_PREFIX_CACHE = 1024
PROBE_TEMPLATES = 256
PROBE_TEMPLATE_LARGEST = 16384  # characters: a page past it is written each time
# The report's fields that `families` writes as floats; phases are the others,
# and the timeout, which is the context's.
_FLOAT_FIELDS = ("duration", "dns_lookup", "tls_expiry", "result_age")


@dataclass(frozen=True, slots=True)
class _Template:
    held: tuple[object, ...]  # the objects whose ids are in its shape
    parts: tuple[str, ...]  # the text before, between and after the slots
    slots: tuple[tuple[str, str | None], ...]  # per slot: the field, or "phases" and a phase


_TEMPLATES: dict[tuple[Any, ...], _Template] = {}


def _shape(report: ProbeReport) -> tuple[Any, ...]:
    context = report.context
    return (id(context.module), context.target.tls is None, report.success, report.reason,
            report.reject, report.abort, report.status, report.tls_version,
            report.tls_expiry is None, report.result_age is None, id(report.peer),
            id(report.contexts), tuple(report.phases))


def probe_page(report: ProbeReport) -> bytes:
    """The /probe answer: byte for byte what generate_latest writes for
    ProbeCollector (tests compare them), at a fraction of its cost."""
    shape = _shape(report)
    template = _TEMPLATES.get(shape)
    if template is not None:
        return _fill(template, report).encode()
    text = "".join(_probe_lines(ProbeCollector(report).families()))
    template = _template(report, text)
    if template is not None:
        if len(_TEMPLATES) >= PROBE_TEMPLATES:
            _TEMPLATES.clear()  # shapes of an earlier config go too
        _TEMPLATES[shape] = template
    return text.encode()


def _fill(template: _Template, report: ProbeReport) -> str:
    parts = template.parts
    out = [parts[0]]
    for (name, phase), part in zip(template.slots, parts[1:], strict=True):
        value = (report.phases[phase] if phase else report.context.timeout if name == "timeout"
                 else getattr(report, name))
        out.append(_sample_value(value))
        out.append(part)
    return "".join(out)


def _template(report: ProbeReport, text: str) -> _Template | None:
    """The template of `report`'s shape, from its families written with a
    marker float in place of each float field; None if it would not give
    back `text` (a value `families` changes on the way) or `text` is too long."""
    if len(text) > PROBE_TEMPLATE_LARGEST:
        return None
    marked = copy.copy(report)
    markers: dict[int, tuple[float, tuple[str, str | None]]] = {}

    def marker(slot: tuple[str, str | None]) -> float:
        value = float(len(markers) + 1) * 5e-324  # a new object, told apart by identity
        markers[id(value)] = (value, slot)
        return value

    for name in _FLOAT_FIELDS:
        if getattr(report, name) is not None:
            setattr(marked, name, marker((name, None)))
    marked.context = replace(report.context, timeout=marker(("timeout", None)))
    marked.phases = {phase: marker(("phases", phase)) for phase in report.phases}
    parts: list[str] = []
    slots: list[tuple[str, str | None]] = []
    pending: list[str] = []
    for gauge in ProbeCollector(marked).families():
        pending.append(_probe_head(gauge))
        for values, value in gauge.samples:
            pending.append(_sample_prefix(gauge, values))
            found = markers.get(id(value))
            if found is not None and found[0] is value:
                parts.append("".join(pending))
                slots.append(found[1])
                pending = ["\n"]
            else:
                pending.append(_sample_value(value) + "\n")
    parts.append("".join(pending))
    template = _Template((report.context.module, report.peer, report.contexts), tuple(parts),
                         tuple(slots))
    return template if _fill(template, report) == text else None


def _probe_lines(gauges: Iterable[Gauge]) -> Iterator[str]:
    for gauge in gauges:
        yield _probe_head(gauge)
        for values, value in gauge.samples:
            yield _sample_prefix(gauge, values) + _sample_value(value) + "\n"


def _probe_head(gauge: Gauge) -> str:
    head = _PROBE_HEADS.get(gauge.name)
    if head is None:
        help_text = gauge.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        head = _PROBE_HEADS.setdefault(gauge.name, _header(gauge.name, "gauge", help_text
                                                           ).decode())
    return head


def _sample_prefix(gauge: Gauge, values: tuple[str, ...]) -> str:
    key = (gauge.name, gauge.labels, values)
    prefix = _PROBE_PREFIXES.get(key)
    if prefix is None:
        pairs = ",".join(f'{k}="{_escape(v)}"'
                         for k, v in sorted(zip(gauge.labels, values, strict=True)))
        prefix = f"{gauge.name}{{{pairs}}} " if pairs else f"{gauge.name} "
        if len(_PROBE_PREFIXES) < PROBE_PREFIX_CACHE:
            _PROBE_PREFIXES[key] = prefix
    return prefix


def _sample_value(value: float) -> str:
    number = float(value)
    # floatToGoString, whose answer below 1e6 (and finite) is simply repr.
    return repr(number) if -1e300 < number < 1e6 else str(floatToGoString(number))  # type: ignore[no-untyped-call]


def scheduled_skips(counts: dict[tuple[str, str, str], int]) -> Metric:
    """--probe.interval probes not run in their turn, by why (overloaded, still_running)."""
    family = CounterMetricFamily(
        SCHEDULED_SKIPS, "Scheduled probes skipped, by target, module and why.",
        labels=["target", "module", "reason"])
    for (target, module, reason), count in sorted(counts.items()):
        family.add_metric([target, module, reason], count)
    return family


def schedule_state(interval: float, last_round: float, queued: int) -> Iterator[Metric]:
    """--probe.interval's schedule: a last round that stops moving is a stalled schedule."""
    yield GaugeMetricFamily(SCHEDULE_INTERVAL, "The built-in schedule's interval.",
                            value=interval)
    yield GaugeMetricFamily(
        SCHEDULE_LAST_ROUND,
        "When the built-in schedule last completed a round (every probe run or skipped).",
        value=last_round)
    yield GaugeMetricFamily(SCHEDULE_QUEUED, "Scheduled probes waiting for a worker.",
                            value=queued)


def render_probe(report: ProbeReport) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(report))
    return generate_latest(registry)


# Up to this many (target, module) pairs /metrics carries every per-pair series
# (a histogram and a zero for every failure reason); above it, the compact
# form: see ExporterCollector. About 3.5 kB a pair in full, 0.3 kB compact.
FULL_DETAIL_MAX_PAIRS = 1000
# Pairs per pre-joined block of a family's text: a scrape joins blocks, and a
# finished probe makes only its block be joined again.
BLOCK = 64


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



class ListenerCollector(Collector):
    """The DICOM listener's counters (only when --dicom.listen-address runs one)."""

    def __init__(self, listener: DicomListener) -> None:
        self.listener = listener

    def collect(self) -> Iterator[Metric]:
        associations, messages = self.listener.snapshot()
        accepted = CounterMetricFamily(
            LISTENER_ASSOCIATIONS,
            "Associations peers opened to the DICOM listener, by how their setup ended: "
            "accepted, or refused and why.", labels=["result"])
        for result, count in associations.items():
            accepted.add_metric([result], count)
        yield accepted
        received = CounterMetricFamily(
            LISTENER_MESSAGES,
            "Messages on accepted listener associations: Storage Commitment reports a "
            "probe awaited, reports none awaited, and refused messages.", labels=["result"])
        for result, count in messages.items():
            received.add_metric([result], count)
        yield received
        yield GaugeMetricFamily(LISTENER_IN_PROGRESS,
                                "Associations the DICOM listener is serving now.",
                                value=self.listener.in_progress())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    """As client_python writes a sample value (floats in Go's spelling)."""
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


def _header(name: str, kind: str, help_text: str) -> bytes:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n".encode()


_BUCKET_LABELS = [_number(bound) for bound in BUCKETS] + ["+Inf"]
_HEADERS = {
    "totals": _header(PROBES_TOTAL, "counter", "Probes run, per target and module."),
    "failures": _header(
        PROBE_FAILURES_TOTAL, "counter",
        "Failed probes, per target, module and reason (compact form: reasons seen so far)."),
    "histogram": _header(
        PROBE_DURATION_HISTOGRAM, "histogram",
        "Probe durations, per target and module (compact form: per module)."),
    "last_success": _header(
        LAST_SUCCESS, "gauge", "Whether the latest probe succeeded (absent until one ran)."),
    "last_time": _header(
        LAST_TIMESTAMP, "gauge", "When the latest probe finished (Unix time)."),
}
_PER_PAIR = ("totals", "failures", "histogram", "last_success", "last_time")


def _histogram_lines(labels: str, buckets: list[int], total: int, duration_sum: float
                     ) -> str:
    lines = []
    cumulative = 0
    for bound, count in zip(_BUCKET_LABELS, buckets, strict=False):
        cumulative += count
        lines.append(f'{PROBE_DURATION_HISTOGRAM}_bucket{{{labels},le="{bound}"}} '
                     f"{cumulative}.0\n")
    lines.append(f'{PROBE_DURATION_HISTOGRAM}_bucket{{{labels},le="+Inf"}} {total}.0\n')
    lines.append(f"{PROBE_DURATION_HISTOGRAM}_count{{{labels}}} {total}.0\n")
    lines.append(f"{PROBE_DURATION_HISTOGRAM}_sum{{{labels}}} {_number(duration_sum)}\n")
    return "".join(lines)


def _pair_text(target: str, module: str, series: Series, full: bool) -> tuple[bytes, ...]:
    """The lines of one (target, module) pair, one string per family in _PER_PAIR."""
    labels = f'target="{_escape(target)}",module="{_escape(module)}"'
    totals = f"{PROBES_TOTAL}{{{labels}}} {series.count}.0\n"
    reasons = list(Reason) if full else [r for r in Reason if r in series.failures]
    failures = "".join(
        f'{PROBE_FAILURES_TOTAL}{{{labels},reason="{reason.value}"}} '
        f"{series.failures.get(reason, 0)}.0\n" for reason in reasons)
    histogram = (_histogram_lines(labels, series.buckets, series.timed, series.duration_sum)
                 if full else "")
    if series.last_time:
        last_success = f"{LAST_SUCCESS}{{{labels}}} {int(series.last_success)}.0\n"
        last_time = f"{LAST_TIMESTAMP}{{{labels}}} {_number(series.last_time)}\n"
    else:
        last_success = last_time = ""
    return (totals.encode(), failures.encode(), histogram.encode(), last_success.encode(),
            last_time.encode())


class _FamiliesOf(Collector):
    """A few client_python families, to format them with generate_latest."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _render(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FamiliesOf(families))
    return generate_latest(registry)


class ExporterCollector(Collector):
    """The exporter's own state: counters, last results, topology, and the runtime.

    `page()` is what /metrics serves. It is built incrementally: the text of
    each (target, module) pair is kept and redone only when a probe of that
    pair finished since the last page, the target and module families only
    when the config changes. So a scrape costs a join plus the pairs that
    changed, never a walk over every sample, and what it serves is current.

    Up to FULL_DETAIL_MAX_PAIRS pairs every pair carries its histogram and a
    zero for every failure reason. Above that (a national monitor, thousands
    of targets), the compact form keeps what alerts and dashboards need per
    pair: probes_total, last_probe_success, last_probe_timestamp and the
    failure reasons the pair has actually had; the duration histogram is kept
    per module only (per-target latency is `probe_duration_seconds` from /probe,
    which Prometheus stores for every target anyway). At 5,000 targets x 2
    modules that is 33 MB against under 4 MB.
    """

    def __init__(self, stats: Stats, config: Callable[[], Config],
                 runtime: CollectorRegistry | None = None) -> None:
        self.stats = stats
        self.config = config
        self.runtime = runtime
        self._lock = threading.Lock()
        self._version = 0
        self._generation = -1
        self._full = True
        self._latest: dict[tuple[str, str], Series] = {}
        self._position: dict[tuple[str, str], int] = {}
        # One column per family in _PER_PAIR, one encoded entry per pair in sorted order,
        # and each column joined in blocks of BLOCK pairs (None: to be joined again).
        self._columns: list[list[bytes]] = [[] for _ in _PER_PAIR]
        self._blocks: list[list[bytes | None]] = [[] for _ in _PER_PAIR]
        self._module_hist: dict[str, Series] = {}  # from Stats, per page
        self._config: Config | None = None
        self._config_text = b""
        self._build_text = _render([_build_info()])

    def page(self) -> bytes:
        """The whole /metrics answer, current as of this call."""
        with self._lock:
            chunks = self._update()
        if self.runtime is not None:
            chunks.append(generate_latest(self.runtime))
        return b"".join(chunks)

    def collect(self) -> Iterator[Metric]:
        """The same series as `page()`, as families (for registries and tests)."""
        with self._lock:
            text = b"".join(self._update()).decode()
        yield from text_string_to_metric_families(text)
        if self.runtime is not None:
            yield from self.runtime.collect()

    def _update(self) -> list[bytes]:
        config = self.config()
        changes = self.stats.changes_since(self._version)
        for key, series in changes.changed.items():
            if key in changes.keys:
                self._latest[key] = series
        self._module_hist = changes.modules
        full = len(changes.keys) <= FULL_DETAIL_MAX_PAIRS
        if changes.generation != self._generation or full != self._full:
            self._rebuild(changes.keys, full)
            self._generation, self._full = changes.generation, full
        else:
            for key in changes.changed:
                position = self._position.get(key)
                if position is not None:
                    self._set(position, key)
        self._version = changes.version
        if config is not self._config:
            self._config = config
            self._config_text = _render(list(_config_families(config)))
        chunks = [self._build_text, _render(_state_families(changes)), self._config_text]
        for family, column, blocks in zip(_PER_PAIR, self._columns, self._blocks, strict=True):
            chunks.append(_HEADERS[family])
            if family == "histogram" and not full:
                chunks.append(self._module_histograms())
                continue
            for index, block in enumerate(blocks):
                if block is None:
                    block = blocks[index] = b"".join(
                        column[index * BLOCK:(index + 1) * BLOCK])
                chunks.append(block)
        if config.routes:
            snapshot = Snapshot(self._latest, changes.reload_ok, changes.reload_time,
                                changes.in_flight)
            chunks.append(_render(list(route_families(config, snapshot))))
        return chunks

    def _set(self, position: int, key: tuple[str, str]) -> None:
        texts = _pair_text(key[0], key[1], self._latest[key], self._full)
        for column, blocks, text in zip(self._columns, self._blocks, texts, strict=True):
            column[position] = text
            blocks[position // BLOCK] = None

    def _rebuild(self, keys: frozenset[tuple[str, str]], full: bool) -> None:
        """A new set of pairs (a reload) or another form: every pair's text again."""
        for key in list(self._latest):
            if key not in keys:
                del self._latest[key]
        order = sorted(keys)
        self._position = {key: index for index, key in enumerate(order)}
        self._columns = [[b""] * len(order) for _ in _PER_PAIR]
        self._blocks = [[None] * -(-len(order) // BLOCK) for _ in _PER_PAIR]
        self._full = full
        for index, key in enumerate(order):
            self._latest.setdefault(key, Series())
            self._set(index, key)

    def _module_histograms(self) -> bytes:
        return "".join(
            _histogram_lines(f'module="{_escape(module)}"', total.buckets, total.timed,
                             total.duration_sum)
            for module, total in sorted(self._module_hist.items())).encode()


def _build_info() -> Metric:
    build = GaugeMetricFamily(
        BUILD_INFO,
        "Versions of the exporter and the DICOM libraries it encodes with.",
        labels=["version", "revision", "pynetdicom_version", "pydicom_version",
                "python_version"],
    )
    build.add_metric(
        [__version__, REVISION, pynetdicom.__version__, pydicom.__version__,
         platform.python_version()],
        1,
    )
    return build


def _state_families(changes: Changes) -> list[Metric]:
    return [
        GaugeMetricFamily(
            CONFIG_RELOAD_OK,
            "Whether the last reload of the config file and of the web config file succeeded.",
            value=int(changes.reload_ok),
        ),
        GaugeMetricFamily(
            CONFIG_RELOAD_TIME,
            "When the configuration was last loaded successfully (Unix time).",
            value=changes.reload_time,
        ),
        GaugeMetricFamily(
            PROBES_IN_FLIGHT, "Probes running right now.", value=changes.in_flight
        ),
    ]


def _config_families(config: Config) -> Iterator[Metric]:
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


def route_families(config: Config, snapshot: Snapshot) -> Iterator[Metric]:
    """Route state from route_state.current(): the same answer the status page gives."""
    hops = route_state.route_hop_states(config, snapshot, time.time())
    states = [route_state.evaluate(route, hops) for route in config.routes.values()]
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
    # The hops as the route states read them (the same computation): the route alerts
    # choose the routine's words for what is down (a dead Z97117, Skåne not receiving).
    hop_state = GaugeMetricFamily(
        ROUTE_HOP_STATE,
        "1 for the current state (up, down, unknown) of each hop of the routes, as the "
        "route states read it.",
        labels=["target", "state"],
    )
    for hop in sorted({hop for route in config.routes.values() for path in route.paths
                       for hop in path.hops}):
        for each in route_state.HopState:
            hop_state.add_metric([hop, each.value],
                                 int(hops.get(hop, route_state.HopState.UNKNOWN) is each))
    yield from (info, paths, active, hop_state)
