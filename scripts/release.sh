#!/usr/bin/env bash
# Builds the offline release bundle: the exporter's wheel and every wheel it
# depends on, for CPython 3.11 on x86_64 Linux, with the systemd files and an
# installer, in one tarball for hospital servers without internet.
#
# Usage: scripts/release.sh [--out DIR]        (default: dist/)
# The version comes from git tags (packaging/buildhook.py): tag first, e.g.
#   git tag -a v1.0.0 -m "1.0.0" && scripts/release.sh
# Needs the package index once, here; the server that installs needs none.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist
if [ "${1:-}" = "--out" ]; then out=$2; fi
python=${PYTHON:-python3.11}
"$python" -c 'import sys, platform
assert sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11), sys.version
assert platform.machine() == "x86_64", platform.machine()' \
    || { echo "release.sh: needs CPython 3.11 on x86_64 (set PYTHON=)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "pip>=23" >/dev/null
# Our wheel (built from this checkout, version from git), then every
# dependency as a wheel: the bundle must install with --no-index.
"$work/venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$work/ours" .
wheel=$(ls "$work"/ours/prometheus_dicom_exporter-*.whl)
version=$(basename "$wheel" | cut -d- -f2)
name="prometheus-dicom-exporter-${version}-cp311-linux-x86_64"
bundle="$work/$name"
mkdir -p "$bundle/wheels"
cp "$wheel" "$bundle/wheels/"
"$work/venv/bin/pip" wheel --quiet --disable-pip-version-check -w "$bundle/wheels" "$wheel"
# Only wheels this platform can install: pure Python, or CPython 3.11 / abi3 on x86_64.
for each in "$bundle"/wheels/*.whl; do
    case "$(basename "$each")" in
        *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
        *-cp311-cp311-*x86_64*.whl|*-abi3-*x86_64*.whl) ;;
        *) echo "release.sh: $(basename "$each") is not for CPython 3.11 x86_64" >&2; exit 1 ;;
    esac
done
cp README.md CHANGELOG.md "$bundle/"
cp -r docs "$bundle/docs"   # the pages the README links to
mkdir -p "$bundle/systemd"
cp examples/dicom-exporter.service packaging/sysusers.d/dicom-exporter.conf \
   packaging/default/dicom-exporter "$bundle/systemd/"
cp examples/kronoberg.yml "$bundle/dicom-exporter.example.yml"
cp packaging/install.sh "$bundle/install.sh"
chmod 755 "$bundle/install.sh"
(cd "$bundle" && sha256sum wheels/*.whl > SHA256SUMS)
mkdir -p "$out"
tar -C "$work" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
