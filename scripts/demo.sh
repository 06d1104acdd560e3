#!/usr/bin/env bash
# Sets up the exporter in .venv when needed and runs the demo: simulated
# Kronoberg peers on 127.0.0.1 and the exporter probing them on :10104.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dicom-exporter demo "$@"
