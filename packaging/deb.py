"""Builds prometheus-dicom-exporter_VERSION_amd64.deb from the release bundle's wheels.

Run by scripts/release.sh after the bundle is complete, so both forms carry
the very same wheels: release.sh installed them with pip --no-index
--target (not a venv: a venv pins the interpreter path of the build
machine) and made the bundle's monitoring pack with that tree; it becomes
/usr/lib/prometheus-dicom-exporter, and /usr/bin/dicom-exporter puts that
folder first on Debian's python3.11's path. The monitoring pack goes to
/usr/share/dicom-exporter/monitoring (nothing under /etc/prometheus). The
bytecode is compiled by postinst and removed by prerm, as Debian's own
Python packages do, so no .pyc travels in the package.

The unit, /etc/default/dicom-exporter and the example config are the
bundle's, with the bundle's /opt/dicom-exporter paths turned into the
package's; the two /etc files and the config are conffiles (dpkg keeps an
administrator's edits through upgrades). Maintainer scripts create the user,
restart a running service after an upgrade, and on purge delete the config
and the state directory. docs/operations.md is the administrator's side.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from email.utils import formatdate
from pathlib import Path

PACKAGE = "prometheus-dicom-exporter"
NAME = "dicom-exporter"
LIB = f"usr/lib/{PACKAGE}"
DOC = f"usr/share/doc/{PACKAGE}"
SHARE = f"usr/share/{NAME}"  # examples and the monitoring pack
UNIT = f"lib/systemd/system/{NAME}.service"
CONFFILES = (f"etc/default/{NAME}", f"etc/{NAME}/{NAME}.yml")
MAINTAINER = "dicom-exporter dev <dev@dicom-exporter.invalid>"
# What the bundle's files say about its layout, and what the package's say.
PATHS = {
    f"/opt/{NAME}/bin/{NAME}": f"/usr/bin/{NAME}",
    f"/opt/{NAME}/share/doc/{PACKAGE}/": f"/{DOC}/",
}

LAUNCHER = f"""#!/usr/bin/python3.11 -I
# dicom-exporter from the Debian package: its Python libraries, bundled in
# /{LIB}, come before any installed elsewhere.
import sys

sys.path.insert(0, "/{LIB}")
from exporter.cli import main  # noqa: E402

sys.exit(main())
"""

POSTINST = f"""#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd {NAME} >/dev/null; then
        adduser --system --group --quiet --no-create-home --home /nonexistent \\
            --shell /usr/sbin/nologin --gecos "DICOM transfer monitor (Prometheus exporter)" {NAME}
    fi
    python3.11 -m compileall -q -j 0 /{LIB} >/dev/null || true
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
    if [ -z "$2" ]; then
        echo "{NAME}: edit /etc/{NAME}/{NAME}.yml, then: systemctl enable --now {NAME}"
    elif ! {NAME} check-config --config.file /etc/{NAME}/{NAME}.yml >/dev/null 2>&1; then
        echo "{NAME}: not restarted: this version rejects /etc/{NAME}/{NAME}.yml:" >&2
        {NAME} check-config --config.file /etc/{NAME}/{NAME}.yml >&2 || true
    elif [ -d /run/systemd/system ]; then
        deb-systemd-invoke try-restart {NAME}.service || true
    fi
fi
exit 0
"""

PRERM = f"""#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop {NAME}.service || true
fi
# The bytecode postinst compiled: not dpkg's files.
find /{LIB} -depth -type d -name __pycache__ -exec rm -rf {{}} + 2>/dev/null || true
exit 0
"""

POSTRM = f"""#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf /etc/{NAME} /var/lib/{NAME}
    rm -f /etc/default/{NAME}.dpkg-dist /etc/default/{NAME}.dpkg-old
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper purge {NAME}.service >/dev/null || true
    fi
    rm -f /etc/systemd/system/multi-user.target.wants/{NAME}.service
fi
if [ "$1" = remove ] || [ "$1" = purge ]; then
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
fi
exit 0
"""


def _write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    path.chmod(mode)


def _relocated(text: str) -> str:
    for old, new in PATHS.items():
        text = text.replace(old, new)
    return text


def _debianise(lib: Path) -> None:
    """What lintian counts as errors in the bundled libraries, fixed.

    PyYAML's compiled parser embeds its own libyaml (Debian forbids a second
    copy of a library): the pure-Python parser it falls back to reads the
    config instead. Shared objects are stripped; a library module's `#!`
    line (it is not run as a program here) goes.
    """
    for embedded in lib.glob("yaml/_yaml*.so"):
        embedded.unlink()
    objects = sorted(str(p) for p in lib.rglob("*.so"))
    if objects and shutil.which("strip"):
        subprocess.run(["strip", "--strip-unneeded", "--remove-section=.comment",
                        "--remove-section=.note", *objects], check=True)
    for module in lib.rglob("*.py"):
        text = module.read_bytes()
        if text.startswith(b"#!"):
            module.write_bytes(text[text.find(b"\n") + 1:] if b"\n" in text else b"")
    for path in lib.rglob("*"):
        if path.is_file():
            path.chmod(0o644)


def _manual(lib: Path) -> bytes:
    """dicom-exporter(1): the command's own --help texts, each subcommand's too."""
    program = (
        "import sys\n"
        f"sys.path.insert(0, {str(lib)!r})\n"
        "import click\n"
        "from exporter.cli import main\n"
        "ctx = click.Context(main, info_name='dicom-exporter', terminal_width=78)\n"
        "print(main.get_help(ctx))\n"
        "for name in main.list_commands(ctx):\n"
        "    sub = click.Context(main.get_command(ctx, name), parent=ctx, info_name=name,\n"
        "                        terminal_width=78)\n"
        "    print('\\n' + sub.command.get_help(sub))\n"
    )
    helps = subprocess.run([sys.executable, "-I", "-B", "-c", program], check=True,
                           capture_output=True, text=True).stdout
    body = "\n".join(("\\" + line) if line.startswith((".", "'")) else line
                     for line in helps.replace("\\", "\\e").splitlines())
    return _gzip((
        '.TH DICOM-EXPORTER 1 "" "" "User Commands"\n'
        ".SH NAME\ndicom-exporter \\- Prometheus exporter for DICOM transfer between hospitals\n"
        f".SH DESCRIPTION\n.nf\n{body}\n.fi\n"
        f".SH SEE ALSO\n/{DOC}/README.md, /{SHARE}/\n").encode())


def _gzip(text: bytes) -> bytes:
    return gzip.compress(text, compresslevel=9, mtime=0)


def _copyright() -> str:
    """Debian's machine-readable form; Apache-2.0 is in common-licenses."""
    return (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: {PACKAGE}\n\n"
        "Files: *\n"
        "Copyright: 2026 Region Kronoberg and the dicom-exporter authors\n"
        "License: Apache-2.0\n"
        " On Debian systems the full text of the Apache License 2.0 is in\n"
        " /usr/share/common-licenses/Apache-2.0; it is also the LICENSE file\n"
        " of the release bundle.\n\n"
        "Files: usr/lib/prometheus-dicom-exporter/*\n"
        "Copyright: the authors of each bundled Python library\n"
        "License: various\n"
        " Each bundled library's licence is in its *.dist-info folder in\n"
        " /usr/lib/prometheus-dicom-exporter.\n"
    )


