"""The monitoring config and the exporter config, read once for the generators.

The generators (`rules`, `dashboards`) take every selector, threshold and
wait from here, and every site name and role from the exporter config, so
none writes a value of its own. The shipped monitoring config
(`exporter/monitoring/config.yml`, package data) is the default; a site may
pass its own.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import holidays as holiday_library
import yaml

from exporter.config import Config, ConfigError
from exporter.config.prober_kinds import selector
from exporter.config.strict import read_file
from exporter.metrics import WEB_INFO

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
class Monitoring:
    probe_job: str
    link_computer_probe_job: str
    exporter_job: str
    runbook_base_url: str
    for_by_role: dict[str, str]
    probe_interval_by_role: dict[str, str]
    evaluation_interval: str
    waits: dict[str, str]
    thresholds: dict[str, float | int | str]
    site_names: dict[str, str]  # site key -> name as the staff say it
    roles: tuple[str, ...]  # roles the exporter config's targets have
    alertmanager: Alertmanager
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
        at http://instance; with no other exporter answering, the link is only
        the runbook's path.
        """
        if self.runbook_base_url:
            return f"{self.runbook_base_url.rstrip('/')}/runbooks/{name}"
        job = self.exporter.replace('"', '\\"')

        def lookup(match: str) -> str:
            query = f'{WEB_INFO}{{{job}, instance{match}\\"%s\\"}}'
            return (f'{{{{ with printf "{query}" .Labels.instance | query }}}}'
                    '{{ . | first | label "external_url" }}')

        if with_instance:
            return lookup("=") + "{{ else }}http://{{ $labels.instance }}{{ end }}" + (
                f"/runbooks/{name}")
        return lookup("!=") + "{{ end }}" + f"/runbooks/{name}"


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
    roles = tuple(sorted({t.labels["role"] for t in exporter.targets.values()}))
    missing = set(roles) - set(raw["for_by_role"])
    if missing:
        raise ConfigError([f"{path}: for_by_role: no wait for role(s) "
                           f"{', '.join(sorted(missing))}"])
    return Monitoring(
        probe_job=raw["jobs"]["probe"],
        link_computer_probe_job=raw["jobs"]["link_computer_probe"],
        exporter_job=raw["jobs"]["exporter"],
        runbook_base_url=raw.get("runbook_base_url") or "",
        for_by_role=dict(raw["for_by_role"]),
        probe_interval_by_role=dict(raw["probe_interval_by_role"]),
        evaluation_interval=raw["evaluation_interval"],
        waits=dict(raw["for"]),
        thresholds=dict(raw["thresholds"]),
        site_names={key: site.name for key, site in exporter.sites.items()},
        roles=roles,
        alertmanager=_alertmanager(path, raw["alertmanager"]),
        slo_objectives=_objectives(path, raw.get("slo_objective_by_role") or {}),
        link_computer_titles=tuple(
            t.ae_title for t in exporter.targets.values()
            if t.labels.get("role") == "link_computer" and t.labels.get("direction") != "receive"),
    )


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
