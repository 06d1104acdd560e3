"""The dicom-exporter command, run as a user runs it: a real process."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from exporter import logs
from exporter.demo.simulated import SimulatedPeer
from tests.support.realpeers import LOOPBACK, free_port, wait_for_port
from tests.support.webauth import basic, users_yaml

EXAMPLES = Path(__file__).parent.parent / "examples"
UNIT = EXAMPLES / "dicom-exporter.service"
INSTALLED = "/opt/dicom-exporter/bin/dicom-exporter"
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


def test_check_config_checks_the_web_config_file_too(tmp_path: Path) -> None:
    """What the reload alert's runbook tells the on-call to run, for either file."""
    web = tmp_path / "web.yml"
    web.write_text("rate_limit: {interval: 100ms, burst: 20}\n")
    good = cli("check-config", str(EXAMPLES / "kronoberg.yml"), "--web.config.file", str(web))
    assert good.returncode == 0 and f"{web}: OK" in good.stdout, good.stderr
    web.write_text("rate_limit: {interval: [1]}\n")
    config = tmp_path / "c.yml"
    config.write_text("modules: {}\n")
    bad = cli("check-config", str(config), "--web.config.file", str(web))
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [  # every problem of both files, in one run
        f"{config}: targets: missing required section",
        f"{web}: rate_limit.interval: must be a duration like 100ms, got list [1]"]


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


def test_probe_with_debug_prints_the_probes_log(tmp_path: Path) -> None:
    result = cli("probe", "--config.file", str(write_config(tmp_path / "c.yml", free_port())),
                 "peer", "--debug")
    assert result.returncode == 1
    log = result.stdout.split("\nlog\n", 1)[1]
    assert "ms connecting to 127.0.0.1 port" in log and "ms failed: refused" in log


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


def test_version_is_printed_as_prometheus_programs_print_it() -> None:
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert re.fullmatch(r"dicom-exporter, version \S+ "
                        r"\(branch: \S+, revision: ([0-9a-f]{40}|unknown)\)", first), first
    fields = dict(line.split(":", 1) for line in rest)
    assert [f.strip() for f in fields] == ["build user", "build date", "python version",
                                           "platform"]
    assert re.fullmatch(r" +\d{8}-\d\d:\d\d:\d\d", fields["  build date"])
    assert fields["  python version"].strip() == f"CPython {platform.python_version()}"


def test_check_config_takes_config_file_like_the_other_subcommands(tmp_path: Path) -> None:
    example = str(EXAMPLES / "kronoberg.yml")
    for args in (["--config.file", example], [f"--config.file={example}"], [example],
                 [example, "--config.file", example]):
        result = cli("check-config", *args)
        assert result.returncode == 0 and ": OK: " in result.stdout, (args, result.stderr)
    missing = cli("check-config")
    assert missing.returncode == 2 and "missing --config.file" in missing.stderr
    twice = cli("check-config", example, "--config.file", str(tmp_path / "other.yml"))
    assert twice.returncode == 2 and "give the config file once" in twice.stderr


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


