"""Config parsing: each invalid file maps to its exact messages; examples load."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import config
from exporter.config import ConfigError
from exporter.config.strict import parse_duration

TESTDATA = Path(__file__).parent / "testdata"
EXAMPLES = Path(__file__).parent.parent / "examples"

INVALID = {
    "invalid-unknown-key.yml": [
        "modules.echo.timeot: unknown field (allowed: as_partners, calling_ae_title, min_interval, "
        "prober, "
        "sop_classes, timeout, transfer_syntaxes, uid_root)",
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
        "modules.echo.timeout: invalid duration '5 seconds' (use e.g. 5s, 500ms, 1m30s, 1h)",
    ],
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
    "invalid-yaml.yml": ["line 3: invalid YAML: expected ',' or '}', but got ':'"],
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
    [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0), ("2m", 120.0)],
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


def test_a_prober_given_as_a_list_is_a_clean_error() -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse("modules: {m: {prober: [echo]}}\ntargets: {}\n", "list.yml")
    assert caught.value.problems == [
        "list.yml: modules.m.prober: must be one of tcp, echo, negotiate, store, got list ['echo']"
    ]
