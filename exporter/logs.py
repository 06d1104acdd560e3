"""Log lines in logfmt or JSON, as Prometheus' own programs write them.

Structured fields travel in `extra={"fields": {...}}` so that a failed probe
is one line an administrator can grep for target, module and reason.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys

LEVELS = ("debug", "info", "warn", "error")
FORMATS = ("logfmt", "json")
_NAMES = {"WARNING": "warn", "CRITICAL": "error"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    out: dict[str, object] = {
        "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": _NAMES.get(record.levelname, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    out.update(getattr(record, "fields", {}))
    if record.exc_info:
        out["err"] = logging.Formatter().formatException(record.exc_info)
    return out


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(ch in text for ch in ' ="\n\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


def setup(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": logging.WARNING}.get(level, level.upper()))
    # pynetdicom logs every association of the demo's simulated peers at INFO.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
