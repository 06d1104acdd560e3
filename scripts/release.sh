#!/usr/bin/env bash
# Builds the offline release for hospital servers without internet, from the
# same wheels (our wheel and every wheel it depends on, for CPython 3.11 on
# x86_64 Linux), in two forms beside each other:
#   prometheus-dicom-exporter-VERSION-cp311-linux-x86_64.tar.gz   the bundle:
#       wheels, install.sh (install, upgrade, --rollback, --uninstall), the
#       systemd files, the example config and the monitoring pack generated
#       for it (monitoring/), LICENSE, SHA256SUMS over every file
#   prometheus-dicom-exporter_VERSION_amd64.deb   the Debian package (dpkg-deb):
#       `apt install ./prometheus-dicom-exporter_VERSION_amd64.deb`
# docs/operations.md is the administrator's procedure for both.
#
# Usage: scripts/release.sh [--out DIR] [--version V] [--wheels DIR] [--no-deb]
#                            [--pack DIR]
#   --out DIR     where the tarball and the .deb go (default dist/)
#   --version V   build as version V instead of the one from git tags; for
#                 builds from a copy of the tree (the tests build 1.0.0, 1.0.1...)
#   --wheels DIR  take the dependency wheels (and the build's setuptools and
#                 wheel) from DIR instead of the package index: no network
#   --no-deb      the tarball only
#   --pack DIR    copy the monitoring pack from DIR (an earlier bundle's
#                 monitoring/) instead of generating it; with --no-deb the
#                 build then installs nothing (the tests' repeated builds)
# The version comes from git tags (packaging/buildhook.py): tag first, e.g.
#   git tag -a v1.0.0 -m "1.0.0" && scripts/release.sh
# Needs the package index once, here (unless --wheels); the server needs none.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist version="" wheels="" deb=yes pack=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        --wheels) wheels=$(cd "$2" && pwd); shift 2 ;;
        --no-deb) deb=""; shift ;;
        --pack) pack=$(cd "$2" && pwd); shift 2 ;;
        *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
python=${PYTHON:-python3.11}
"$python" -c 'import sys, platform
assert sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11), sys.version
assert platform.machine() == "x86_64", platform.machine()' \
    || { echo "release.sh: needs CPython 3.11 on x86_64 (set PYTHON=)" >&2; exit 1; }
if [ -n "$deb" ]; then
    command -v dpkg-deb >/dev/null || { echo "release.sh: needs dpkg-deb for the .deb (or --no-deb)" >&2; exit 1; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip=("$work/venv/bin/pip" --quiet --disable-pip-version-check)
if [ -n "$wheels" ]; then
    index=(--no-index --find-links "$wheels")
else
    index=()
fi
"$python" -m venv "$work/venv"
if [ -z "$wheels" ]; then
    "${pip[@]}" install --upgrade "pip>=23" >/dev/null
fi
# Our wheel (built from this tree; the version from git unless --version),
# then every dependency as a wheel: the bundle must install with --no-index.
if [ -n "$version" ]; then
    export DICOM_EXPORTER_VERSION=$version
    DICOM_EXPORTER_REVISION=$(git rev-parse HEAD 2>/dev/null || true)
    DICOM_EXPORTER_BRANCH=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || true)
    export DICOM_EXPORTER_REVISION DICOM_EXPORTER_BRANCH
fi
"${pip[@]}" wheel "${index[@]}" --no-deps -w "$work/ours" .
wheel=$(ls "$work"/ours/prometheus_dicom_exporter-*.whl)
version=$(basename "$wheel" | cut -d- -f2)
name="prometheus-dicom-exporter-${version}-cp311-linux-x86_64"
bundle="$work/$name"
mkdir -p "$bundle/wheels"
cp "$wheel" "$bundle/wheels/"
"${pip[@]}" wheel "${index[@]}" -w "$bundle/wheels" "$wheel"
# Only wheels this platform can install: pure Python, or CPython 3.11 / abi3 on x86_64.
for each in "$bundle"/wheels/*.whl; do
    case "$(basename "$each")" in
        *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
        *-cp311-cp311-*x86_64*.whl|*-abi3-*x86_64*.whl) ;;
        *) echo "release.sh: $(basename "$each") is not for CPython 3.11 x86_64" >&2; exit 1 ;;
    esac
done
# The installed program, as a server would have it (no venv: pip --target),
# makes the bundle's monitoring pack for the example config; the .deb is
# made from the same tree.
if [ -n "$deb" ] || [ -z "$pack" ]; then
    "${pip[@]}" install --no-index --find-links "$bundle/wheels" --no-compile \
        --target "$work/lib" "prometheus-dicom-exporter==$version"
fi
if [ -n "$pack" ]; then
    cp -R "$pack" "$bundle/monitoring"
else
    "$python" -I -B -c 'import sys; sys.path.insert(0, sys.argv.pop(1))
from exporter.cli import main; main()' "$work/lib" monitoring generate \
        --config.file examples/kronoberg.yml --out "$bundle/monitoring" >/dev/null
fi
echo "$version" > "$bundle/VERSION"
cp README.md CHANGELOG.md LICENSE "$bundle/"
cp -r docs "$bundle/docs"   # the pages the README links to
mkdir -p "$bundle/systemd"
cp examples/dicom-exporter.service packaging/sysusers.d/dicom-exporter.conf \
   packaging/default/dicom-exporter "$bundle/systemd/"
cp examples/kronoberg.yml "$bundle/dicom-exporter.example.yml"
cp packaging/install.sh "$bundle/install.sh"
chmod 755 "$bundle/install.sh"
(cd "$bundle" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort \
    | xargs -d '\n' sha256sum > SHA256SUMS)
mkdir -p "$out"
tar -C "$work" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
if [ -n "$deb" ]; then
    "$python" packaging/deb.py --bundle "$bundle" --lib "$work/lib" --out "$out"
fi
