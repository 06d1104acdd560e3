"""The holidays on which the routine's after-hours communicator is paged, for a fixed span.

Alertmanager has no calendar: every holiday must be written out as a date.
The dates come from the `holidays` library (maintained, so a moved or new
holiday arrives with an upgrade) for the years the monitoring config
anchors (a start year and a count, never today's date, so the generated
file is the same whenever it is generated), plus the config's extra days.
The calendar ends at midnight after its last year; a generated rule warns
before that.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import holidays as holiday_library

from exporter.monitoring.settings import Holidays


def days(calendar: Holidays) -> list[tuple[datetime.date, str]]:
    """Every holiday of the span and every extra day, by date; names joined on a shared date."""
    found: dict[datetime.date, list[str]] = {}
    # The country's own language, named: left out, the library follows the
    # machine's locale, and the generated file would depend on where it is made.
    language = holiday_library.country_holidays(calendar.country).default_language
    library = holiday_library.country_holidays(
        calendar.country, years=calendar.span, categories=calendar.categories,
        language=language)
    for day, names in library.items():
        if day.year in calendar.span:
            found.setdefault(day, []).extend(names.split("; "))
    for day, name in calendar.extra_days:
        found.setdefault(day, []).append(name)
    return [(day, "; ".join(names)) for day, names in sorted(found.items())]


def end(calendar: Holidays, location: str) -> datetime.datetime:
    """The first moment the calendar no longer knows: 1 January after its last year."""
    return datetime.datetime(calendar.start_year + calendar.years, 1, 1,
                             tzinfo=ZoneInfo(location))
