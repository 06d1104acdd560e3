"""The `dicom-exporter` command: serve, check-config, probe, demo, routes, report.

Flags are spelled as in Prometheus' own programs (--config.file,
--web.listen-address, --log.level) so the exporter reads like its neighbours
in a systemd unit.
"""

from __future__ import annotations

# First, before the standard library's and click's imports: until this has run,
# a SIGHUP (`systemctl reload` right after start) ends the process.
import exporter.sighup as startup_sighup

# isort: split
import contextlib
import logging
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click

from exporter import __version__, buildinfo, heap, logs, notify, route_state, routine
from exporter import config as config_module
from exporter.app import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_PER_TARGET,
    Exporter,
    ProbeLimits,
    UnknownProbe,
)
from exporter.config import Config, ConfigError, webconfig
from exporter.config.prober_kinds import PHASES
from exporter.config.strict import parse_duration
from exporter.config.webconfig import WebConfig
from exporter.dicom.listener import DEFAULT_MAX_ASSOCIATIONS
from exporter.listening import ListenerError, start_listener
from exporter.monitoring import pack
from exporter.monitoring import settings as monitoring_settings
from exporter.probers.report import ProbeReport
from exporter.probers.statefile import default_path as default_state_file
from exporter.schedule import DEFAULT_WORKERS, Scheduler, SchedulerDied
from exporter.web.oncall import route_title
from exporter.web.server import (
    DEFAULT_LISTEN,
    Address,
    ExtraEndpoint,
    ListenError,
    check_external_url,
    parse_listen_address,
    start,
)

T = TypeVar("T")
SHUTDOWN_GRACE = 2.0


log = logging.getLogger("dicom_exporter")


def _or_exit(load: Callable[[str], T], path: str, logged: bool = False) -> T:
    """Load a file, or name every problem in it and exit 1: no traceback.

    `logged`: as structured log lines (serve), else plain lines (check-config, probe).
    """
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            if logged:
                log.error("cannot load configuration", extra={"fields": {"problem": problem}})
            else:
                click.echo(problem, err=True)
        raise SystemExit(1) from None


def _load(path: str) -> Config:
    return _or_exit(config_module.load, path)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value) if value not in ("0", "") else 0.0
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _addresses(ctx: click.Context, param: click.Parameter,
               value: tuple[str, ...]) -> list[Address]:
    try:
        return [parse_listen_address(each) for each in value]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _dicom_address(ctx: click.Context, param: click.Parameter,
                   value: str | None) -> Address | None:
    return _addresses(ctx, param, (value,))[0] if value else None


def _log_flag(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # After the subcommand too (`serve --log.level debug`), as Go exporters accept them.
    if value is not None:
        logs.setup(**{str(param.name): value})
    return value


def log_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option("--log.level", "level", type=click.Choice(logs.LEVELS),
                           default=None, expose_value=False, callback=_log_flag,
                           is_eager=True, help="Only log messages with this severity or above "
                           "(default info).")(command)
    return click.option("--log.format", "fmt", type=click.Choice(logs.FORMATS), default=None,
                        expose_value=False, callback=_log_flag, is_eager=True,
                        help="Output format of log messages (default logfmt).")(command)


def _external_url(ctx: click.Context, param: click.Parameter, value: str | None
                  ) -> str | None:
    try:
        return check_external_url(value) if value else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(buildinfo.version_text())
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version,
              help="Show version, revision, branch, build user and date, and exit.")
@click.option("--log.level", "log_level", type=click.Choice(logs.LEVELS), default="info",
              show_default=True, help="Only log messages with this severity or above.")
@click.option("--log.format", "log_format", type=click.Choice(logs.FORMATS), default="logfmt",
              show_default=True, help="Output format of log messages.")
def main(log_level: str, log_format: str) -> None:
    """Prometheus exporter for DICOM transfer between hospitals."""
    # Before any file is read: the unit's `nohup` ignored SIGHUP until now.
    startup_sighup.take_over_ignored()
    logs.setup(log_level, log_format)


