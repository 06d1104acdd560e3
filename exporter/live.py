"""The live configuration and its one owner: the exporter config and the web config.

SIGHUP, POST /-/reload and the web-config watcher all reload through here. A
file is loaded and validated first; only then, under the one lock, is it
swapped in together with the running state beside it (the web config's rate
limit bucket and verified passwords, `exporter.gate`), and the config
generation moves on. Each outcome is reported once: the reload gauges (in
`Stats`) and one log line. A bad file changes nothing that runs.

Readers take `current` once and use that snapshot throughout, so one request
or one probe never mixes two configs.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from exporter import config as config_module
from exporter.config import Config, ConfigError
from exporter.config.strict import unexpected
from exporter.config.webconfig import WebConfig, signature
from exporter.config.webconfig import load as load_web_config
from exporter.gate import Gate
from exporter.stats import Stats

logger = logging.getLogger("dicom_exporter")
web_logger = logging.getLogger("dicom_exporter.http")  # as the web config's lines always were
WEB_CONFIG_POLL = 2.0
BUILT_IN = "no configuration file to reload (built-in configuration)"


@dataclass(frozen=True)
class Current:
    """One consistent view of what runs: both configs, the gate, the generation."""

    config: Config
    web: WebConfig
    gate: Gate
    # Moves on with every swap of the exporter config: a probe started under an
    # older one reports about a config that no longer runs.
    generation: int


def refusal(running: WebConfig, new: WebConfig) -> str | None:
    """Why a reload may not apply `new` over `running`, or None: fail closed.

    An empty file (truncated by an editor's crash or a failed config-management
    run) and a file that drops TLS, client-certificate checks or basic auth
    would leave the exporter open until someone noticed; a change of scheme
    breaks every scraper. Each takes a restart with the new file instead.
    """
    why = None
    if new.empty:
        why = "the file is empty"
    elif running.ssl_context is not None and new.ssl_context is None:
        why = "it turns TLS off"
    elif running.ssl_context is None and new.ssl_context is not None:
        why = "it turns TLS on, which changes the listener's scheme"
    elif running.users and not new.users:
        why = "it turns basic auth off"
    elif (running.ssl_context is not None and new.ssl_context is not None
          and new.ssl_context.verify_mode < running.ssl_context.verify_mode):
        why = "it stops requiring or checking client certificates"
    elif running.allowed_sans and not new.allowed_sans:
        why = "it drops client_allowed_sans"
    if why is None:
        return None
    return (f"document: refused at reload: {why}; the running TLS and users stay "
            "(to apply it, restart with the new file)")


class Live:
    """The holder of the live configuration: loads, validates, swaps, reports."""

    def __init__(self, config: Config, config_path: str | None, stats: Stats,
                 on_config: Callable[[Config], None] | None = None) -> None:
        """`on_config` runs under the lock after each swap of the exporter config,
        for state that follows it (the store memory's peers)."""
        self.config_path = config_path
        self._stats = stats
        self._on_config = on_config
        # One reload at a time, whichever file and whoever asks (SIGHUP, POST
        # /-/reload, the watcher): an older read must not replace a newer one,
        # nor its gauge outlast it.
        self._lock = threading.Lock()
        web = WebConfig()
        self.current = Current(config, web, Gate(web), 1)
        stats.configured(config, 1)

    @property
    def config(self) -> Config:
        return self.current.config

    @property
    def web(self) -> WebConfig:
        return self.current.web

    @property
    def generation(self) -> int:
        return self.current.generation

    def serve_web(self, web: WebConfig) -> None:
        """The web config the HTTP server starts with: not a reload, nothing reported."""
        with self._lock:
            self.current = dataclasses.replace(self.current, web=web, gate=Gate(web))

    def reload(self) -> str | None:
        """Both files, as SIGHUP and POST /-/reload ask: None, or the problems,
        one per line. Built in (the demo): only the web config, if it has a file."""
        with self._lock:
            problems = []
            if self.config_path is not None or self.current.web.source is None:
                problems.append(self._reload_config())
            if self.current.web.source is not None:
                problems.append(self._reload_web(self.current.web.source))
            return "\n".join(p for p in problems if p) or None

    def reload_web(self) -> str | None:
        """The web config file only (the watcher): None, or the problems."""
        with self._lock:
            source = self.current.web.source
            return self._reload_web(source) if source is not None else None

    def _reload_config(self) -> str | None:
        path = self.config_path
        if path is None:
            return BUILT_IN
        try:
            new = config_module.load(path)
        except ConfigError as exc:
            return self._failed(logger, "config reload failed, keeping the running config",
                                exc.problems, self._stats.reload_failed)
        except Exception as exc:  # a reader bug must not take the exporter down
            return self._failed(logger, "config reload failed, keeping the running config",
                                [unexpected(path, exc)], self._stats.reload_failed)
        running = self.current
        self.current = dataclasses.replace(running, config=new,
                                           generation=running.generation + 1)
        self._stats.configured(new, self.current.generation)
        if self._on_config is not None:
            self._on_config(new)
        logger.info("config reloaded", extra={"fields": {
            "file": path, "targets": len(new.targets), "modules": len(new.modules),
            "generation": self.current.generation}})
        return None

    def _reload_web(self, path: str) -> str | None:
        """New connections use the new TLS context and users at once; open ones
        keep theirs, as the toolkit does."""
        try:
            new = load_web_config(path)
        except ConfigError as exc:
            problems = exc.problems
        except Exception as exc:  # a reader bug must not take the watcher or a reload down
            problems = [unexpected(path, exc)]
        else:
            problems = []
        if problems:
            return self._failed(web_logger, "web config reload failed, keeping the running one",
                                problems, lambda: self._stats.web_reloaded(False))
        running = self.current
        refused = refusal(running.web, new)
        if refused is not None:
            return self._failed(web_logger, "web config reload refused, keeping the running one",
                                [f"{path}: {refused}"],
                                lambda: self._stats.web_reloaded(False))
        for text in new.warnings:
            if text not in running.web.warnings:
                web_logger.warning("web config feature not available", extra={"fields": {
                    "detail": text}})
        self.current = dataclasses.replace(running, web=new, gate=Gate(new, running.gate))
        self._stats.web_reloaded(True)
        web_logger.info("web config reloaded", extra={"fields": {"file": path}})
        return None

    @staticmethod
    def _failed(log: logging.Logger, message: str, problems: list[str],
                gauge: Callable[[], None]) -> str:
        gauge()
        for problem in problems:
            log.error(message, extra={"fields": {"problem": problem}})
        return "\n".join(problems)

    def watch_web(self, stop: threading.Event,
                  interval: float = WEB_CONFIG_POLL) -> threading.Thread:
        """Re-read the web config when it or a certificate, key or CA it names
        changes, so a rotated certificate is served without a restart."""
        # Taken now, not when the thread first runs: a change made right after this
        # call returns is a change.
        seen = signature(self.current.web)

        def loop() -> None:
            nonlocal seen
            while not stop.wait(interval):
                try:
                    now = signature(self.current.web)
                    if now != seen:
                        self.reload_web()
                        # What was seen before reading, not after: a file still being
                        # written while it was read (truncated, then filled) is read
                        # again next turn, not taken as done. A config that names
                        # other files costs one more reload.
                        seen = now
                except Exception:  # a bug costs a log line, never the rotation watch
                    web_logger.exception("web config watch failed; watching on")

        thread = threading.Thread(target=loop, name="web-config-watch", daemon=True)
        thread.start()
        return thread