def _control(version: str, size_kib: int) -> str:
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        "Architecture: amd64\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {size_kib}\n"
        "Depends: python3.11, libc6 (>= 2.34), adduser, init-system-helpers (>= 1.52)\n"
        "Section: net\n"
        "Priority: optional\n"
        "Description: Prometheus exporter for DICOM transfer between hospitals\n"
        " Probes DICOM peers with TCP connect, C-ECHO, association negotiation\n"
        " and C-STORE of a synthetic test object, classifies every failure, and\n"
        " answers Prometheus' multi-target /probe requests; serves Swedish\n"
        " runbooks and an on-call status page. Its Python libraries are bundled\n"
        " in /usr/lib/prometheus-dicom-exporter.\n"
    )


def build(bundle: Path, installed: Path, out: Path) -> Path:
    version = (bundle / "VERSION").read_text(encoding="utf-8").strip()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "root"
        lib = root / LIB
        shutil.copytree(installed, lib, symlinks=True)
        shutil.rmtree(lib / "bin")  # scripts pointing at the build machine's venv
        _debianise(lib)
        shipped = lib / "share" / PACKAGE
        _write(root / "usr/bin" / NAME, LAUNCHER, 0o755)
        _write(root / "usr/share/man/man1" / f"{NAME}.1.gz", _manual(lib))
        _write(root / UNIT, _relocated((shipped / f"{NAME}.service").read_text()))
        _write(root / "usr/lib/sysusers.d" / f"{NAME}.conf",
               (shipped / f"{NAME}.conf").read_text())
        _write(root / "etc/default" / NAME, _relocated((shipped / NAME).read_text()))
        _write(root / "etc" / NAME / f"{NAME}.yml",
               (bundle / f"{NAME}.example.yml").read_text())
        for example in sorted(shipped.glob("*.yml")):
            _write(root / SHARE / "examples" / example.name, example.read_text())
        monitoring = bundle / "monitoring"
        if monitoring.is_dir():
            shutil.copytree(monitoring, root / SHARE / "monitoring")
        shutil.rmtree(lib / "share")
        doc = root / DOC
        _write(doc / "README.md", (bundle / "README.md").read_bytes())
        _write(doc / "changelog.gz", _gzip((bundle / "CHANGELOG.md").read_bytes()))
        _write(doc / "copyright", _copyright())
        date = formatdate(float(os.environ.get("SOURCE_DATE_EPOCH") or time.time()))
        _write(doc / "changelog.Debian.gz", _gzip(
            f"{PACKAGE} ({version}) unstable; urgency=medium\n\n"
            f"  * Release {version}: built by scripts/release.sh from the bundle's\n"
            "    wheels; the changes are in changelog.gz.\n\n"
            f" -- {MAINTAINER}  {date}\n".encode()))
        for path in root.rglob("*"):  # dpkg-deb --root-owner-group; modes as Debian's
            if path.is_dir():
                path.chmod(0o755)
            elif path.is_file() and path.stat().st_mode & 0o111 == 0:
                path.chmod(0o644)
        debian = root / "DEBIAN"
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024 + 1
        _write(debian / "control", _control(version, size))
        _write(debian / "conffiles", "".join(f"/{c}\n" for c in CONFFILES))
        for script, text in (("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)):
            _write(debian / script, text, 0o755)
        sums = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            if not relative.startswith(("DEBIAN/", "etc/")):
                sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {relative}\n")
        _write(debian / "md5sums", "".join(sums))
        out.mkdir(parents=True, exist_ok=True)
        deb = out / f"{PACKAGE}_{version}_amd64.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root),
                        str(deb)], check=True, stdout=subprocess.DEVNULL)
    return deb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="the unpacked bundle")
    parser.add_argument("--lib", type=Path, required=True,
                        help="the bundle's wheels installed with pip --target")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(build(args.bundle, args.lib, args.out))


if __name__ == "__main__":
    main()