def _raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit, as Go programs do at start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def _serve_until_signalled(
    exporter: Exporter, addresses: list[Address], interval: float,
    extra_endpoints: dict[str, ExtraEndpoint] | None = None,
    web: WebConfig | None = None, external_url: str | None = None,
    route_prefix: str | None = None,
    workers: int = DEFAULT_WORKERS,
) -> None:
    stop = threading.Event()
    died: list[str] = []  # the schedule's death: fatal, so systemd restarts the exporter

    def schedule_died(why: str) -> None:
        died.append(why)
        stop.set()

    def reload(*_: object) -> None:  # both files, off the signal handler's thread
        threading.Thread(target=server.reload, name="reload", daemon=True).start()

    # Before the port is bound: a SIGTERM as soon as it answers stops us cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server, _ = start(exporter, addresses, extra_endpoints, web,
                          external_url=external_url, route_prefix=route_prefix)
    except ListenError as exc:
        log.error("cannot start", extra={"fields": {"err": str(exc)}})
        raise SystemExit(1) from None
    signal.signal(signal.SIGHUP, reload)
    if startup_sighup.early():  # a SIGHUP came while starting: do what it asked
        reload()
    for text in server.web.warnings:
        log.warning("web config feature not available", extra={"fields": {"detail": text}})
    if server.web.source is not None:  # the --web.config.file, as given
        exporter.live.watch_web(stop)
    scheduler = Scheduler(exporter, interval, workers, schedule_died) if interval > 0 else None
    if scheduler:
        with contextlib.suppress(SchedulerDied):  # on_death has asked to stop
            scheduler.start()
    notify.ready()  # config loaded, listeners bound: systemd may now send reloads
    for url in server.urls:
        log.info("Listening on", extra={"fields": {"address": url, "version": __version__}})
    log.info("connection limits", extra={"fields": {
        "max_connections": server.limits.max_connections, "workers": server.limits.workers,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}})
    trimmer = heap.Trimmer(lambda: server.loop.closed)  # a flood's memory goes back
    try:
        while not stop.wait(0.5):
            trimmer.tick()
    finally:
        if scheduler:
            scheduler.stop()
        server.shutdown()
        aborted = exporter.abort_all()
        grace = time.monotonic() + SHUTDOWN_GRACE
        exporter.wait_idle(SHUTDOWN_GRACE)  # the aborted probes end, their logs get a line
        # ...and their requests an answer: a probe ends before its answer is written.
        server.wait_answered(max(0.0, grace - time.monotonic()))
        server.server_close()
        log.info("stopped", extra={"fields": {"aborted_associations": aborted}})
    if died:
        log.error("exiting: scheduled probing cannot go on", extra={"fields": {
            "error": died[0]}})
        raise SystemExit(1)


def _store_state_option(command: Callable[..., None]) -> Callable[..., None]:
    """--store.state-file: where store probes remember their last real store."""
    return click.option(
        "--store.state-file", "store_state_file", default=default_state_file,
        callback=lambda _ctx, _param, value: value or None, type=click.Path(dir_okay=False),
        help="Remember each store probe's last real store here across restarts, so a "
        "restart stores at most once per min_interval. Default: store-memory.json in "
        "systemd's StateDirectory= ($STATE_DIRECTORY), else none; \"\" for none.")(command)


@main.command()
@click.option("--config.file", "config_file", required=True, type=click.Path(dir_okay=False),
              help="The YAML configuration (modules and targets).")
@click.option("--web.listen-address", "addresses", default=[DEFAULT_LISTEN], multiple=True,
              show_default=True, callback=_addresses,
              help="Address to listen on, host:port; repeat for several. An empty host "
              "listens on every IPv6 and IPv4 address, [::1]:port is IPv6.")
@click.option("--probe.interval", "interval", default="0", callback=_duration,
              help="Also probe every target on this interval (e.g. 30s); 0 = only on /probe.")
@click.option("--web.config.file", "web_config_file", default=None,
              type=click.Path(dir_okay=False),
              help="TLS and basic auth, in the Prometheus exporter-toolkit format.")
@click.option("--probe.max-concurrent", "max_concurrent", default=DEFAULT_MAX_CONCURRENT,
              show_default=True, type=click.IntRange(1),
              help="Probes at once; more are answered 503.")
@click.option("--probe.max-per-target", "max_per_target", default=DEFAULT_MAX_PER_TARGET,
              show_default=True, type=click.IntRange(1),
              help="Probes of one host and port at once; more are answered 429.")
@click.option("--web.external-url", "external_url", default=None, callback=_external_url,
              help="URL people reach this exporter at; alert rules link to its runbooks. "
                   "Default: http(s)://<host name>:<port>.")
@click.option("--web.route-prefix", "route_prefix", default=None,
              help="Path every endpoint is served under. Default: the path of "
                   "--web.external-url (e.g. /dicom), or none.")
