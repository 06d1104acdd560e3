#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, lints
# (ruff, mypy), checks the generated files, then runs pytest in two parts:
# the fast subset with the external programs hidden from PATH (proving it
# needs none of them), then the slow tests that start Orthanc, dcmtk,
# Prometheus, Alertmanager and Chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check exporter tests benchmarks alerts tools
.venv/bin/mypy
.venv/bin/python -m tools.generate --check
fast_path="$(bash scripts/hide-programs.sh)"
trap 'rm -rf "$fast_path"' EXIT
# Three workers on two cores: many fast tests wait out a timeout, and a third
# worker runs while they wait.
PATH="$fast_path" .venv/bin/python -m pytest -m "not slow" -n 3 "$@"
.venv/bin/python -m pytest -m slow "$@"
