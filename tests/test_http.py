"""The HTTP endpoints, served for real on 127.0.0.1 against simulated peers."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.config import load, webconfig
from exporter.demo.simulated import SimulatedPeer
from exporter.web import server as web_server
from tests.support.hostile import ScriptedPeer
from tests.support.realpeers import LOOPBACK, free_port, require
from tests.support.webauth import basic, users_yaml


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def config_document(peer_port: int, silent_port: int, closed_port: int) -> dict:
    labels = {"site": "vaxjo", "role": "partner", "region": "skane"}
    return {
        "modules": {
            "echo": {"prober": "echo", "timeout": "2s", "calling_ae_title": "KRONOBERG_MON"},
            "tcp": {"prober": "tcp", "timeout": "2s"},
        },
        "targets": {
            "peer": {"host": LOOPBACK, "port": peer_port, "ae_title": "PEER",
                     "modules": ["echo", "tcp"], "labels": labels},
            "silent": {"host": LOOPBACK, "port": silent_port, "ae_title": "SILENT",
                       "modules": ["echo"], "labels": labels},
            "closed": {"host": LOOPBACK, "port": closed_port, "ae_title": "CLOSED",
                       "modules": ["echo"], "labels": {**labels, "role": "link_computer"}},
        },
    }


class Setup:
    def __init__(self, url: str, exporter: Exporter, config_file: Path, silent: ScriptedPeer,
                 document: dict) -> None:
        self.url = url
        self.exporter = exporter
        self.config_file = config_file
        self.silent = silent
        self.document = document


@pytest.fixture(scope="module")
def peer() -> Iterator[SimulatedPeer]:
    simulated = SimulatedPeer("peer", "PEER")
    simulated.set_state("up")
    yield simulated
    simulated.set_state("down")


@pytest.fixture
def served(tmp_path: Path, peer: SimulatedPeer) -> Iterator[Setup]:
    silent = ScriptedPeer(lambda p, conn: p.hold())
    document = config_document(peer.port, silent.port, free_port())
    config_file = tmp_path / "exporter.yml"
    config_file.write_text(yaml.safe_dump(document))
    exporter = Exporter(load(config_file), str(config_file))
    server, _ = web_server.start(exporter, (LOOPBACK, 0))
    try:
        yield Setup(server.url, exporter, config_file, silent, document)
    finally:
        server.shutdown()
        server.server_close()
        silent.close()


def test_probe_success_answers_blackbox_style_metrics(served: Setup) -> None:
    status, body = get(f"{served.url}/probe?target=peer&module=echo")
    assert status == 200
    values = samples(body)
    assert values[("probe_success", ())] == 1
    assert values[("probe_duration_seconds", ())] > 0
    assert values[("probe_dicom_phase_duration_seconds", (("phase", "dimse"),))] > 0
    assert values[("probe_dicom_dimse_status", ())] == 0
    assert values[("probe_dicom_failure_reason", (("reason", "refused"),))] == 0


@pytest.mark.parametrize("target", ["peer", "silent"])
def test_probe_answers_say_the_probes_own_wall_time_in_server_timing(
        served: Setup, target: str) -> None:
    """Server-Timing (W3C) splits a slow answer into the probe and the rest;
    the probe's wall time covers the phases it reports."""
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"}
    request = urllib.request.Request(f"{served.url}/probe?target={target}&module=echo",
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        timing = answer.headers["Server-Timing"]
        body = answer.read().decode()
    name, _, duration = timing.partition(";dur=")
    assert name == "probe"
    probe_seconds = float(duration) / 1000
    reported = samples(body)[("probe_duration_seconds", ())]
    assert 0 < reported <= probe_seconds + 0.001, (reported, timing)
    if target == "silent":  # waited out its 1 s budget (1.5 s header minus 0.5 s)
        assert probe_seconds >= 0.9, timing


def test_probe_failure_carries_one_reason(served: Setup) -> None:
    status, body = get(f"{served.url}/probe?target=closed&module=echo")
    assert status == 200
    values = samples(body)
    assert values[("probe_success", ())] == 0
    reasons = {labels[0][1]: v for (name, labels), v in values.items()
               if name == "probe_dicom_failure_reason"}
    assert [r for r, v in reasons.items() if v == 1] == ["refused"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("target=peer", "target and module parameters are required"),
        ("target=nowhere&module=echo", "unknown target 'nowhere'"),
        ("target=peer&module=store", "unknown module 'store'"),
        ("target=closed&module=tcp", "module 'tcp' is not configured for target 'closed'"),
        ("target=127.0.0.1:104&module=echo", "unknown target '127.0.0.1:104'"),
    ],
)
def test_bad_probe_requests_get_400_and_send_nothing(
    served: Setup, query: str, message: str
) -> None:
    before = served.exporter.stats.snapshot()
    status, body = get(f"{served.url}/probe?{query}")
    assert status == 400
    assert message in body
    after = served.exporter.stats.snapshot()
    assert sum(s.count for s in after.series.values()) == sum(
        s.count for s in before.series.values()
    )