@click.option("--probe.workers", "workers", default=DEFAULT_WORKERS, show_default=True,
              type=click.IntRange(1, 256),
              help="Threads that run --probe.interval's probes, whatever the number of "
                   "targets; a round they cannot finish in time is counted as late.")
@click.option("--dicom.listen-address", "dicom_address", default=None,
              callback=_dicom_address,
              help="Also accept Storage Commitment reports (verify: commit) on this host:port "
                   "from the configured peers only. Default: no DICOM listener.")
@click.option("--dicom.max-associations", "dicom_associations",
              default=DEFAULT_MAX_ASSOCIATIONS, show_default=True, type=click.IntRange(1, 256),
              help="Associations the DICOM listener serves at once; more are rejected.")
@_store_state_option
@log_options
def serve(config_file: str, addresses: list[Address], interval: float,
          web_config_file: str | None, max_concurrent: int, max_per_target: int,
          external_url: str | None, route_prefix: str | None, workers: int,
          dicom_address: Address | None,
          dicom_associations: int, store_state_file: str | None) -> None:
    """Serve /probe, /metrics and /sd."""
    _raise_fd_limit()
    web = _or_exit(webconfig.load, web_config_file, logged=True) if web_config_file else None
    exporter = Exporter(_or_exit(config_module.load, config_file, logged=True), config_file,
                        ProbeLimits(max_concurrent, max_per_target), store_state_file)
    try:
        listener = start_listener(exporter, dicom_address, dicom_associations)
    except ListenerError as exc:
        log.error("cannot start", extra={"fields": {"err": str(exc)}})
        raise SystemExit(1) from None
    try:
        _serve_until_signalled(exporter, addresses, interval, web=web,
                               external_url=external_url, workers=workers,
                               route_prefix=route_prefix)
    finally:
        if listener is not None:
            listener.stop()


@main.command("check-config")
@click.argument("positional_config", metavar="[CONFIG_FILE]", required=False, default=None,
                type=click.Path(dir_okay=False))
@click.option("--config.file", "option_config", default=None, type=click.Path(dir_okay=False),
              help="The configuration file to check (a bare CONFIG_FILE argument works too).")
@click.option("--web.config.file", "web_config_file", default=None,
              type=click.Path(dir_okay=False),
              help="Check this web config file (TLS, basic auth) as well.")
@click.option("--monitoring.file", "monitoring_file", default=None,
              type=click.Path(dir_okay=False),
              help="The monitoring config whose runbook links to check (default: the shipped "
                   "one); given, it is checked against the config in full.")
@log_options
def check_config(positional_config: str | None, option_config: str | None,
                 web_config_file: str | None, monitoring_file: str | None) -> None:
    """Validate a configuration file (and a web config file, and the runbook links of
    the monitoring config); exit 1 listing every problem.

    --config.file as in every other subcommand; the positional form is kept
    because units and scripts written before call it so."""
    if positional_config and option_config and positional_config != option_config:
        raise click.UsageError("give the config file once: --config.file or CONFIG_FILE")
    config_file = option_config or positional_config
    if not config_file:
        raise click.UsageError("missing --config.file")
    problems: list[str] = []
    config: Config | None = None
    try:
        config = config_module.load(config_file)
    except ConfigError as exc:
        problems += exc.problems
    if web_config_file:
        try:
            webconfig.load(web_config_file)
        except ConfigError as exc:
            problems += exc.problems
    monitoring_path = Path(monitoring_file) if monitoring_file else monitoring_settings.CONFIG
    link_problem = monitoring_settings.runbook_links_problem(monitoring_path)
    if link_problem:
        problems.append(link_problem)
    elif monitoring_file and config is not None:
        try:
            pack.load(config, monitoring_path)
        except ConfigError as exc:
            problems += exc.problems
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(1)
    assert config is not None  # no problems: it loaded
    for note in config_module.notes(config):
        click.echo(note)
    pairs = sum(len(t.modules) for t in config.targets.values())
    click.echo(
        f"{config_file}: OK: {len(config.modules)} modules, {len(config.targets)} targets, "
        f"{pairs} probes"
    )
    if web_config_file:
        click.echo(f"{web_config_file}: OK")
    if monitoring_file:
        click.echo(f"{monitoring_file}: OK")


