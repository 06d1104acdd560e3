"""/metrics at national scale: bounded in size and series, current, built incrementally.

No timing here (timing goals live in benchmarks/scale.py): these check the
shape and the bounds of the page at 5,000 targets x 2 modules, and that the
incrementally built page is exactly the page built from scratch.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
from collections import Counter
from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.config import Config
from exporter.metrics import FULL_DETAIL_MAX_PAIRS, ExporterCollector
from exporter.reasons import Reason
from exporter.stats import BUCKETS, Stats
from tests.support.configs import make_config
from tests.support.realpeers import require

MB = 1_000_000


def scaled_config(targets: int) -> Config:
    """`targets` targets with echo and tcp, built from one parsed target (parsing 5,000 is slow)."""
    base = make_config({"seed": {"port": 11112, "ae_title": "NATIONAL_PACS",
                                 "modules": ["echo", "tcp"],
                                 "labels": {"site": "vaxjo", "role": "partner",
                                            "region": "vastra_gotaland"}}})
    seed = base.targets["seed"]
    many = {f"region{i % 21:02d}-pacs-{i:05d}": dataclasses.replace(
        seed, name=f"region{i % 21:02d}-pacs-{i:05d}") for i in range(targets)}
    return dataclasses.replace(base, targets=MappingProxyType(many))


def probe_everything(stats: Stats, config: Config, failing_every: int = 50) -> None:
    """One result per pair; every `failing_every`-th pair failed as refused."""
    for index, target in enumerate(config.targets.values()):
        for module in target.modules:
            stats.started()
            if index % failing_every == 0:
                stats.finished(target.name, module, False, Reason.REFUSED, 0.0004)
            else:
                stats.finished(target.name, module, True, None, 0.0007)


@functools.lru_cache(maxsize=2)
def families(page: bytes) -> dict[str, list]:
    """Parsed once per page: the national page takes a second to parse, and
    several tests read the same one (none of them changes what it gets)."""
    return {family.name: family.samples
            for family in text_string_to_metric_families(page.decode())}


def without_sums(page: bytes) -> list[bytes]:
    return [line for line in page.splitlines() if b"_sum{" not in line]


def sums(page: bytes) -> dict[bytes, float]:
    """Duration sums, added up in another order by the incremental page: equal within rounding."""
    return {line.rsplit(b" ", 1)[0]: float(line.rsplit(b" ", 1)[1])
            for line in page.splitlines() if b"_sum{" in line}


@pytest.fixture(scope="module")
def national() -> tuple[Config, Stats, ExporterCollector, bytes]:
    config = scaled_config(5000)
    stats = Stats()
    stats.configured(config)
    collector = ExporterCollector(stats, lambda: config)
    probe_everything(stats, config)
    return config, stats, collector, collector.page()


def test_five_thousand_targets_fit_in_eight_megabytes(national) -> None:
    _, _, _, page = national
    assert len(page) <= 8 * MB


def test_compact_form_keeps_a_bounded_number_of_series_per_pair(national) -> None:
    config, _, _, page = national
    pairs = sum(len(t.modules) for t in config.targets.values())
    assert pairs > FULL_DETAIL_MAX_PAIRS
    per_pair = Counter()
    for family in families(page).values():
        for sample in family:
            if "target" in sample.labels and "module" in sample.labels:
                per_pair[(sample.labels["target"], sample.labels["module"])] += 1
    assert len(per_pair) == pairs
    # probes_total, last success, last timestamp, and at most the reasons it had (one here)
    assert max(per_pair.values()) <= 4
    assert min(per_pair.values()) == 3


def test_compact_form_keeps_what_alerts_and_dashboards_read_per_target(national) -> None:
    config, _, _, page = national
    found = families(page)
    totals = {s.labels["target"] for s in found["dicom_exporter_probes"]}
    assert totals == set(config.targets)
    failed = {(s.labels["target"], s.labels["reason"]): s.value
              for s in found["dicom_exporter_probe_failures"]}
    assert failed[("region00-pacs-00000", "refused")] == 1
    assert ("region01-pacs-00001", "refused") not in failed  # never failed: no series
    info = {s.labels["target"] for s in found["dicom_exporter_target_info"]}
    assert info == set(config.targets)


def test_compact_histogram_is_per_module_and_counts_every_probe(national) -> None:
    config, _, _, page = national
    histogram = families(page)["dicom_exporter_probe_duration_seconds"]
    assert all("target" not in s.labels for s in histogram)
    counts = {s.labels["module"]: s.value for s in histogram
              if s.name == "dicom_exporter_probe_duration_seconds_count"}
    assert counts == {"echo": len(config.targets), "tcp": len(config.targets)}
    buckets = [s for s in histogram if s.name.endswith("_bucket")
               and s.labels["module"] == "echo"]
    assert len(buckets) == len(BUCKETS) + 1


def test_incremental_page_equals_a_page_built_from_scratch(national) -> None:
    config, stats, collector, _ = national
    stats.started()
    stats.finished("region05-pacs-00005", "echo", False, Reason.DIMSE_TIMEOUT, 2.0)
    stats.started()
    stats.finished("region06-pacs-00006", "tcp", True, None, 0.0002)
    incremental = collector.page()
    fresh = ExporterCollector(stats, lambda: config).page()
    assert without_sums(incremental) == without_sums(fresh)
    assert sums(incremental) == pytest.approx(sums(fresh))
    found = families(incremental)
    failed = {(s.labels["target"], s.labels["module"], s.labels["reason"]): s.value
              for s in found["dicom_exporter_probe_failures"]}
    assert failed[("region05-pacs-00005", "echo", "dimse_timeout")] == 1


def test_a_finished_probe_shows_in_the_next_page() -> None:
    config = make_config({"peer": {"port": 104, "ae_title": "PEER", "modules": ["echo"]}})
    stats = Stats()
    stats.configured(config)
    collector = ExporterCollector(stats, lambda: config)
    before = families(collector.page())
    assert "dicom_exporter_last_probe_success" not in before or not before[
        "dicom_exporter_last_probe_success"]
    stats.started()
    stats.finished("peer", "echo", True, None, 0.001)
    after = families(collector.page())
    [total] = after["dicom_exporter_probes"]
    assert total.value == 1
    [success] = after["dicom_exporter_last_probe_success"]
    assert success.value == 1


def test_small_configs_keep_every_reason_and_a_histogram_per_target() -> None:
    config = scaled_config(10)
    stats = Stats()
    stats.configured(config)
    probe_everything(stats, config, failing_every=3)
    found = families(ExporterCollector(stats, lambda: config).page())
    reasons = {(s.labels["target"], s.labels["module"], s.labels["reason"])
               for s in found["dicom_exporter_probe_failures"]}
    assert len(reasons) == 20 * len(Reason)
    per_target = {(s.labels["target"], s.labels["module"])
                  for s in found["dicom_exporter_probe_duration_seconds"]
                  if s.name.endswith("_count")}
    assert len(per_target) == 20


def test_reload_across_the_threshold_switches_form_and_drops_removed_pairs() -> None:
    small, big = scaled_config(10), scaled_config(FULL_DETAIL_MAX_PAIRS)
    current = [big]
    stats = Stats()
    stats.configured(big)
    collector = ExporterCollector(stats, lambda: current[0])
    probe_everything(stats, big)
    assert "reason=\"tls\"" not in collector.page().decode()
    current[0] = small
    stats.configured(small)
    text = collector.page().decode()
    assert text.count("dicom_exporter_probes_total{") == 20
    assert "reason=\"tls\"" in text
    assert without_sums(text.encode()) == without_sums(
        ExporterCollector(stats, lambda: small).page())


def test_collect_yields_the_same_series_as_the_page(national) -> None:
    _, _, collector, _ = national
    from_page = {(s.name, tuple(sorted(s.labels.items())))
                 for samples in families(collector.page()).values() for s in samples}
    from_collect = {(s.name, tuple(sorted(s.labels.items())))
                    for family in collector.collect() for s in family.samples}
    assert from_page == from_collect


def test_label_values_are_escaped() -> None:
    assert metrics._escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


@pytest.mark.slow
def test_promtool_accepts_the_compact_form(national) -> None:
    _, _, collector, _ = national
    result = subprocess.run([require("promtool"), "check", "metrics"],
                            input=collector.page(), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
