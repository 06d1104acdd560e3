#!/usr/bin/env bash
# The whole monitoring chain on 127.0.0.1: simulated peers, the Växjö and
# Ljungby exporters, Prometheus with alerts/, Alertmanager with
# alerts/alertmanager.yml (notifications printed here). Installs what is
# missing first (as root). Pass --fast for 3 s instead of 15 s intervals.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m tools.stack "$@"