@main.group()
def monitoring() -> None:
    """The monitoring pack of a config: alert rules and their tests, Alertmanager and
    Prometheus configs, Grafana dashboards and provisioning, runbooks."""


@monitoring.command("generate")
@click.option("--config.file", "config_file", required=True, type=click.Path(dir_okay=False),
              help="The exporter config whose sites, targets and routine the pack names.")
@click.option("--monitoring.file", "monitoring_file", default=None,
              type=click.Path(dir_okay=False),
              help="Selectors, thresholds and waits (default: the shipped monitoring config).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="The folder to write into (alerts/, grafana/ below it).")
def monitoring_generate(config_file: str, monitoring_file: str | None, out: str) -> None:
    """Write the monitoring pack for a config; only files that change are written."""
    config = _load(config_file)
    source = monitoring_file or str(monitoring_settings.CONFIG)
    m = _or_exit(lambda path: pack.load(config, Path(path)), source)
    written = pack.write(Path(out), pack.generate(m, config))
    for relative in written:
        click.echo(f"wrote {Path(out) / relative}")
    click.echo(f"{out}: {len(written)} files written, the others unchanged")


def _print_report(report: ProbeReport, debug: bool, config: Config) -> None:
    target, module = report.context.target, report.context.module
    click.echo(f"target    {target.name} ({target.ae_title} at {target.host}:{target.port})")
    click.echo(f"module    {module.name} ({module.prober})")
    if report.success:
        click.echo("result    OK")
    else:
        reason = report.reason
        click.echo(f"result    FAILED: {reason.value if reason else '?'} ({report.detail})")
        if reason is not None:
            for line in routine.cli_lines(config, target, module.name, reason,
                                          getattr(report, "failed_phase", None)):
                click.echo(line)
    if report.result_age is not None:
        click.echo(f"repeat    repeat of the store {report.result_age:.0f} s ago (min_interval "
                   f"{module.min_interval:g} s): its result and phases")
    if report.status is not None:
        click.echo(f"status    0x{report.status:04X}")
    phases = "  ".join(
        f"{phase} {report.phases[phase] * 1000:.3f} ms"
        for phase in PHASES
        if phase in report.phases
    )
    click.echo(f"phases    {phases or '-'}")
    click.echo(f"duration  {report.duration * 1000:.3f} ms")
    if debug:
        click.echo("log")
        for line in report.context.log:
            click.echo(f"  {line}")


@main.command()
@click.option("--config.file", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--module", "module_name", default=None,
              help="Probe with this module only (default: every module of the target).")
@click.option("--debug", is_flag=True, help="Print the probe's log.")
@click.option("--dicom.listen-address", "dicom_address", default=None,
              callback=_dicom_address,
              help="Receive Storage Commitment reports on this host:port while probing "
                   "(verify: commit against a peer that reports on a new association).")
@click.argument("target")
@_store_state_option
@log_options
def probe(config_file: str, module_name: str | None, debug: bool,
          dicom_address: Address | None, target: str, store_state_file: str | None) -> None:
    """Probe TARGET once and explain the result; exit 1 if any probe failed."""
    exporter = Exporter(_load(config_file), config_file, store_state_file=store_state_file)
    config = exporter.config
    if target not in config.targets:
        click.echo(f"unknown target {target!r}; configured: {', '.join(config.targets)}", err=True)
        raise SystemExit(2)
    modules = [module_name] if module_name else list(config.targets[target].modules)
    try:
        listener = (start_listener(exporter, dicom_address, DEFAULT_MAX_ASSOCIATIONS)
                    if dicom_address else None)
    except ListenerError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    ok = True
    try:
        for index, name in enumerate(modules):
            if index:
                click.echo()
            try:
                report = exporter.probe(target, name, log=debug)
            except UnknownProbe as exc:
                click.echo(str(exc), err=True)
                raise SystemExit(2) from None
            _print_report(report, debug, config)
            ok = ok and report.success
    finally:
        if listener is not None:
            listener.stop()
    raise SystemExit(0 if ok else 1)


@main.command()
@click.option("--web.listen-address", "addresses", default=["127.0.0.1:10104"],
              multiple=True, show_default=True, callback=_addresses)
@click.option("--down", "down", multiple=True, metavar="TARGET",
              help="Start with this simulated peer down (repeatable).")
@click.option("--probe.interval", "interval", default="10s", callback=_duration,
              show_default=True, help="How often the demo probes every target itself.")
@log_options
def demo(addresses: list[Address], down: tuple[str, ...], interval: float) -> None:
    """Run the exporter against simulated Kronoberg peers on 127.0.0.1."""
    from exporter.demo.embedded import Demo, peer_switch

    simulation = Demo.start()
    try:
        for name in down:
            try:
                simulation.peers.set_state(name, "down")
            except KeyError:
                click.echo(f"no simulated peer {name!r}", err=True)
                raise SystemExit(2) from None
        exporter = Exporter(simulation.config)
        host, port = addresses[0]
        base = f"http://{host or '127.0.0.1'}:{port}"
        click.echo("Simulated peers on 127.0.0.1:")
        for name, peer in simulation.peers.peers.items():
            click.echo(f"  {name:<14} {peer.ae_title:<16} port {peer.port}  {peer.state}")
        click.echo(f"""
Exporter:         {base}/
Probe one:        curl '{base}/probe?target=z97117&module=echo'
Explain a probe:  curl '{base}/probe?target=z97117&module=echo&debug=true'
Own metrics:      curl {base}/metrics
Switch a peer:    curl -X POST '{base}/demo/peers/skane?state=down'   (up|down|reject)
                  or open {base}/demo
Stop with Ctrl-C.
""")
        sys.stdout.flush()
        switch = {"/demo": peer_switch(simulation.peers)}
        _serve_until_signalled(exporter, addresses, interval, switch)
    finally:
        simulation.stop()


@main.command()
@click.option("--config.file", "config_file", required=True, type=click.Path(dir_okay=False))
@log_options
def routes(config_file: str) -> None:
    """Probe every hop once and print which way each route goes now.

    Exit 1 when some route has no open path (the routine's last resort).
    """
    exporter = Exporter(_load(config_file), config_file)
    config = exporter.config
    hops = {hop for route in config.routes.values() for path in route.paths for hop in path.hops}
    pairs = [(hop, module) for hop in sorted(hops) for module in config.targets[hop].modules]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda pair: exporter.probe(*pair), pairs))
    states = route_state.current(config, exporter.stats.snapshot(), time.time())
    for line in route_table(config, states):
        click.echo(line)
    raise SystemExit(1 if any(s.status is route_state.RouteStatus.NONE for s in states) else 0)


