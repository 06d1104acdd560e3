"""The monitoring config and the exporter config, read once for the generators.

The generators (`rules`, `dashboards`) take every selector, threshold and
wait from here, and every site name and role from the exporter config, so
none writes a value of its own. The shipped monitoring config
(`exporter/monitoring/config.yml`, package data) is the default; a site may
pass its own.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import holidays as holiday_library
import yaml

from exporter.config import Config, ConfigError
from exporter.config.prober_kinds import selector
from exporter.config.strict import read_file
from exporter.metrics import WEB_INFO
from exporter.routine.words import ALERT

# The shipped monitoring config: installed with the package, so an installed
# program can generate without a checkout.
CONFIG = Path(__file__).resolve().parent / "config.yml"


@dataclass(frozen=True)
class Holidays:
    """The span of the holiday calendar, anchored in the config, never in today's date."""

    country: str
    categories: tuple[str, ...]
    start_year: int
    years: int
    extra_days: tuple[tuple[datetime.date, str], ...]  # bridge days, local agreements
    warn_before: str

    @property
    def span(self) -> range:
        return range(self.start_year, self.start_year + self.years)


@dataclass(frozen=True)
class Alertmanager:
    """The `alertmanager:` section: receivers, who gets what, waits, office hours."""

    global_: dict[str, Any]
    route_to: dict[str, str]
    waits: dict[str, str]  # group_wait, group_interval, ... as written
    location: str
    office_hours: dict[str, Any]
    holidays: Holidays
    receivers: list[dict[str, Any]]


ROUTE_TO = ("staff_office_hours", "staff_other_hours", "critical", "default", "watchdog")
WAITS = ("group_wait", "group_interval", "repeat_interval", "page_group_interval",
         "page_repeat_interval")


@dataclass(frozen=True)
class Prometheus:
    exporters: tuple[str, ...]
    alertmanagers: tuple[str, ...]
    scrape_timeout: str
    url: str


@dataclass(frozen=True)
class Grafana:
    datasource_uid: str
    datasource_name: str
    folder: str
    dashboards_path: str


# Alerts that no exporter reports (no `instance` label of an exporter): their
# runbook link cannot be the reporting exporter's own.
WITHOUT_INSTANCE = tuple(ALERT[name] for name in ("exporter_down", "watchdog", "holiday_calendar"))


@dataclass(frozen=True)
class Monitoring:
    probe_job: str
    link_computer_probe_job: str
    exporter_job: str
    runbook_base_url: str
    runbook_static_base_url: str
    for_by_role: dict[str, str]
    probe_interval_by_role: dict[str, str]
    evaluation_interval: str
    waits: dict[str, str]
    thresholds: dict[str, float | int | str]
    site_names: dict[str, str]  # site key -> name as the staff say it
    roles: tuple[str, ...]  # roles the exporter config's targets have
    alertmanager: Alertmanager
    prometheus: Prometheus
    grafana: Grafana
    slo_objectives: dict[str, float]  # role -> availability objective over 30 days
    # AE titles of the link computers ("Z97117", "Z83680"), as the dashboards name them.
    link_computer_titles: tuple[str, ...] = ()

    # -- selectors -------------------------------------------------------
    @property
    def probe(self) -> str:
        """Every probe series, whichever job (cadence) scraped it."""
        return f'job=~"{self.probe_job}|{self.link_computer_probe_job}"'

    @property
    def exporter(self) -> str:
        return f'job="{self.exporter_job}"'

    # Which probers say what, from the one table of prober kinds.
    @property
    def reachability(self) -> str:
        return f'prober=~"{selector("answers_reachability")}"'

    @property
    def beyond_reachability(self) -> str:
        """The probers the link computers' fast job leaves to the partners' job."""
        return f'prober!~"{selector("answers_reachability")}"'

    @property
    def receiving(self) -> str:
        return f'prober=~"{selector("checks_receiving")}"'

    echo = 'prober="echo"'
    link_computers = 'role="link_computer", direction!="receive"'
    # Receive-side probes: our link computers called with a partner's AE title.
    receive = 'direction="receive"'
    partners = 'role=~"partner|relay"'

    def wait(self, name: str) -> str:
        return self.waits[name]

    def runbook(self, name: str, with_instance: bool = True) -> str:
        """The runbook_url template of alert `name`.

        A configured base wins. Otherwise the external URL the exporter
        publishes (dicom_exporter_web_info), so the link is https when the
        exporter is: the reporting exporter's (`with_instance`), else any
        other exporter that still answers, so an alert about a lost exporter
        never links to it. An exporter that publishes no URL yet is reached
        at http://instance; with no other exporter answering (one site), the
        static base. Every link is absolute (`load` refuses a config where
        one would not be).
        """
        if self.runbook_base_url:
            return f"{self.runbook_base_url.rstrip('/')}/runbooks/{name}"
        static = f"{self.runbook_static_base_url.rstrip('/')}/runbooks/{name}"
        job = self.exporter.replace('"', '\\"')

        def lookup(match: str) -> str:
            query = f'{WEB_INFO}{{{job}, instance{match}\\"%s\\"}}'
            return (f'{{{{ with printf "{query}" .Labels.instance | query }}}}'
                    '{{ . | first | label "external_url" }}')

        if with_instance:
            return lookup("=") + "{{ else }}http://{{ $labels.instance }}{{ end }}" + (
                f"/runbooks/{name}")
        return lookup("!=") + f"/runbooks/{name}{{{{ else }}}}{static}{{{{ end }}}}"


