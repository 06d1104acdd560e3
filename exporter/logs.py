"""Log lines in logfmt or JSON, as Prometheus' own programs write them.

Structured fields travel in `extra={"fields": {...}}` so that a failed probe
is one line an administrator can grep for target, module and reason.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
from types import TracebackType

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


class ThirdParty(logging.Filter):
    """Lines of the libraries we use (pynetdicom above all) at a level that fits us:
    their ERROR is about a peer (an A-ASSOCIATE-RJ it sent), not about the
    exporter, so it is a warning here; our own `error` means our own fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and not record.name.startswith(OURS) and (
                record.name != "root"):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


OURS = "dicom_exporter"
_current = {"level": "info", "format": "logfmt"}


def setup(level: str | None = None, fmt: str | None = None) -> None:
    """Route every log line, and every uncaught exception, through one formatter.

    Either argument may be None to keep what an earlier call chose, so the
    `--log.*` flags may stand before or after the subcommand.
    """
    _current["level"] = level or _current["level"]
    _current["format"] = fmt or _current["format"]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if _current["format"] == "json" else LogfmtFormatter())
    handler.addFilter(ThirdParty())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": logging.WARNING}.get(_current["level"], _current["level"].upper()))
    # pynetdicom logs every association of the demo's simulated peers at INFO.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    threading.excepthook = _thread_exception
    sys.excepthook = _uncaught


def _thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("dicom_exporter").error(
        "uncaught exception in a thread",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"fields": {"thread": thread}})


def _uncaught(kind: type[BaseException], value: BaseException,
              trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, trace)
        return
    logging.getLogger("dicom_exporter").error("uncaught exception",
                                              exc_info=(kind, value, trace))