def route_table(config: Config, states: list[route_state.RouteState]) -> list[str]:
    """The route table in Swedish, aligned for a terminal."""
    lines = []
    for state in states:
        route = state.route
        lines.append(f"{route_title(config, route)}: {state.advice}")
        width = max(len(p.path.name) for p in state.paths)
        for path in state.paths:
            hops = route_state.hops_text(config, path)
            assumed = (f" ({routine.words.ASSUMED}: {path.path.assumed})"
                       if path.path.assumed else "")
            mark = "*" if state.active is path else " "
            lines.append(f"  {mark} {path.path.name:<{width}}  "
                         f"{route_state.SWEDISH_STATE[path.state]:<7} {hops}{assumed}")
        lines.append(f"    {routine.words.LAST_RESORT:<{width}}  {routine.own(route.last_resort)}")
        lines.append("")
    return lines


@main.command()
@click.option("--prometheus.url", "url", required=True,
              help="The Prometheus that holds the probes' history, e.g. http://localhost:9090.")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First day of the period (Europe/Stockholm), e.g. 2026-11-01.")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Day after the period's last, e.g. 2026-12-01: [from, to).")
@click.option("--format", "output_format", type=click.Choice(["md", "html", "json"]),
              default="md",
              show_default=True, help="Markdown, HTML with a chart per target, or JSON.")
@click.option("--config.file", "config_file", required=True, type=click.Path(dir_okay=False),
              help="The exporter's YAML configuration (site and region names).")
@click.option("--monitoring.file", "monitoring_file", default=None,
              type=click.Path(dir_okay=False),
              help="The monitoring config (waits per role); default: the shipped one.")
@log_options
def report(url: str, start: datetime, end: datetime, output_format: str, config_file: str,
           monitoring_file: str | None) -> None:
    """Availability, outages and store success per link computer and partner over a
    period, from Prometheus' raw probe samples (IT operations' monthly report)."""
    from exporter.availability import monthly
    try:
        click.echo(monthly.run(url, start.date(), end.date(), output_format, config_file,
                               monitoring_file), nl=False)
    except monthly.ReportError as exc:
        click.echo(f"report: {exc}", err=True)
        raise SystemExit(1) from None