def load(exporter: Config, path: Path = CONFIG) -> Monitoring:
    """The monitoring config at `path` for the targets and sites of `exporter`.

    Problems are a ConfigError of one line naming the file and the field.
    """
    try:
        return _read(exporter, path, yaml.safe_load(read_file(path)))
    except KeyError as exc:
        raise ConfigError([f"{path}: {exc.args[0]}: missing"]) from None
    except (TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        why = " ".join(str(exc).split())
        raise ConfigError([f"{path}: {why}"]) from None


def _read(exporter: Config, path: Path, raw: Any) -> Monitoring:
    problem = runbook_links_problem(path)
    if problem:
        raise ConfigError([problem])
    roles = tuple(sorted({t.labels["role"] for t in exporter.targets.values()}))
    missing = set(roles) - set(raw["for_by_role"])
    if missing:
        raise ConfigError([f"{path}: for_by_role: no wait for role(s) "
                           f"{', '.join(sorted(missing))}"])
    return Monitoring(
        probe_job=raw["jobs"]["probe"],
        link_computer_probe_job=raw["jobs"]["link_computer_probe"],
        exporter_job=raw["jobs"]["exporter"],
        runbook_base_url=_absolute_url(path, raw, "runbook_base_url"),
        runbook_static_base_url=_absolute_url(path, raw, "runbook_static_base_url"),
        for_by_role=dict(raw["for_by_role"]),
        probe_interval_by_role=dict(raw["probe_interval_by_role"]),
        evaluation_interval=raw["evaluation_interval"],
        waits=dict(raw["for"]),
        thresholds=dict(raw["thresholds"]),
        site_names={key: site.name for key, site in exporter.sites.items()},
        roles=roles,
        alertmanager=_alertmanager(path, raw["alertmanager"]),
        prometheus=Prometheus(
            exporters=tuple(raw["prometheus"]["exporters"]),
            alertmanagers=tuple(raw["prometheus"]["alertmanagers"]),
            scrape_timeout=str(raw["prometheus"]["scrape_timeout"]),
            url=str(raw["prometheus"]["url"]),
        ),
        grafana=Grafana(**{key: str(raw["grafana"][key]) for key in (
            "datasource_uid", "datasource_name", "folder", "dashboards_path")}),
        slo_objectives=_objectives(path, raw.get("slo_objective_by_role") or {}),
        link_computer_titles=tuple(
            t.ae_title for t in exporter.targets.values()
            if t.labels.get("role") == "link_computer" and t.labels.get("direction") != "receive"),
    )


def _absolute_url(path: Path, raw: dict[str, Any], key: str) -> str:
    """An http(s) URL with a host, or empty; else one line naming the field."""
    value = raw.get(key) or ""
    if value and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", str(value)):
        raise ConfigError([f"{path}: {key}: {value!r} is not an absolute http(s) URL"])
    return str(value)


def runbook_links_problem(path: Path = CONFIG) -> str | None:
    """The one line saying a runbook link would be relative (or the file is bad), or None.

    With neither a runbook_base_url nor a runbook_static_base_url, an alert
    that no exporter reports (WITHOUT_INSTANCE) links to a bare path when no
    other exporter answers: always, with one site. Needs no exporter config,
    so `check-config` asks it of the monitoring config too.
    """
    try:
        raw = yaml.safe_load(read_file(path))
        if not isinstance(raw, dict):
            return f"{path}: document: must be a mapping"
        _absolute_url(path, raw, "runbook_base_url")
        _absolute_url(path, raw, "runbook_static_base_url")
    except ConfigError as exc:
        return exc.problems[0]
    except yaml.YAMLError as exc:
        return f"{path}: {' '.join(str(exc).split())}"
    if raw.get("runbook_base_url") or raw.get("runbook_static_base_url"):
        return None
    return (f"{path}: runbook_static_base_url: empty while runbook_base_url is empty too: "
            f"the runbook_url of {', '.join(WITHOUT_INSTANCE)} would be relative when no "
            "other exporter answers (one site); set either to an absolute http(s) URL")


def _alertmanager(path: Path, raw: dict[str, Any]) -> Alertmanager:
    receivers = list(raw["receivers"])
    names = {receiver["name"] for receiver in receivers}
    route_to = {key: str(raw["route_to"][key]) for key in ROUTE_TO}
    for key, name in route_to.items():
        if name not in names:
            raise ConfigError([f"{path}: alertmanager.route_to.{key}: no receiver named "
                               f"{name!r} in alertmanager.receivers"])
    days = raw["holidays"]
    extra = []
    for index, day in enumerate(days.get("extra_days") or []):
        if not isinstance(day, dict) or not isinstance(day.get("date"), datetime.date):
            raise ConfigError([f"{path}: alertmanager.holidays.extra_days[{index}]: must be "
                               "{date: YYYY-MM-DD, name: ...}"])
        extra.append((day["date"], str(day.get("name") or "")))
    try:
        holiday_library.country_holidays(str(days["country"]),
                                         categories=tuple(days["categories"]))
    except (NotImplementedError, ValueError, KeyError) as exc:
        raise ConfigError([f"{path}: alertmanager.holidays: country {days['country']!r} "
                           f"with categories {days['categories']}: "
                           f"{' '.join(str(exc).split()) or 'not known'}"]) from None
    years = int(days["years"])
    if years < 1:
        raise ConfigError([f"{path}: alertmanager.holidays.years: must be at least 1"])
    return Alertmanager(
        global_=dict(raw["global"]),
        route_to=route_to,
        waits={key: str(raw[key]) for key in WAITS},
        location=str(raw["location"]),
        office_hours=dict(raw["office_hours"]),
        holidays=Holidays(
            country=str(days["country"]),
            categories=tuple(days["categories"]),
            start_year=int(days["start_year"]),
            years=years,
            extra_days=tuple(sorted(extra)),
            warn_before=str(days["warn_before"]),
        ),
        receivers=receivers,
    )


def _objectives(path: Path, raw: dict[str, Any]) -> dict[str, float]:
    """slo_objective_by_role: a ratio strictly between 0 and 1 per role."""
    out = {}
    for role, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ConfigError([f"{path}: slo_objective_by_role: {role}: {value!r} is not a "
                               "ratio between 0 and 1 (e.g. 0.999)"])
        out[str(role)] = float(value)
    return out
