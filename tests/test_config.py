"""Config parsing: each invalid file maps to its exact messages; examples load."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import config
from exporter.app import Exporter
from exporter.config import ConfigError
from exporter.config.strict import MAX_FILE_BYTES, MAX_PROBLEMS, parse_duration
from exporter.config.targets import RESERVED_LABELS
from exporter.dicom.codec import Accepted, ContextResult
from exporter.metrics import ExporterCollector, ProbeCollector
from exporter.probers.context import ProbeContext
from exporter.probers.memory import ProberState
from exporter.probers.report import ProbeReport
from exporter.stats import Stats

TESTDATA = Path(__file__).parent / "testdata"
EXAMPLES = Path(__file__).parent.parent / "examples"

INVALID = {
    "invalid-unknown-key.yml": [
        "modules.echo.timeot: unknown field (allowed: as_partners, calling_ae_title, min_interval, "
        "prober, "
        "sop_classes, tcp_safe, test_object_size, timeout, transfer_syntaxes, uid_root, "
        "verify)",
    ],
    "invalid-wrong-type.yml": [
        "modules.echo.timeout: must be a duration string like 5s, got int 5",
    ],
    "invalid-ae-title-too-long.yml": [
        "modules.echo.calling_ae_title: 'KRONOBERG_MONITOR_1' is 19 characters long, "
        "at most 16 are allowed",
    ],
    "invalid-ae-title-characters.yml": [
        "targets.skane.ae_title: 'SKÅNE\\\\PACS' has characters outside printable ASCII "
        "or a backslash",
    ],
    "invalid-duplicate-name.yml": ["line 5: duplicate key 'skane'"],
    "invalid-unknown-module.yml": ["targets.skane.modules[1]: unknown module 'store'"],
    "invalid-port-range.yml": ["targets.skane.port: 70000 is out of range 1-65535"],
    "invalid-prober.yml": [
        "modules.ping.prober: must be one of tcp, echo, negotiate, store, got str 'icmp'",
    ],
    "invalid-duration.yml": [
        "modules.echo.timeout: invalid duration '5 seconds' (use e.g. 5s, 500ms, 1m30s, 1h, "
        "1d, 1w)",
    ],
    "invalid-duration-overflow.yml": [
        "modules.echo.timeout: duration "
        "'999999999999999999999999999...999999999999999999999999999s' is out of range",
    ],
    "invalid-duration-too-long.yml": [
        "modules.echo.timeout: duration '99999999999h' is out of range",
        "modules.tcp.timeout: '11m' is longer than the longest allowed, 10m",
        "modules.store.min_interval: '32d' is longer than the longest allowed, 31d",
        "results_max_age: '2w' is longer than the longest allowed, 7d",
    ],
    "invalid-reserved-labels.yml": [
        f"targets.skane.labels.{name}: is set by the exporter itself; choose another name"
        for name in ("host", "port", "le", "module")
    ],
    "invalid-control-characters.yml": [
        "targets.skane\\n: name must be letters, digits, '_', '.', '-'",
        "targets.skane\\n.host: 'pacs.skane.invalid\\n' is not a host name or IP address",
        "targets.skane\\n.labels.region: 'skåne\\r\\n' has control characters or line breaks",
    ],
    "invalid-sop-class-twice.yml": [
        "modules.negotiate.sop_classes[1]: lists 1.2.840.10008.5.1.4.1.1.2 twice "
        "(already as 'CTImageStorage')",
        "modules.negotiate.transfer_syntaxes[1]: lists 1.2.840.10008.1.2.1 twice "
        "(already as 'ExplicitVRLittleEndian')",
    ],
    "invalid-receive-name-clash.yml": [
        "targets.z97117.from.skane: clashes with the receive-side target generated for z97117 "
        "called as skane ('receive' has as_partners): rename it",
    ],
    "invalid-alias-bomb.yml": [
        "document: more than 2,000,000 values (each alias counting the values it repeats)",
    ],
    "invalid-alias-loop.yml": [
        "document: an alias refers to a value that contains it (a loop)",
    ],
    "invalid-huge-number.yml": [
        "line 4: invalid YAML: cannot read "
        "'777777777777777777777777777...7777777777777777777777777777': too many digits",
    ],
    "invalid-date.yml": ["line 4: invalid YAML: cannot read '2026-13-45': month must be in 1..12"],
    "invalid-role.yml": [
        "targets.skane.labels.role: must be one of link_computer, partner, relay, got 'gateway'",
    ],
    "invalid-missing-fields.yml": [
        "targets.skane.port: missing required field",
        "targets.skane.ae_title: missing required field",
        "targets.skane.labels.site: missing required label",
    ],
    "invalid-sop-class.yml": [
        "modules.negotiate.sop_classes[0]: unknown SOP class 'CTImageStorag'",
    ],
    "invalid-option-for-prober.yml": ["modules.echo.min_interval: not used by prober echo"],
    "invalid-verify.yml": [
        "modules.store_find.verify: must be one of none, find, commit, got str 'query'",
        "modules.store_yes.verify: must be one of none, find, commit, got bool True",
        "modules.echo.verify: not used by prober echo",
    ],
    # libyaml's wording (the C reader); PyYAML's own says "expected ',' or '}'".
    "invalid-yaml.yml": ["line 3: invalid YAML: did not find expected ',' or '}'"],
    "invalid-routes.yml": [
        "routes.malmo-skane.site: unknown site 'malmo' (sites: vaxjo)",
        "routes.vaxjo-skane.primary: must be a non-empty list, got list []",
        "routes.vaxjo-skane.fallbacks[0].path[2]: visits 'z97117' twice: a path must not loop",
        "routes.vaxjo-skane.fallbacks[1].path[1]: unknown target 'blekinge'",
    ],
    "invalid-receive.yml": [
        "modules.receive.as_partners: must be true or false, got str 'yes please'",
        "targets.z97117.calling_ae_title: is for partners: how they call us",
        "targets.z97117.modules: 'echo' probes as partners, but no target has calling_ae_title",
    ],
    "invalid-many-problems.yml": [
        "modules.echo.calling_ae_title: must not be empty",
        "targets.skane.port: 0 is out of range 1-65535",
        "targets.skane.modules[0]: unknown module 'ecko'",
    ],
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_file_gives_its_exact_messages(name: str) -> None:
    path = TESTDATA / name
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.problems == [f"{path}: {line}" for line in INVALID[name]]


def test_every_invalid_testdata_file_is_covered() -> None:
    assert {p.name for p in TESTDATA.glob("invalid-*.yml")} == set(INVALID)


# Every YAML file in examples/ is an exporter config except Prometheus' own.
EXPORTER_EXAMPLES = sorted(p for p in EXAMPLES.glob("*.yml") if p.name != "prometheus.yml")


@pytest.mark.parametrize("path", EXPORTER_EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_loads(path: Path) -> None:
    loaded = config.load(path)
    assert loaded.targets
    for target in loaded.targets.values():
        assert target.host.endswith(".invalid"), "examples must use placeholder hosts"


def test_the_minimal_form_from_the_issue_loads() -> None:
    loaded = config.parse(
        """