def test_debug_output_has_the_log_and_the_metrics(served: Setup) -> None:
    status, body = get(f"{served.url}/probe?target=peer&module=echo&debug=true")
    assert status == 200
    assert "Logs for the probe:" in body
    # The notes, formatted when read: addresses, AE titles, counts, the status.
    assert re.search(r"ms connecting to 127\.0\.0\.1 port \d+\n", body)
    assert re.search(r"ms A-ASSOCIATE-RQ calling '\w+' called 'PEER', 1 presentation", body)
    assert re.search(r"ms A-ASSOCIATE-AC from \S+, 1 context\(s\) accepted\n", body)
    assert "ms C-ECHO status 0x0000\n" in body
    assert "probe_success 1.0" in body


def test_scrape_timeout_header_bounds_the_probe(served: Setup) -> None:
    started = time.monotonic()
    _, body = get(
        f"{served.url}/probe?target=silent&module=echo",
        {"X-Prometheus-Scrape-Timeout-Seconds": "1.2"},
    )
    elapsed = time.monotonic() - started
    values = samples(body)
    assert values[("probe_dicom_timeout_seconds", ())] == pytest.approx(0.7)
    assert values[("probe_dicom_failure_reason", (("reason", "association_timeout"),))] == 1
    assert elapsed < 1.2


def test_a_hanging_probe_does_not_block_metrics(served: Setup) -> None:
    probe = threading.Thread(target=get, args=(f"{served.url}/probe?target=silent&module=echo",))
    probe.start()
    time.sleep(0.2)
    started = time.monotonic()
    status, body = get(f"{served.url}/metrics")
    assert status == 200
    assert time.monotonic() - started < 0.5
    assert samples(body)[("dicom_exporter_probes_in_flight", ())] == 1
    probe.join()


def test_metrics_count_probes_and_failures_per_reason(served: Setup) -> None:
    get(f"{served.url}/probe?target=closed&module=echo")
    get(f"{served.url}/probe?target=peer&module=echo")
    values = samples(get(f"{served.url}/metrics")[1])
    closed = (("module", "echo"), ("target", "closed"))
    assert values[("dicom_exporter_probes_total", closed)] == 1
    assert values[("dicom_exporter_probe_failures_total",
                   (("module", "echo"), ("reason", "refused"), ("target", "closed")))] == 1
    assert values[("dicom_exporter_probe_failures_total",
                   (("module", "echo"), ("reason", "refused"), ("target", "peer")))] == 0
    assert values[("dicom_exporter_last_probe_success", closed)] == 0
    peer = (("module", "echo"), ("target", "peer"))
    assert values[("dicom_exporter_probe_duration_seconds_count", peer)] == 1
    assert values[("dicom_exporter_last_probe_success", peer)] == 1
    info = {dict(labels)["target"]: dict(labels) for (name, labels), _ in values.items()
            if name == "dicom_exporter_target_info"}
    assert info["closed"]["ae_title"] == "CLOSED"
    assert info["closed"]["role"] == "link_computer"
    assert info["peer"]["region"] == "skane"
    assert values[("dicom_exporter_config_last_reload_successful", ())] == 1


