"""The generated Alertmanager holiday calendar: every moving holiday of every year it spans.

Easter is computed here with the anonymous Gregorian algorithm (Meeus/Jones/
Butcher), independent of the `holidays` library the generator uses, and
Midsummer Eve by its rule (the Friday from 19 to 25 June), so a library
that went wrong would be caught.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import subprocess
import sys
from zoneinfo import ZoneInfo

import yaml

from exporter import config as exporter_config
from exporter.monitoring import alertmanager, rules
from exporter.monitoring.settings import Monitoring
from tools.generate import EXAMPLE, ROOT, example

SHIPPED = ROOT / "alerts" / "alertmanager.yml"
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]


def easter(year: int) -> datetime.date:
    """Easter Sunday, by the anonymous Gregorian algorithm."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return datetime.date(year, month, day)


def midsummer_eve(year: int) -> datetime.date:
    return next(datetime.date(year, 6, day) for day in range(19, 26)
                if datetime.date(year, 6, day).weekday() == 4)


def holiday_dates(document: dict) -> set[datetime.date]:
    """Every date the `holidays` time interval names (years, months, days_of_month)."""
    interval = next(i for i in document["time_intervals"] if i["name"] == "holidays")
    out = set()
    for spec in interval["time_intervals"]:
        assert spec["location"] == "Europe/Stockholm"
        for year in spec["years"]:
            for month in spec["months"]:
                for day in spec["days_of_month"]:
                    out.add(datetime.date(int(year), MONTHS.index(month) + 1, int(day)))
    return out


def test_the_algorithm_knows_easter() -> None:
    assert easter(2026) == datetime.date(2026, 4, 5)  # from the almanac
    assert easter(2027) == datetime.date(2027, 3, 28)
    assert easter(2038) == datetime.date(2038, 4, 25)


def test_every_moving_and_fixed_holiday_2026_to_2031_is_in_the_shipped_calendar() -> None:
    dates = holiday_dates(yaml.safe_load(SHIPPED.read_text(encoding="utf-8")))
    for year in range(2026, 2032):
        sunday = easter(year)
        moving = {"Långfredagen": sunday - datetime.timedelta(days=2),
                  "Annandag påsk": sunday + datetime.timedelta(days=1),
                  "Kristi himmelsfärdsdag": sunday + datetime.timedelta(days=39),
                  "Midsommarafton": midsummer_eve(year)}
        for name, day in moving.items():
            assert day in dates, f"{name} {day}"
        for month, day in ((1, 1), (1, 6), (5, 1), (6, 6), (12, 24), (12, 25), (12, 26),
                           (12, 31)):
            assert datetime.date(year, month, day) in dates, (year, month, day)
    assert {d.year for d in dates} == set(range(2026, 2032))
    # An ordinary workday is not a holiday.
    assert datetime.date(2026, 11, 25) not in dates


def with_holidays(m: Monitoring, **changes: object) -> Monitoring:
    am = m.alertmanager
    return dataclasses.replace(m, alertmanager=dataclasses.replace(
        am, holidays=dataclasses.replace(am.holidays, **changes)))


def test_the_span_and_the_extra_days_come_from_the_config() -> None:
    m = with_holidays(example(), start_year=2030, years=2,
                      extra_days=((datetime.date(2030, 5, 31), "klämdag"),))
    document = yaml.safe_load(alertmanager.render(m))
    dates = holiday_dates(document)
    assert {d.year for d in dates} == {2030, 2031}
    assert datetime.date(2030, 5, 31) in dates  # the Friday after Ascension Day
    assert easter(2031) - datetime.timedelta(days=2) in dates
    assert "05-31 klämdag" in alertmanager.render(m)


def test_the_calendar_end_is_recorded_for_the_warning() -> None:
    m = example()
    ends = datetime.datetime(2032, 1, 1, tzinfo=ZoneInfo("Europe/Stockholm"))
    document = yaml.safe_load(rules.render_calendar(m, exporter_config.load(str(EXAMPLE))))
    record, warning = document["groups"][0]["rules"]
    assert record["expr"] == f"vector({int(ends.timestamp())})"
    assert warning["alert"] == "DicomHolidayCalendarEnding"
    assert warning["expr"].endswith(f"< {90 * 86400}")
    assert warning["labels"] == {"severity": "warning", "audience": "it"}


def test_the_output_depends_on_neither_locale_nor_time_zone() -> None:
    """Generated under another language and zone, the file is the same (the --check stays
    stable wherever it runs)."""
    program = ("from tools.generate import example\n"
               "from exporter.monitoring import alertmanager\n"
               "import sys; sys.stdout.write(alertmanager.render(example()))")
    env = {**os.environ, "LANG": "en_US.UTF-8", "LC_ALL": "C.UTF-8", "LANGUAGE": "en",
           "TZ": "America/Los_Angeles"}
    result = subprocess.run([sys.executable, "-c", program], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SHIPPED.read_text(encoding="utf-8")