def test_sighup_reads_the_web_config_again(tmp_path: Path) -> None:
    """A changed password (or certificate) takes effect on `systemctl reload`."""
    web_file = tmp_path / "web.yml"

    def status(password: str) -> int:
        request = urllib.request.Request(f"http://{LOOPBACK}:{port}/-/healthy", headers={
            "Authorization": basic("prometheus", password)})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    web_file.write_text(users_yaml(prometheus="first"))
    process, port = _serve(write_config(tmp_path / "c.yml", 104),
                           "--web.config.file", str(web_file))
    try:
        wait_for_port(port, process)
        assert status("first") == 200
        # Same inode, size and mtime: the file watcher cannot see the change,
        # so only the SIGHUP can make it count.
        before = web_file.stat()
        web_file.write_text(users_yaml(prometheus="second"))
        os.utime(web_file, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert web_file.stat().st_size == before.st_size
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while status("second") != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status("second") == 200 and status("first") == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "web config reloaded" in stderr


def test_bad_config_at_start_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("modules: {}\n")
    result = cli("serve", "--config.file", str(bad), "--web.listen-address", f"{LOOPBACK}:0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "level=error" in lines[0], result.stderr
    assert f'problem="{bad}: targets: missing required section"' in lines[0]


def test_module_runs_without_installing_the_console_script() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run([sys.executable, "-m", "exporter", "--help"], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0 and "serve" in result.stdout and "demo" in result.stdout


def _serve(config_file: Path, *flags: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "serve", "--config.file", str(config_file),
         "--web.listen-address", f"{LOOPBACK}:{port}", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return process, port


def test_log_flags_after_the_subcommand_and_json_everywhere(tmp_path: Path) -> None:
    process, port = _serve(write_config(tmp_path / "c.yml", 104),
                           "--log.level", "debug", "--log.format", "json")
    try:
        wait_for_port(port, process)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/-/healthy") as answer:
            assert answer.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    records = [json.loads(line) for line in stderr.splitlines()]
    assert any(r["msg"] == "Listening on" and r["address"] == f"http://{LOOPBACK}:{port}"
               for r in records)
    assert any(r["level"] == "debug" for r in records)
    assert process.returncode == 0


def test_serve_listens_on_every_address_given_and_publishes_its_external_url(
        tmp_path: Path) -> None:
    """Both flags through the CLI, not only the Server: alert rules build runbook
    links from dicom_exporter_web_info, so a lost --web.external-url sends the
    on-call to the wrong host."""
    second = free_port()
    process, port = _serve(write_config(tmp_path / "c.yml", 104),
                           "--web.listen-address", f"{LOOPBACK}:{second}",
                           "--web.external-url", "https://dicom-mon.example.invalid:10104/")
    try:
        wait_for_port(port, process)
        wait_for_port(second, process)
        pages = []
        for each in (port, second):
            with urllib.request.urlopen(f"http://{LOOPBACK}:{each}/metrics") as answer:
                pages.append(answer.read().decode())
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    for page in pages:
        assert ('dicom_exporter_web_info{external_url="https://dicom-mon.example.invalid:10104"}'
                ' 1.0') in page
    assert process.returncode == 0


def test_a_port_in_use_is_one_structured_error_line(tmp_path: Path) -> None:
    with socket.create_server((LOOPBACK, 0)) as taken:
        port = taken.getsockname()[1]
        result = cli("serve", "--config.file", str(write_config(tmp_path / "c.yml", 104)),
                     "--web.listen-address", f"{LOOPBACK}:{port}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ts=") and "level=error" in lines[0]
    assert f"cannot listen on {LOOPBACK}:{port}: Address already in use" in lines[0]


def _sighup_disposition(pid: int) -> str:
    """"caught", "ignored" or "default", from the kernel's masks of the process."""
    masks = dict(line.split(":\t", 1) for line in
                 Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    bit = 1 << (signal.SIGHUP - 1)
    if int(masks["SigCgt"], 16) & bit:
        return "caught"
    return "ignored" if int(masks["SigIgn"], 16) & bit else "default"


# Imports what `python -m exporter` imports first, then waits for one line on
# stdin before starting the CLI: the test holds the start there, with no race.
HELD_START = (
    "import sys, exporter.sighup\n"
    "sys.stdin.readline()\n"
    "from exporter.cli import main\n"
    "sys.argv[0] = 'dicom-exporter'\n"
    "main()\n"
)


# Starts the CLI module the way the console script and `python -m exporter` do,
# noting for every module imported on the way whether SIGHUP was already caught.
IMPORT_ORDER = (
    "import json, signal, sys\n"
    "seen = []\n"
    "class Watch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        seen.append((name, signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL))\n"
    "sys.meta_path.insert(0, Watch())\n"
    "import exporter.cli\n"
    "print(json.dumps(seen))\n"
)


def test_sighup_is_caught_before_any_slow_import() -> None:
    """Importing the CLI takes half a second, click and the standard library
    included: the window in which a SIGHUP still ends the process is only what
    comes before `exporter.sighup`."""
    result = subprocess.run([sys.executable, "-c", IMPORT_ORDER], capture_output=True,
                            text=True, timeout=60, check=True)
    seen = json.loads(result.stdout)
    before = [name for name, caught in seen if not caught]
    assert before and set(before) <= {"exporter", "exporter.sighup", "_signal"}, before
    assert dict(seen)["click"] and dict(seen)["logging"]


def test_sighup_while_starting_does_not_kill_the_process(tmp_path: Path) -> None:
    """`systemctl reload` right after start: the SIGHUP arrives while the exporter
    is held before its CLI starts, and must be remembered and honoured once serving."""
    config_file = write_config(tmp_path / "c.yml", 104)
    port = free_port()
    log_file = tmp_path / "stderr.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", HELD_START, "serve", "--config.file", str(config_file),
             "--web.listen-address", f"{LOOPBACK}:{port}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
    assert process.stdin is not None
    try:
        deadline = time.monotonic() + 30
        while _sighup_disposition(process.pid) != "caught":
            assert process.poll() is None
            assert time.monotonic() < deadline, "exporter.sighup should catch SIGHUP at import"
            time.sleep(0.005)
        process.send_signal(signal.SIGHUP)  # held: the CLI has not started yet
        process.stdin.write(b"go\n")
        process.stdin.close()
        wait_for_port(port, process)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/-/healthy") as answer:
            assert answer.status == 200
        _wait_for_reload(log_file)  # the remembered SIGHUP reloads once serving
    finally:
        _stop(process)
    _assert_reloaded_and_stopped(process, log_file)


def _wait_for_reload(log_file: Path) -> None:
    deadline = time.monotonic() + 20
    while "config reloaded" not in log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def _assert_reloaded_and_stopped(process: subprocess.Popen, log_file: Path) -> str:
    output = log_file.read_text()
    assert process.returncode == 0, output
    assert "config reloaded" in output and "Traceback" not in output
    return output


def shipped_exec_start(config: Path, port: int) -> list[str]:
    """The shipped unit's ExecStart as systemd would run it, with this
    checkout's installed command for the install path, and a test config and
    listen address for ${CONFIG} and $ARGS: nothing else changed."""
    (line,) = re.findall(r"^ExecStart=(.*)$", UNIT.read_text(encoding="utf-8"), re.MULTILINE)
    line = line.replace(INSTALLED, str(Path(sys.executable).with_name("dicom-exporter")))
    line = line.replace("${CONFIG}", str(config))
    return shlex.split(line.replace("$ARGS", f"--web.listen-address={LOOPBACK}:{port}"))


def test_the_shipped_unit_survives_sighup_in_the_first_milliseconds(tmp_path: Path) -> None:
    """systemd resets every signal to its default before exec, and SIGHUP's
    default ends the process: before `exporter.sighup` runs (the interpreter's
    own start, some 20 ms) a `kill -HUP` killed the exporter (0 of 5 at 25 ms).
    The unit's ExecStart ignores SIGHUP from exec on (`nohup`), so:
    SIGHUPs 25, 40 and 60 ms after exec leave it alive and serving; from the
    moment the interpreter runs, SIGHUP is never at its default (checked while
    starting, every half millisecond: deterministic, no timing threshold);
    once serving, our handler has replaced the inherited SIG_IGN (a SIGHUP
    reloads, and no child would inherit an ignored SIGHUP); and with output
    that is not a terminal, nohup writes no nohup.out and no line of its own."""
    argv = shipped_exec_start(write_config(tmp_path / "c.yml", 104), port := free_port())
    wrapper = os.path.realpath(argv[0])
    log_file = tmp_path / "output.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)},
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    started = time.monotonic()  # Popen returns once the child has exec'd
    signals = [0.025, 0.040, 0.060]
    interpreter_seen: list[str] = []
    try:
        while signals or not interpreter_seen or interpreter_seen[-1] != "caught":
            assert process.poll() is None, log_file.read_text()
            assert time.monotonic() - started < 60, interpreter_seen
            if signals and time.monotonic() - started >= signals[0]:
                process.send_signal(signal.SIGHUP)
                signals.pop(0)
            with contextlib.suppress(FileNotFoundError):  # exec under way
                if os.readlink(f"/proc/{process.pid}/exe") != wrapper:
                    interpreter_seen.append(_sighup_disposition(process.pid))
                    assert interpreter_seen[-1] != "default", "the interpreter runs, " \
                        "SIGHUP is at its default: a SIGHUP now ends the process"
            time.sleep(0.0005)
        wait_for_port(port, process)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics") as answer:
            assert answer.status == 200 and b"dicom_exporter_" in answer.read()
        assert _sighup_disposition(process.pid) == "caught"  # not SIG_IGN any more
        process.send_signal(signal.SIGHUP)
        _wait_for_reload(log_file)
    finally:
        _stop(process)
    output = _assert_reloaded_and_stopped(process, log_file)
    assert "nohup" not in output and not (tmp_path / "nohup.out").exists()


# SIGHUP ignored as `nohup` leaves it; importing the package keeps that, the
# command takes it over (held, as while starting) before it reads a file.
UNDER_NOHUP = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    "from exporter import sighup\n"
    "from exporter.cli import main\n"
    "imported = signal.getsignal(signal.SIGHUP)\n"
    "main(['check-config', sys.argv[1]], standalone_mode=False)\n"
    "os.kill(os.getpid(), signal.SIGHUP)\n"
    "print(imported is signal.SIG_IGN, signal.getsignal(signal.SIGHUP) is sighup._hold,\n"
    "      sighup.early())\n"
)


def test_the_command_takes_over_an_ignored_sighup() -> None:
    result = subprocess.run([sys.executable, "-c", UNDER_NOHUP, str(EXAMPLES / "kronoberg.yml")],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split()[-3:] == ["True", "True", "True"], result.stdout


def test_an_uncaught_exception_in_a_thread_is_one_structured_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, threading.excepthook, sys.excepthook)
    chosen = dict(logs._current)
    try:
        logs.setup("info", "json")

        def crash() -> None:
            raise RuntimeError("boom")

        thread = threading.Thread(target=crash, name="crashing")
        thread.start()
        thread.join()
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        root.handlers[:], _, threading.excepthook, sys.excepthook = saved
        root.setLevel(saved[1])
        logs._current.update(chosen)
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["msg"] == "uncaught exception in a thread" and record["thread"] == "crashing"
    assert record["level"] == "error" and "RuntimeError: boom" in record["err"]


def test_ready_is_sent_over_the_notify_socket_once_serving(tmp_path: Path) -> None:
    """Type=notify: READY=1 comes once the config is loaded and the port is bound,
    over the socket in $NOTIFY_SOCKET, spoken without a library."""
    address = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(address))
        notify.settimeout(30)
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "serve", "--config.file",
             str(write_config(tmp_path / "c.yml", 104)),
             "--web.listen-address", f"{LOOPBACK}:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "NOTIFY_SOCKET": str(address)})
        try:
            message = notify.recv(4096).decode()
            with socket.create_connection((LOOPBACK, port), timeout=5):
                pass  # bound before READY=1 was sent
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    assert "READY=1" in message.splitlines()
