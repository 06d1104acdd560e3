"""The release: version from git tags; the offline bundle installing,
upgrading, rolling back and uninstalling with no network; the Debian package
installing, upgrading, removing and purging for real.

scripts/release.sh runs three times on copies of this tree: 1.0.0 with the
package index (once), then 1.0.1 and, with a check-config that refuses the
administrator's config, 1.0.2, both offline from the first run's wheels and
with its monitoring pack, side by side. Every install runs
in a network namespace without network (`unshare -n`) into a staging root.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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



@dataclass
class Release:
    """One version's tarball, unpacked bundle folder and .deb (if built)."""

    version: str
    tarball: Path
    folder: Path
    deb: Path | None


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600,
                          check=False, **kwargs)  # type: ignore[call-overload]


def copy_of_this_tree(into: Path) -> Path:
    """The files git knows here (committed or not), without .git: a release's source."""
    listed = run("git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_symlink():  # e.g. exporter/data/runbooks -> ../../runbooks (a folder)
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(source), into / name)
        elif source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


# 1.0.2 is a release that no longer accepts a config such as the installed one
# (marked by the administrator's edit); the example, which release.sh
# generates the monitoring pack for, it still reads.
REFUSING = """

_load_of_1_0_1 = load


def load(path: str) -> Config:  # noqa: F811 - test release 1.0.2
    if "# edited here" in open(path, encoding="utf-8").read():
        raise ConfigError([f"{path}: sites: not accepted by 1.0.2"])
    return _load_of_1_0_1(path)
"""


def release(source: Path, out: Path, version: str, *options: str) -> Release:
    shutil.rmtree(source / "build", ignore_errors=True)
    done = run("bash", source / "scripts" / "release.sh", "--out", out, "--version", version,
               *options)
    assert done.returncode == 0, done.stderr[-3000:]
    tarball = out / f"prometheus-dicom-exporter-{version}-cp311-linux-x86_64.tar.gz"
    with tarfile.open(tarball) as archive:
        archive.extractall(out / version, filter="data")
    deb = out / f"prometheus-dicom-exporter_{version}_amd64.deb"
    return Release(version, tarball, out / version / tarball.name.removesuffix(".tar.gz"),
                   deb if deb.exists() else None)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    out = tmp_path_factory.mktemp("dist")
    source = copy_of_this_tree(tmp_path_factory.mktemp("source"))
    first = release(source, out, "1.0.0")
    # The offline builds' wheels: the first bundle's, and the build's own setuptools.
    wheels = out / "wheels"
    shutil.copytree(first.folder / "wheels", wheels)
    fetched = run(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
                  "--dest", wheels, "setuptools>=64", "wheel")
    assert fetched.returncode == 0, fetched.stderr
    # 1.0.1 and 1.0.2 reuse the first bundle's monitoring pack (no test reads
    # theirs) and build at the same time, each from its own copy of the tree.
    pack = ("--wheels", str(wheels), "--pack", str(first.folder / "monitoring"))
    refusing = copy_of_this_tree(tmp_path_factory.mktemp("source"))
    config_package = refusing / "exporter" / "config" / "__init__.py"
    config_package.write_text(config_package.read_text(encoding="utf-8") + REFUSING,
                              encoding="utf-8")
    with ThreadPoolExecutor(2) as pool:
        later = {"1.0.1": pool.submit(release, source, out, "1.0.1", *pack),
                 "1.0.2": pool.submit(release, refusing, out, "1.0.2", *pack, "--no-deb")}
        return {"1.0.0": first, **{version: job.result() for version, job in later.items()}}


def install(folder: Path, stage: Path, *args: str) -> subprocess.CompletedProcess:
    """install.sh in a network namespace without network, into the staging root."""
    return run("unshare", "-n", "sh", folder / "install.sh", *args,
               env={**OFFLINE, "DESTDIR": str(stage)})


