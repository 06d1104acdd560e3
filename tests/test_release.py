"""The release: version from git tags, and the offline bundle installing
with no package index into a fresh virtual environment."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import buildhook  # noqa: E402 - the build backend lives outside the import package

# No pip config or PIP_* variables: only the bundle's wheels can be found.
OFFLINE = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"}
VERSION = re.compile(r"\d+(\.\d+)*(\.post\d+)?(\+g[0-9a-f]{7}(\.dirty)?)?")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_version_follows_the_git_tags(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "f").write_text("1")
    git(tmp_path, "add", "f")
    git(tmp_path, "commit", "-qm", "one")
    sha = git(tmp_path, "rev-parse", "--short=7", "HEAD")
    assert buildhook.git_version(tmp_path) == (f"0.0.0+g{sha}", git(tmp_path, "rev-parse", "HEAD"))
    git(tmp_path, "tag", "-a", "v1.2.0", "-m", "1.2.0")
    assert buildhook.git_version(tmp_path)[0] == "1.2.0"  # type: ignore[index]
    (tmp_path / "f").write_text("2")
    assert buildhook.git_version(tmp_path)[0] == "1.2.0+dirty"  # type: ignore[index]
    git(tmp_path, "commit", "-qam", "two")
    sha = git(tmp_path, "rev-parse", "--short=7", "HEAD")
    assert buildhook.git_version(tmp_path)[0] == f"1.2.0.post1+g{sha}"  # type: ignore[index]
    git(tmp_path, "tag", "other-tag")  # not a version tag: ignored
    assert buildhook.git_version(tmp_path)[0] == f"1.2.0.post1+g{sha}"  # type: ignore[index]


def test_outside_git_there_is_no_version_from_git(tmp_path: Path) -> None:
    assert buildhook.git_version(tmp_path) is None


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """scripts/release.sh run once; the unpacked bundle's folder."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "release.sh"), "--out", str(out)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    (tarball,) = out.glob("prometheus-dicom-exporter-*-cp311-linux-x86_64.tar.gz")
    with tarfile.open(tarball) as archive:
        archive.extractall(out, filter="data")
    (folder,) = (p for p in out.iterdir() if p.is_dir())
    yield folder


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600,
                          check=False, **kwargs)  # type: ignore[call-overload]


def localised_example(folder: Path) -> Path:
    """The bundle's example with hosts on 127.0.0.1: never resolve .invalid names."""
    text = (folder / "dicom-exporter.example.yml").read_text(encoding="utf-8")
    path = folder.parent / "local.yml"
    path.write_text(re.sub(r"host: \S+\.invalid", "host: 127.0.0.1", text), encoding="utf-8")
    return path


# Building the bundle and a venv takes a minute or two on a busy 2-core machine.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_bundle_installs_with_no_index_in_a_fresh_venv(bundle: Path) -> None:
    wheels = sorted(p.name for p in (bundle / "wheels").glob("*.whl"))
    assert any(w.startswith("prometheus_dicom_exporter-") for w in wheels)
    assert any(w.startswith("pynetdicom-") for w in wheels)
    venv = bundle.parent / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    pip = run(venv / "bin" / "pip", "install", "--no-index", "--find-links", bundle / "wheels",
              "prometheus-dicom-exporter", env=OFFLINE)
    assert pip.returncode == 0, pip.stderr[-2000:]
    version = run(venv / "bin" / "dicom-exporter", "--version")
    assert version.returncode == 0
    shown = version.stdout.strip().rsplit(" ", 1)[-1]
    assert VERSION.fullmatch(shown), shown
    assert bundle.name == f"prometheus-dicom-exporter-{shown}-cp311-linux-x86_64"
    checked = run(venv / "bin" / "dicom-exporter", "check-config", localised_example(bundle))
    assert checked.returncode == 0, checked.stderr
    assert ": OK: " in checked.stdout
    bad = bundle.parent / "bad.yml"
    bad.write_text("modules: {echo: {prober: echo, timeout: " + "9" * 400 + "s}}\ntargets: {}\n")
    refused = run(venv / "bin" / "dicom-exporter", "check-config", bad)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert f"{bad}: modules.echo.timeout: duration" in refused.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_install_sh_puts_everything_in_place(bundle: Path) -> None:
    stage = bundle.parent / "stage"
    done = run(bundle / "install.sh", env={**OFFLINE, "DESTDIR": str(stage)})
    assert done.returncode == 0, done.stderr[-2000:]
    unit = (stage / "etc/systemd/system/dicom-exporter.service").read_text(encoding="utf-8")
    (documentation,) = re.findall(r"^Documentation=file://(\S+)$", unit, re.MULTILINE)
    assert (stage / documentation.lstrip("/")).is_file()
    for line in re.findall(r"^Exec\w+=(/\S+)", unit, re.MULTILINE):
        if line.startswith("/opt/"):
            assert (stage / line.lstrip("/")).is_file(), line
    assert (stage / "usr/lib/sysusers.d/dicom-exporter.conf").is_file()
    assert "CONFIG=/etc/dicom-exporter/dicom-exporter.yml" in (
        stage / "etc/default/dicom-exporter").read_text(encoding="utf-8")
    assert (stage / "etc/dicom-exporter/dicom-exporter.yml").is_file()
    # A second run keeps what an administrator edited.
    (stage / "etc/default/dicom-exporter").write_text('CONFIG=/x.yml\nARGS=""\n')
    assert run(bundle / "install.sh", env={**OFFLINE, "DESTDIR": str(stage)}).returncode == 0
    assert (stage / "etc/default/dicom-exporter").read_text() == 'CONFIG=/x.yml\nARGS=""\n'
