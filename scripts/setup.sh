#!/usr/bin/env bash
# Installs what the project needs when it is missing: the Debian packages the
# tests run for real (Orthanc, dcmtk, Prometheus, Alertmanager, Chromium for
# the status page, dicom3tools' dciodvfy for the store test objects, systemd's
# analyzers for the unit file, iproute2 for the tests' own network namespaces,
# curl for the documented recipes, the Central Test Node's storage server)
# and a Python virtual environment in .venv with the exporter and its test tools.
# Usage: scripts/setup.sh [--test]   (--test also installs the Debian packages)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--test" ]; then
    missing=()
    command -v Orthanc >/dev/null || missing+=(orthanc)
    command -v storescp >/dev/null || missing+=(dcmtk)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v dciodvfy >/dev/null || missing+=(dicom3tools)
    { command -v systemd-analyze && command -v systemd-sysusers; } >/dev/null || missing+=(systemd)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v curl >/dev/null || missing+=(curl)
    command -v simple_storage >/dev/null || missing+=(ctn)  # an interop peer (issue 28)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing Debian packages: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
# Reinstall when pyproject.toml's content changed since the last install (a
# checkout or merge does not always make it newer than the stamp).
stamp=".venv/.installed${extra}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    # The distribution was once called dicom-exporter: an old install of that
    # name would own the same command and package, so it goes first.
    .venv/bin/pip uninstall --quiet --yes dicom-exporter >/dev/null 2>&1 || true
    if ! .venv/bin/pip install --quiet --disable-pip-version-check -e ".${extra}" \
            >.venv/pip.log 2>&1; then
        echo "setup: pip install -e .${extra} failed; its last lines (all in .venv/pip.log):" >&2
        tail -n 15 .venv/pip.log >&2
        exit 1
    fi
    echo "$wanted" >"$stamp"
fi