def test_sd_lists_every_target_and_module_with_its_labels(served: Setup) -> None:
    status, body = get(f"{served.url}/sd")
    assert status == 200
    groups = json.loads(body)
    pairs = sorted((g["targets"][0], g["labels"]["module"]) for g in groups)
    assert pairs == [("closed", "echo"), ("peer", "echo"), ("peer", "tcp"), ("silent", "echo")]
    for group in groups:
        labels = group["labels"]
        assert labels["__param_module"] == labels["module"]
        assert {"site", "role", "region", "ae_title"} <= set(labels)
        assert labels["prober"] == labels["module"]  # the test config names modules so


def test_reload_keeps_the_running_config_when_the_new_one_is_bad(served: Setup) -> None:
    document = served.document
    document["targets"]["extra"] = dict(document["targets"]["peer"], ae_title="EXTRA")
    served.config_file.write_text(yaml.safe_dump(document))
    assert get(f"{served.url}/-/reload", method="POST")[0] == 200
    assert "extra" in get(f"{served.url}/sd")[1]

    served.config_file.write_text("modules: {echo: {prober: echo}}\ntargets: {x: 1}\n")
    status, body = get(f"{served.url}/-/reload", method="POST")
    assert status == 400
    assert "targets.x: must be a mapping" in body
    assert "extra" in get(f"{served.url}/sd")[1]
    assert get(f"{served.url}/probe?target=extra&module=echo")[0] == 200
    values = samples(get(f"{served.url}/metrics")[1])
    assert values[("dicom_exporter_config_last_reload_successful", ())] == 0


def test_reload_reads_the_web_config_too_and_a_bad_one_drops_the_gauge(
        tmp_path: Path, peer: SimulatedPeer) -> None:
    """POST /-/reload does what SIGHUP does: both files. A web config that no
    longer loads keeps the running one, says why and sets the reload gauge to 0,
    so a failed certificate or password change raises the reload alert."""
    config_file = tmp_path / "exporter.yml"
    config_file.write_text(yaml.safe_dump(config_document(peer.port, free_port(), free_port())))
    web_file = tmp_path / "web.yml"

    def login(password: str) -> dict[str, str]:
        return {"Authorization": basic("prometheus", password)}

    web_file.write_text(users_yaml(prometheus="first"))
    exporter = Exporter(load(config_file), str(config_file))
    server, _ = web_server.start(exporter, (LOOPBACK, 0), web=webconfig.load(web_file))
    reload, healthy = f"{server.url}/-/reload", f"{server.url}/-/healthy"
    try:
        web_file.write_text(users_yaml(prometheus="second"))
        assert get(reload, login("first"), method="POST")[0] == 200
        assert get(healthy, login("first"))[0] == 401
        assert get(healthy, login("second"))[0] == 200

        web_file.write_text("basic_auth_users: [\n")
        status, body = get(reload, login("second"), method="POST")
        assert status == 400 and body.count(f"{web_file}: ") == 1, body
        assert get(healthy, login("second"))[0] == 200  # the running one is kept
        gauge = ("dicom_exporter_config_last_reload_successful", ())
        assert samples(get(f"{server.url}/metrics", login("second"))[1])[gauge] == 0

        web_file.write_text(users_yaml(prometheus="third"))
        assert get(reload, login("second"), method="POST")[0] == 200
        assert samples(get(f"{server.url}/metrics", login("third"))[1])[gauge] == 1
    finally:
        server.shutdown()
        server.server_close()


def test_reload_needs_post(served: Setup) -> None:
    assert get(f"{served.url}/-/reload")[0] == 405


def test_health_and_unknown_paths(served: Setup) -> None:
    assert get(f"{served.url}/-/healthy") == (200, "Healthy\n")
    assert get(f"{served.url}/nothing")[0] == 404


@pytest.mark.parametrize("path", ["/probe?target=peer&module=echo",
                                  "/probe?target=closed&module=echo",
                                  "/probe?target=peer&module=tcp", "/metrics"])
@pytest.mark.slow
def test_promtool_accepts_the_exposition(served: Setup, path: str) -> None:
    get(f"{served.url}/probe?target=closed&module=echo")  # failures and histograms populated
    body = get(f"{served.url}{path}")[1]
    result = subprocess.run(
        [require("promtool"), "check", "metrics"], input=body, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