def installed_version(stage: Path) -> str:
    """What `dicom-exporter --version` says, found on PATH as an administrator would."""
    done = run("dicom-exporter", "--version",
               env={"PATH": f"{stage}/usr/local/bin:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    match = re.match(r"dicom-exporter, version (\S+) \(branch: ", done.stdout)
    assert match, done.stdout
    return match[1]


@pytest.fixture(scope="module")
def stage(releases: dict[str, Release], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bundle 1.0.0 installed into a staging root (tests below upgrade it)."""
    root = tmp_path_factory.mktemp("root")
    done = install(releases["1.0.0"].folder, root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "installed dicom-exporter 1.0.0 in /opt/dicom-exporter" in done.stdout
    # No systemd as PID 1 in a staging root: everything installed, the start said.
    assert "start by hand: runuser -u dicom-exporter -- /opt/dicom-exporter/bin/dicom-exporter " \
        "serve --config.file=/etc/dicom-exporter/dicom-exporter.yml" in done.stdout
    return root


def test_install_sh_checks_its_prerequisites_first_one_line_each(tmp_path: Path) -> None:
    installer = tmp_path / "install.sh"
    shutil.copy(ROOT / "packaging" / "install.sh", installer)
    fakes = {
        "python-3.12": "exit 1",
        "python-without-venv": 'case "$2" in *ensurepip*) exit 1;; esac\n'
                               'exec /usr/bin/python3 "$@"',
    }
    for name, body in fakes.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    expected = {
        "python-3.12": "install.sh: needs CPython 3.11, ",
        "python-without-venv": "install.sh: needs Python's venv with ensurepip "
                               "(Debian 12: apt install python3.11-venv)",
    }
    for name, line in expected.items():
        done = run("sh", installer, env={**OFFLINE, "PYTHON": str(tmp_path / name),
                                         "DESTDIR": str(tmp_path / "stage")})
        assert done.returncode == 1
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(line), done.stderr
    # Prerequisites met, but no bundle beside the script: the checksum check says so.
    done = run("sh", installer, env={**OFFLINE, "DESTDIR": str(tmp_path / "stage")})
    assert done.returncode == 1 and "install.sh: the bundle is damaged" in done.stderr
    assert not (tmp_path / "stage" / "opt").exists()


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_bundle_lists_every_file_in_sha256sums(releases: dict[str, Release]) -> None:
    folder = releases["1.0.0"].folder
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    listed = {}
    for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    assert set(listed) == files - {"SHA256SUMS"}
    assert {"install.sh", "LICENSE", "VERSION", "systemd/dicom-exporter.service",
            "dicom-exporter.example.yml"} <= files
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert (folder / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    # The monitoring pack, made by the installed program for the example config:
    # the files this repository commits as that command's output.
    pack = {name.removeprefix("monitoring/") for name in files if name.startswith("monitoring/")}
    assert {"alerts/dicom.rules.yml", "grafana/dashboards/overview.json"} <= pack
    for name in pack:
        if (ROOT / name).is_file():
            assert (folder / "monitoring" / name).read_bytes() == (ROOT / name).read_bytes(), name
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    wheels = sorted(p.name for p in (folder / "wheels").glob("*.whl"))
    assert "prometheus_dicom_exporter-1.0.0-py3-none-any.whl" in wheels
    assert any(w.startswith("pynetdicom-") for w in wheels)
    assert not any(w.startswith(("setuptools-", "wheel-")) for w in wheels)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_bundle_upgrades_rolls_back_and_refuses_a_version_that_rejects_the_config(
        releases: dict[str, Release], stage: Path) -> None:
    config = stage / "etc/dicom-exporter/dicom-exporter.yml"
    default = stage / "etc/default/dicom-exporter"
    unit = stage / "etc/systemd/system/dicom-exporter.service"
    assert installed_version(stage) == "1.0.0"
    assert (stage / "usr/lib/sysusers.d/dicom-exporter.conf").is_file()
    assert "CONFIG=/etc/dicom-exporter/dicom-exporter.yml" in default.read_text(encoding="utf-8")
    text = unit.read_text(encoding="utf-8")
    (documentation,) = re.findall(r"^Documentation=file://(\S+)$", text, re.MULTILINE)
    assert (stage / documentation.lstrip("/")).is_file()
    for program in re.findall(r"^Exec\w+=(?:/usr/bin/nohup )?(/opt/\S+)", text, re.MULTILINE):
        assert (stage / program.lstrip("/")).is_file(), program
    rules = stage / "usr/share/dicom-exporter/monitoring/alerts/dicom.rules.yml"
    assert rules.read_bytes() == (ROOT / "alerts/dicom.rules.yml").read_bytes()
    assert not (stage / "etc/prometheus").exists()
    # The administrator's edits, which every later step must keep.
    edited_config = localised(config.read_text(encoding="utf-8")) + "# edited here\n"
    config.write_text(edited_config, encoding="utf-8")
    default.write_text(default.read_text(encoding="utf-8") + "# edited here\n")

    upgraded = install(releases["1.0.1"].folder, stage)
    assert upgraded.returncode == 0, upgraded.stderr[-3000:]
    assert "upgraded dicom-exporter 1.0.0 to 1.0.1" in upgraded.stdout
    assert installed_version(stage) == "1.0.1"
    assert config.read_text(encoding="utf-8") == edited_config
    assert default.read_text(encoding="utf-8").endswith("# edited here\n")
    prefix = stage / "opt/dicom-exporter"
    assert os.readlink(prefix / "previous").startswith("versions/1.0.0.")
    again = install(releases["1.0.1"].folder, stage)
    assert again.returncode == 0 and "1.0.1 is installed already" in again.stdout

    rolled = install(releases["1.0.1"].folder, stage, "--rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back to dicom-exporter 1.0.0 (from 1.0.1" in rolled.stdout
    assert installed_version(stage) == "1.0.0"
    assert config.read_text(encoding="utf-8") == edited_config

    before = sorted(p.name for p in (prefix / "versions").iterdir())
    refused = install(releases["1.0.2"].folder, stage)
    assert refused.returncode == 1
    assert "sites: not accepted by 1.0.2" in refused.stderr
    assert refused.stderr.splitlines()[-1] == (
        "install.sh: dicom-exporter 1.0.2 rejects the config above; nothing changed, "
        "1.0.0 stays installed (and running)")
    assert installed_version(stage) == "1.0.0"
    assert sorted(p.name for p in (prefix / "versions").iterdir()) == before
    assert config.read_text(encoding="utf-8") == edited_config


def localised(text: str) -> str:
    """Hosts on 127.0.0.1: never resolve the example's .invalid names."""
    return re.sub(r"host: \S+\.invalid", "host: 127.0.0.1", text)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_installed_check_config_names_the_problem_without_a_traceback(stage: Path) -> None:
    program = stage / "usr/local/bin/dicom-exporter"
    bad = stage / "bad.yml"
    bad.write_text("modules: {echo: {prober: echo, timeout: " + "9" * 400 + "s}}\ntargets: {}\n")
    refused = run(program, "check-config", "--config.file", bad)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert f"{bad}: modules.echo.timeout: duration" in refused.stderr


CONFIG = "/etc/dicom-exporter/dicom-exporter.yml"
OUT = "/var/tmp/dicom-monitoring"  # where the runbooks have the monitoring pack generated
PROMETHEUS = "http://localhost:9090"  # the runbooks' Prometheus for `report`
EXIT_CODES = re.compile(r"  # slutstatus 0: [^,]+, 1: .+$")


def runbook_commands() -> list[tuple[str, str, str]]:
    """(runbook, command, exit-code note) for every `dicom-exporter` command the
    runbooks show: fenced lines (continuations joined) and inline code spans."""
    found = []
    texts = {p.name: p.read_text(encoding="utf-8")
             for p in sorted((ROOT / "runbooks").glob("*.md")) if p.name != "README.md"}
    for name, text in texts.items():  # README.md is about the runbooks, not one of them
        for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
            lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
            for line in lines:
                if line.startswith("dicom-exporter"):
                    note = EXIT_CODES.search(line)
                    assert note, f"{name}: no documented exit code: {line}"
                    found.append((name, " ".join(line[:note.start()].split()), note[0]))
    # An inline command takes the exit codes documented for its subcommand.
    notes = {command.split()[1]: note for _, command, note in found}
    for name, text in texts.items():
        for inline in re.findall(r"`(dicom-exporter [^`]*)`", text):
            command = " ".join(inline.split())
            assert command.split()[1] in notes, f"{name}: `{inline}`: no exit code documented"
            found.append((name, command, notes[command.split()[1]]))
    return found


def test_every_runbook_command_uses_the_installed_paths() -> None:
    commands = runbook_commands()
    assert len(commands) >= 13
    # The runbook test below knows how each of these fails; a new one needs a case there.
    assert {command.split()[1] for _, command, _ in commands} <= {
        "check-config", "monitoring", "probe", "report", "routes"}
    for runbook, command, _ in commands:
        files = re.findall(r"(?:^| )(/\S+)", command)
        assert files, (runbook, command)
        assert all(f.startswith(("/etc/dicom-exporter/", OUT)) for f in files), (runbook, command)
        assert f"--config.file {CONFIG}" in command, (runbook, command)
        assert " --help" not in command


def loopback_config(text: str, ports: dict[str, int]) -> str:
    """The example with every target on 127.0.0.1 at its simulated peer's port."""
    def moved(match: re.Match[str]) -> str:
        return f"{match[1]}host: 127.0.0.1\n{match[2]}port: {ports[match[0].split(':')[0].strip()]}"
    return re.sub(r"(?m)^  [\w.]+:\n(\s+)host: \S+\n(\s+)port: \d+",
                  lambda m: m[0].split("\n")[0] + "\n" + moved(m), text)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_runbook_commands_run_on_the_installed_bundle(stage: Path) -> None:
    """Each command as an administrator pastes it on the server (`dicom-exporter`
    from PATH, files in /etc/dicom-exporter, here under the staging root), with
    the example config's targets on simulated peers: the documented success code
    while they answer, the documented failure code once they are down or the
    file is broken."""
    import yaml

    from exporter.demo.simulated import PeerSet
    from tests.support.realpeers import free_port

    config = stage / CONFIG.lstrip("/")
    web = stage / "etc/dicom-exporter/web.yml"
    saved = config.read_bytes()
    example = (ROOT / "examples" / "kronoberg.yml").read_text(encoding="utf-8")
    targets = yaml.safe_load(example)["targets"]
    peers = PeerSet.start({name: t["ae_title"] for name, t in targets.items()})
    env = {"PATH": f"{stage}/usr/local/bin:/usr/bin:/bin"}
    no_prometheus = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    def paste(command: str) -> subprocess.CompletedProcess:
        argv = [arg.replace("/etc/dicom-exporter/", f"{stage}/etc/dicom-exporter/")
                .replace(OUT, f"{stage}{OUT}").replace(PROMETHEUS, no_prometheus)
                for arg in command.split()]
        return run(*argv, env=env)

    try:
        config.write_text(loopback_config(example, {n: p.port for n, p in peers.peers.items()}),
                          encoding="utf-8")
        web.write_text("basic_auth_users: {}\n", encoding="utf-8")
        commands = runbook_commands()
        for runbook, command, note in commands:
            if command.split()[1] == "report":  # 0 needs Prometheus with history: not here
                continue
            done = paste(command)
            assert done.returncode == 0, (runbook, command, note, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr
        peers.stop()
        config.write_text(config.read_text(encoding="utf-8") + "unknown_key: 1\n",
                          encoding="utf-8")
        assert (stage / OUT.lstrip("/") / "alerts/dicom.rules.yml").is_file()
        for runbook, command, note in commands:
            if command.split()[1] not in ("check-config", "monitoring"):
                continue
            done = paste(command)
            assert done.returncode == 1, (runbook, command, note, done.stderr)
            assert "unknown_key" in done.stderr and "Traceback" not in done.stderr
        config.write_text(loopback_config(example, {n: p.port for n, p in peers.peers.items()}),
                          encoding="utf-8")
        for runbook, command, note in commands:
            if command.split()[1] not in ("probe", "routes", "report"):
                continue
            done = paste(command)
            assert done.returncode == 1, (runbook, command, note, done.stdout)
            assert "Traceback" not in done.stderr
    finally:
        peers.stop()
        config.write_bytes(saved)
        web.unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_uninstall_keeps_config_and_state(releases: dict[str, Release], stage: Path) -> None:
    """Last of the bundle's tests: it removes what the others use."""
    (stage / "var/lib/dicom-exporter").mkdir(parents=True)
    (stage / "var/lib/dicom-exporter/state").write_text("kept")
    config = (stage / "etc/dicom-exporter/dicom-exporter.yml").read_bytes()
    done = install(releases["1.0.0"].folder, stage, "--uninstall")
    assert done.returncode == 0, done.stderr
    assert not (stage / "opt/dicom-exporter").exists()
    assert not (stage / "usr/local/bin/dicom-exporter").is_symlink()
    assert not (stage / "etc/systemd/system/dicom-exporter.service").exists()
    assert not (stage / "usr/share/dicom-exporter").is_symlink()
    assert (stage / "etc/dicom-exporter/dicom-exporter.yml").read_bytes() == config
    assert (stage / "etc/default/dicom-exporter").is_file()
    assert (stage / "var/lib/dicom-exporter/state").read_text() == "kept"
    assert install(releases["1.0.0"].folder, stage, "--rollback").returncode == 1


def apt(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """apt-get as an administrator runs it, in a namespace without network."""
    return run("unshare", "-n", "apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", *args,
               env={**OFFLINE, "DEBIAN_FRONTEND": "noninteractive"}, cwd=cwd)


def package_installed() -> bool:
    done = run("dpkg-query", "-W", "-f", "${Status}", "prometheus-dicom-exporter")
    return done.returncode == 0 and "installed" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_deb_installs_upgrades_removes_and_purges(releases: dict[str, Release]) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("installs a .deb for real: needs root and apt-get (CI runs as root)")
    if package_installed() or run("dpkg-query", "-W", "prometheus-dicom-exporter").stdout:
        pytest.skip("prometheus-dicom-exporter is installed on this machine: not touched")
    user_existed = run("getent", "passwd", "dicom-exporter").returncode == 0
    old, new = releases["1.0.0"].deb, releases["1.0.1"].deb
    assert old and new
    # lintian reads only the file: it runs beside the installs, checked at the end.
    lint = ThreadPoolExecutor(1)
    linted = lint.submit(run, "lintian", "--tag-display-limit", "0", new) \
        if shutil.which("lintian") else None
    config = Path("/etc/dicom-exporter/dicom-exporter.yml")
    state = Path("/var/lib/dicom-exporter")
    try:
        done = apt("install", f"./{old.name}", cwd=old.parent)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert run("/usr/bin/dicom-exporter", "--version").stdout.startswith(
            "dicom-exporter, version 1.0.0 ")
        assert run("getent", "passwd", "dicom-exporter").returncode == 0
        unit = Path("/lib/systemd/system/dicom-exporter.service").read_text(encoding="utf-8")
        assert "ExecStart=/usr/bin/nohup /usr/bin/dicom-exporter " in unit and "/opt/" not in unit
        (documentation,) = re.findall(r"^Documentation=file://(\S+)$", unit, re.MULTILINE)
        assert Path(documentation).is_file()
        assert Path("/usr/share/dicom-exporter/monitoring/alerts/dicom.rules.yml").is_file()
        checked = run("/usr/bin/dicom-exporter", "check-config", "--config.file", config)
        assert checked.returncode == 0, checked.stderr
        edited = config.read_text(encoding="utf-8") + "# edited here\n"
        config.write_text(edited, encoding="utf-8")

        done = apt("install", f"./{new.name}", cwd=new.parent)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert run("/usr/bin/dicom-exporter", "--version").stdout.startswith(
            "dicom-exporter, version 1.0.1 ")
        assert config.read_text(encoding="utf-8") == edited

        state.mkdir(exist_ok=True)
        (state / "state").write_text("kept")
        assert apt("remove", "prometheus-dicom-exporter").returncode == 0
        assert not Path("/usr/bin/dicom-exporter").exists()
        assert not Path("/usr/lib/prometheus-dicom-exporter").exists()  # bytecode too
        assert config.read_text(encoding="utf-8") == edited
        assert (state / "state").read_text() == "kept"

        assert apt("purge", "prometheus-dicom-exporter").returncode == 0
        assert not config.parent.exists() and not state.exists()
        assert not Path("/etc/default/dicom-exporter").exists()
        assert not run("dpkg-query", "-W", "prometheus-dicom-exporter").stdout
        if linted:
            errors = [line for line in linted.result().stdout.splitlines()
                      if line.startswith("E:")]
            assert not errors, linted.result().stdout
    finally:
        lint.shutdown(wait=True)
        if run("dpkg-query", "-W", "prometheus-dicom-exporter").stdout:
            apt("purge", "prometheus-dicom-exporter")
        shutil.rmtree(state, ignore_errors=True)
        if not user_existed:
            run("userdel", "dicom-exporter")
