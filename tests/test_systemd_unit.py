"""The systemd unit, sysusers.d file and /etc/default arguments, checked with
systemd's own tools offline (no systemd runs here: see docs/operations.md for what
that leaves unchecked)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "examples" / "dicom-exporter.service"
SYSUSERS = ROOT / "packaging" / "sysusers.d" / "dicom-exporter.conf"
DEFAULTS = ROOT / "packaging" / "default" / "dicom-exporter"
MAX_EXPOSURE = 2.5


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install systemd (scripts/setup.sh --test)")
    return path


def unit_with_real_binary(tmp_path: Path) -> Path:
    """The unit with ExecStart on this checkout's installed command, so that
    `verify` can check that the executables exist."""
    binary = Path(sys.executable).with_name("dicom-exporter")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/dicom-exporter/bin/dicom-exporter",
                                                     str(binary))
    path = tmp_path / UNIT.name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_unit_verifies(tmp_path: Path) -> None:
    done = subprocess.run([tool("systemd-analyze"), "verify", str(unit_with_real_binary(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "dicom-exporter.service" not in done.stderr, done.stderr


def test_the_unit_is_sandboxed_below_the_exposure_goal() -> None:
    done = subprocess.run([tool("systemd-analyze"), "security", "--offline=yes", "--no-pager",
                           str(UNIT)], capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for dicom-exporter\.service: (\d+\.\d+)",
                      done.stdout)
    assert match, done.stdout[-1000:] + done.stderr
    assert float(match[1]) <= MAX_EXPOSURE, done.stdout


def test_process_metrics_and_file_descriptors_keep_what_they_need() -> None:
    """ProcSubset=pid would hide /proc/stat (process_start_time_seconds reads
    the boot time there); the fd limit must be raised above the default 1024."""
    settings = dict(re.findall(r"^(\w+)=(.*)$", UNIT.read_text(encoding="utf-8"), re.MULTILINE))
    assert settings.get("ProcSubset", "all") == "all"
    assert int(settings["LimitNOFILE"]) >= 8192


def test_sysusers_creates_the_units_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    done = subprocess.run([tool("systemd-sysusers"), f"--root={tmp_path}", str(SYSUSERS)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    user = re.search(r"^User=(\S+)$", UNIT.read_text(encoding="utf-8"), re.MULTILINE)
    assert user
    passwd = (tmp_path / "etc" / "passwd").read_text(encoding="utf-8")
    (entry,) = [line for line in passwd.splitlines() if line.startswith(f"{user[1]}:")]
    assert entry.endswith(":/usr/sbin/nologin")
    assert f"\n{user[1]}:" in "\n" + (tmp_path / "etc" / "group").read_text(encoding="utf-8")


def test_every_variable_the_unit_uses_is_set_in_the_defaults_file() -> None:
    unit = UNIT.read_text(encoding="utf-8")
    assert "EnvironmentFile=/etc/default/dicom-exporter" in unit
    used = set(re.findall(r"\$\{?([A-Z_]+)\}?", unit)) - {"MAINPID"}
    defined = set(re.findall(r"^([A-Z_]+)=", DEFAULTS.read_text(encoding="utf-8"), re.MULTILINE))
    assert used and used <= defined
