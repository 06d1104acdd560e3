"""Regenerates every generated file from the monitoring config and the example exporter config.

    python -m tools.generate           rewrite the files
    python -m tools.generate --check   exit 1 and name the files that are out of date

Generated: the monitoring pack of the example config (exporter/monitoring:
alert rules and their calendar, Alertmanager config, dashboards), the
hand-written promtool unit tests of the
rules (alerts/promtool_cases.py, written for the example config) and the
floor table of docs/architecture.md (tools/architecture.py).
Each file says in its header (or description) what made it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import alerts.promtool_cases
from exporter import config as exporter_config
from exporter.monitoring import pack
from exporter.monitoring.settings import Monitoring
from tools import architecture

ROOT = Path(__file__).resolve().parent.parent
# The exporter config whose monitoring pack the repository carries.
EXAMPLE = ROOT / "examples" / "kronoberg.yml"
PROMTOOL_TESTS = ROOT / "alerts" / "dicom.rules.test.yml"


def example() -> Monitoring:
    """The shipped monitoring settings for the example config."""
    return pack.load(exporter_config.load(str(EXAMPLE)))


def outputs() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    config = exporter_config.load(str(EXAMPLE))
    files = {ROOT / path: text for path, text in pack.generate(pack.load(config), config).items()}
    files[PROMTOOL_TESTS] = alerts.promtool_cases.render()
    files |= architecture.outputs()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a generated file is out of date")
    check = parser.parse_args(argv).check
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if check else "rewrote"
    for path in stale:
        print(f"{verb}: {path.relative_to(ROOT)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
