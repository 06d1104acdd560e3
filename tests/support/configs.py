"""Configs for tests, built through the real parser."""

from __future__ import annotations

from typing import Any

import yaml

from exporter import config as config_module
from exporter.config import Config
from tests.support.loopback import LOOPBACK, MONITOR_AE


def make_config(
    targets: dict[str, dict[str, Any]], modules: dict[str, dict[str, Any]] | None = None,
    source: str = "test.yml",
) -> Config:
    """A Config built through the real parser, defaults filled in for brevity."""
    default_modules = {
        "tcp": {"prober": "tcp", "timeout": "2s"},
        "echo": {"prober": "echo", "timeout": "2s", "calling_ae_title": MONITOR_AE},
        "negotiate": {
            "prober": "negotiate", "timeout": "2s", "calling_ae_title": MONITOR_AE,
            "sop_classes": ["CTImageStorage"],
        },
        "store": {
            "prober": "store", "timeout": "5s", "calling_ae_title": MONITOR_AE,
            "min_interval": "1ms",
        },
    }
    document = {"modules": modules or default_modules, "targets": {}}
    for name, target in targets.items():
        document["targets"][name] = {
            "host": LOOPBACK,
            "modules": list(document["modules"]),
            "labels": {"site": "vaxjo", "role": "partner"},
            **target,
        }
    return config_module.parse(yaml.safe_dump(document), source)
