"""The dicom-exporter command, run as a user runs it: a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from exporter.demo.simulated import SimulatedPeer
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port

EXAMPLES = Path(__file__).parent.parent / "examples"
TESTDATA = Path(__file__).parent / "testdata"


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=timeout
    )


def write_config(path: Path, port: int, ae_title: str = "PEER") -> Path:
    path.write_text(yaml.safe_dump({
        "modules": {
            "echo": {"prober": "echo", "timeout": "2s", "calling_ae_title": "KRONOBERG_MON"},
        },
        "targets": {"peer": {"host": LOOPBACK, "port": port, "ae_title": ae_title,
                             "modules": ["echo"], "labels": {"site": "vaxjo", "role": "partner"}}},
    }))
    return path


def test_check_config_accepts_the_example() -> None:
    result = cli("check-config", str(EXAMPLES / "kronoberg.yml"))
    assert result.returncode == 0, result.stderr
    assert "OK: 5 modules, 20 targets" in result.stdout


def test_check_config_lists_every_problem_and_exits_1_without_a_traceback() -> None:
    path = TESTDATA / "invalid-many-problems.yml"
    result = cli("check-config", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}: modules.echo.calling_ae_title: must not be empty",
        f"{path}: targets.skane.port: 0 is out of range 1-65535",
        f"{path}: targets.skane.modules[0]: unknown module 'ecko'",
    ]
    assert "Traceback" not in result.stderr


def test_probe_reports_success_with_phase_timings(tmp_path: Path) -> None:
    peer = SimulatedPeer("peer", "PEER")
    peer.set_state("up")
    try:
        result = cli("probe", "--config.file", str(write_config(tmp_path / "c.yml", peer.port)),
                     "peer")
    finally:
        peer.set_state("down")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "result    OK" in result.stdout
    assert "associate" in result.stdout and "dimse" in result.stdout


def test_probe_explains_a_failure_in_the_routines_words(tmp_path: Path) -> None:
    result = cli("probe", "--config.file", str(write_config(tmp_path / "c.yml", free_port())),
                 "peer", "--module", "echo")
    assert result.returncode == 1
    assert "result    FAILED: refused" in result.stdout
    # A partner that refuses: "cannot receive", not a link computer (causes by role).
    # (no routine: section in this config, so the causes' words are not known)
    assert "skicka 6\n" in result.stdout
    assert "skicka 2" not in result.stdout and "ta emot 5\n" in result.stdout
    assert "level=warn" in result.stderr and "reason=refused" in result.stderr


def test_probe_of_an_unknown_target_exits_2(tmp_path: Path) -> None:
    result = cli("probe", "--config.file", str(write_config(tmp_path / "c.yml", 104)), "nobody")
    assert result.returncode == 2
    assert "unknown target 'nobody'" in result.stderr


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    result = cli("--log.format", "json", "probe", "--config.file",
                 str(write_config(tmp_path / "c.yml", free_port())), "peer")
    lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines and '"reason": "refused"' in lines[0] and '"target": "peer"' in lines[0]


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0 and "dicom-exporter, version" in result.stdout


def test_serve_reloads_on_sighup_and_keeps_a_bad_config(tmp_path: Path) -> None:
    config_file = write_config(tmp_path / "c.yml", 104, ae_title="FIRST")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "serve", "--config.file", str(config_file),
         "--web.listen-address", f"{LOOPBACK}:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_port(port, process)

        def sd() -> str:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/sd") as answer:
                return answer.read().decode()

        assert "FIRST" in sd()
        write_config(config_file, 104, ae_title="SECOND")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "SECOND" not in sd() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "SECOND" in sd()
        config_file.write_text("modules: [\n")
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert "SECOND" in sd()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "config reload failed" in stderr


def test_bad_config_at_start_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("modules: {}\n")
    result = cli("serve", "--config.file", str(bad), "--web.listen-address", f"{LOOPBACK}:0")
    assert result.returncode == 1
    assert result.stderr.strip() == f"{bad}: targets: missing required section"


def test_module_runs_without_installing_the_console_script() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run([sys.executable, "-m", "exporter", "--help"], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0 and "serve" in result.stdout and "demo" in result.stdout