modules:
  echo:
    prober: echo
    timeout: 5s
    calling_ae_title: KRONOBERG_MON
targets:
  orthanc:
    host: 127.0.0.1
    port: 4242
    ae_title: ORTHANC
    modules: [echo]
    labels: {site: vaxjo, region: skane, role: partner}
""",
        "minimal.yml",
    )
    target = loaded.targets["orthanc"]
    assert (target.host, target.port, target.ae_title, target.modules) == (
        "127.0.0.1", 4242, "ORTHANC", ("echo",),
    )
    assert dict(target.labels) == {"site": "vaxjo", "region": "skane", "role": "partner"}
    assert loaded.modules["echo"].timeout == 5.0


def test_parsed_config_is_immutable() -> None:
    loaded = config.load(EXAMPLES / "kronoberg.yml")
    with pytest.raises(AttributeError):
        loaded.targets["z97117"].port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        loaded.targets["z97117"].labels["site"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0), ("2m", 120.0),
     ("1d", 86400.0), ("2w", 14 * 86400.0), ("1y", 365 * 86400.0), ("1d12h", 129600.0),
     ("0", 0.0)],
)
def test_durations_are_prometheus_style(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_an_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(ConfigError) as caught:
        config.load(missing)
    assert caught.value.problems[0].startswith(f"{missing}: file: cannot read:")


@pytest.mark.parametrize(("site", "own_link"), [("vaxjo", "z97117"), ("ljungby", "z83680")])
def test_vantage_point_configs_match_the_whole_region(site: str, own_link: str) -> None:
    """vaxjo.yml and ljungby.yml are kronoberg.yml seen from one site: same peers,
    that site's routes, receive-side checks on that site's own link computer."""
    region = config.load(EXAMPLES / "kronoberg.yml")
    vantage = config.load(EXAMPLES / f"{site}.yml")
    assert dict(vantage.routes) == {k: r for k, r in region.routes.items() if r.site == site}
    assert vantage.modules == region.modules
    plain = {n for n, t in region.targets.items() if t.probe_calling_ae is None}
    assert {n for n, t in vantage.targets.items() if t.probe_calling_ae is None} == plain
    for name in plain:
        ours, theirs = vantage.targets[name], region.targets[name]
        assert (ours.host, ours.port, ours.ae_title, ours.calls_us_as) == (
            theirs.host, theirs.port, theirs.ae_title, theirs.calls_us_as)
        assert {**ours.labels, "site": "-"} == {**theirs.labels, "site": "-"}
        assert ours.labels["site"] == site
    receive = {n for n, t in vantage.targets.items() if t.probe_calling_ae is not None}
    assert receive and all(n.startswith(f"{own_link}.from.") for n in receive)


@pytest.mark.parametrize("text", ["5s\n", "1h1d", "5", "1.5s", "-1s", "1ms5s", "", "5 s"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_a_duration_beyond_prometheus_range_is_refused_not_overflowed() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_duration("9" * 400 + "s")
    with pytest.raises(ValueError, match="out of range"):
        parse_duration("300y")
    assert parse_duration("292y") == 292 * 365 * 86400.0


def test_a_file_over_the_size_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ConfigError) as caught:
        config.load(big)
    assert caught.value.problems == [f"{big}: file: larger than 8 MiB"]


def test_a_fifo_is_refused_rather_than_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as caught:
        config.load(fifo)
    assert caught.value.problems == [f"{fifo}: file: is not a regular file"]


def test_a_hundred_problems_are_shown_and_the_rest_counted() -> None:
    targets = "\n".join(f"  t{i}: 1" for i in range(150))
    with pytest.raises(ConfigError) as caught:
        config.parse(f"modules: {{}}\ntargets:\n{targets}\n", "many.yml")
    problems = caught.value.problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == "many.yml: document: 50 more problems not shown"


def test_an_alias_bomb_in_a_key_is_refused_in_bounded_time() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    text = "\n".join(lines) + "\n? *a11\n: 1\n"
    with pytest.raises(ConfigError) as caught:
        config.parse(text, "bomb.yml")
    assert caught.value.problems == [
        "bomb.yml: document: more than 2,000,000 values (each alias counting the values it "
        "repeats)"]


def test_moderate_aliases_are_fine() -> None:
    text = (EXAMPLES / "kronoberg.yml").read_text(encoding="utf-8")
    text = text.replace("labels: {site: vaxjo, region: skane, role: partner}",
                        "labels: &skane {site: vaxjo, region: skane, role: partner}")
    loaded = config.parse(text, "aliases.yml")
    assert loaded.targets["skane"].labels["region"] == "skane"


def test_error_lines_stay_short_whatever_the_input() -> None:
    name = "x" * 100_000
    with pytest.raises(ConfigError) as caught:
        config.parse(f"modules: {{echo: {{prober: {name}}}}}\ntargets: {{}}\n", "long.yml")
    (line,) = caught.value.problems
    assert len(line) < 700
    assert line.startswith("long.yml: modules.echo.prober: must be one of")


def test_reserved_labels_cover_every_label_the_exporter_exposes() -> None:
    """A target label may never collide with a label the exporter sets itself,
    on /metrics, on a /probe answer or on /sd."""
    loaded = config.load(EXAMPLES / "kronoberg.yml")
    stats = Stats()
    stats.configured(loaded)
    for target in loaded.targets.values():
        for module in target.modules:
            stats.finished(target.name, module, True, None, 0.01)
    target, module = loaded.targets["skane"], loaded.modules["negotiate_ct"]
    report = ProbeReport(ProbeContext.start(target, module, 1.0, ProberState()))
    report.reject, report.abort, report.status, report.tls_version = (1, 1, 3), (0, 0), 0, "TLSv1.3"
    cx = ContextResult(1, module.sop_classes[0][1], True, "1.2.840.10008.1.2.1", 0)
    report.contexts = (cx,)
    report.peer = Accepted((cx,), 16384, "1.2.3", "TEST")
    exposed: set[str] = set()
    for collector in (ExporterCollector(stats, lambda: loaded), ProbeCollector(report)):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            for sample in family.samples:
                exposed |= set(sample.labels)
    target_labels = {key for t in loaded.targets.values() for key in t.labels}
    sd_labels = {"module", "prober", "ae_title", "job", "instance"}
    own = (exposed | sd_labels) - (target_labels - RESERVED_LABELS)
    assert own - RESERVED_LABELS == set()
    # The labels a target may set are only the topology ones the exporter repeats.
    assert (target_labels & exposed) - RESERVED_LABELS <= {"site", "region", "role"}


def test_target_info_keeps_its_own_host_and_port() -> None:
    loaded = config.load(EXAMPLES / "kronoberg.yml")
    stats = Stats()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(stats, lambda: loaded))
    labels = {"target": "skane", "ae_title": "SKANE_PACS", "host": "pacs.skane.invalid",
              "port": "104", "site": "vaxjo", "region": "skane", "role": "partner",
              "partner": "", "direction": ""}
    assert registry.get_sample_value("dicom_exporter_target_info", labels) == 1


def test_a_generated_receive_name_is_not_silently_replaced() -> None:
    loaded = config.load(EXAMPLES / "kronoberg.yml")
    assert loaded.targets["z97117.from.skane"].probe_calling_ae == "SKANE_PACS"


def _exporter_on(path: Path) -> Exporter:
    path.write_text((EXAMPLES / "kronoberg.yml").read_text(encoding="utf-8"), encoding="utf-8")
    return Exporter(config.load(path), str(path))


def _reload_ok(exporter: Exporter) -> float | None:
    return exporter.registry.get_sample_value("dicom_exporter_config_last_reload_successful")


@pytest.mark.parametrize("name", ["invalid-duration-overflow.yml", "invalid-alias-bomb.yml",
                                  "invalid-duration-too-long.yml", "invalid-huge-number.yml",
                                  "invalid-control-characters.yml"])
def test_a_hostile_reload_fails_cleanly_and_keeps_the_running_config(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "running.yml"
    exporter = _exporter_on(path)
    running = exporter.config
    path.write_bytes((TESTDATA / name).read_bytes())
    problems = exporter.reload()
    assert problems is not None and problems.startswith(f"{path}: ")
    assert exporter.config is running
    assert _reload_ok(exporter) == 0
    assert all("Traceback" not in r.getMessage() and r.exc_info is None for r in caplog.records)


def test_reload_survives_an_unexpected_error_in_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The one stand-in in this file: no real input is known to break the
    # reader, which is what this guard is for.
    path = tmp_path / "running.yml"
    exporter = _exporter_on(path)
    running = exporter.config

    def broken(_: object) -> None:
        raise RuntimeError("reader bug\nsecond line")

    monkeypatch.setattr(config, "load", broken)
    with caplog.at_level(logging.ERROR, logger="dicom_exporter"):
        problems = exporter.reload()
    assert problems == f"{path}: file: cannot load: RuntimeError: reader bug second line"
    assert exporter.config is running and _reload_ok(exporter) == 0
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is None


def test_a_good_reload_after_a_bad_one_sets_the_gauge_back(tmp_path: Path) -> None:
    path = tmp_path / "running.yml"
    exporter = _exporter_on(path)
    good = path.read_text(encoding="utf-8")
    path.write_bytes((TESTDATA / "invalid-alias-loop.yml").read_bytes())
    assert exporter.reload() is not None and _reload_ok(exporter) == 0
    path.write_text(good.replace("results_max_age: 2m", "results_max_age: 3m"), encoding="utf-8")
    assert exporter.reload() is None and _reload_ok(exporter) == 1
    assert exporter.config.results_max_age == 180.0


@pytest.mark.parametrize("depth", [200, 990])
def test_deep_nesting_is_a_clean_error(depth: int) -> None:
    text = "modules: {}\ntargets: {t: " + "[" * depth + "]" * depth + "}\n"
    with pytest.raises(ConfigError) as caught:
        config.parse(text, "deep.yml")
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("deep.yml: ")
