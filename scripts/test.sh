#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, then
# runs ruff and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check exporter tests benchmarks alerts tools grafana monitoring
.venv/bin/python -m pytest "$@"
