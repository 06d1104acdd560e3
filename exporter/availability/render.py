"""The report as Markdown, HTML (with a small inline SVG chart per target) or JSON.

Words come from exporter.routine.itops; numbers have a decimal comma and
times are shown in Europe/Stockholm. The JSON form carries the same figures
in plain units (seconds, ratios 0..1, ISO 8601 times with offset) for other
tools.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from exporter.availability import timeline as tl
from exporter.availability.figures import AlertRun, Report, TargetFigures, View
from exporter.routine import itops as words

ZONE = ZoneInfo("Europe/Stockholm")
COLOURS = {tl.UP: "#2e7d32", tl.DOWN: "#c62828", tl.UNKNOWN: "#9e9e9e"}


# -- numbers, times and durations ----------------------------------------------
def percent(ratio: float | None) -> str:
    if ratio is None:
        return words.NOT_APPLICABLE
    return f"{ratio * 100:.2f}".replace(".", ",") + " %"


def duration(seconds: float | None) -> str:
    """ "2 h 5 min", "45 s", "3 d 4 h"; whole seconds."""
    if seconds is None:
        return words.NOT_APPLICABLE
    s = round(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def local(t: float) -> str:
    """ "2026-10-25 02:30", with the zone's name when the hour occurs twice (the
    night summer time ends), so an outage in that hour reads unambiguously."""
    moment = datetime.fromtimestamp(t, ZONE)
    text = moment.strftime("%Y-%m-%d %H:%M")
    if moment.replace(fold=1 - moment.fold).utcoffset() != moment.utcoffset():
        text += f" {moment.tzname()}"
    return text


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, ZONE).isoformat()


class Names:
    """Site and target names as people say them; the key where none is known."""

    def __init__(self, sites: Mapping[str, str] | None = None,
                 regions: Mapping[str, str] | None = None) -> None:
        self.sites = dict(sites or {})
        self.regions = dict(regions or {})

    def site(self, key: str) -> str:
        return self.sites.get(key, key)

    def target(self, f: TargetFigures) -> str:
        if f.role == "link_computer":
            return f.ae_title or f.target
        region = self.regions.get(f.region, f.region or f.target)
        return f"{region} ({f.ae_title})" if f.ae_title else region


# -- rows, shared by Markdown and HTML ------------------------------------------
def _sites(report: Report) -> list[str]:
    return sorted({site for f in report.targets for site in f.sites})


def _header(report: Report, names: Names) -> list[str]:
    c = words.COLUMNS
    return [c["target"], c["availability"],
            *(c["site_availability"].format(site=names.site(s)) for s in _sites(report)),
            c["outages"], c["downtime"], c["longest"], c["mttr"], c["unknown"], c["store"]]


def _row(f: TargetFigures, report: Report, names: Names) -> list[str]:
    v = f.overall
    return [names.target(f), percent(v.availability),
            *(percent(f.sites[s].availability) if s in f.sites else words.NOT_APPLICABLE
              for s in _sites(report)),
            str(len(v.outages)), duration(v.downtime_seconds),
            duration(v.longest_seconds) if v.outages else words.NOT_APPLICABLE,
            duration(v.mttr_seconds), duration(v.unknown_seconds),
            percent(f.store_success)]


def _outage_rows(v: View) -> list[list[str]]:
    return [[local(o.start), local(o.end), duration(o.seconds),
             "; ".join(n for n, on in ((words.BEGAN_BEFORE, o.began_before),
                                       (words.LASTS_BEYOND, o.lasts_beyond)) if on)]
            for o in v.outages]


def _alert_rows(runs: list[AlertRun], names: Names) -> list[list[str]]:
    return [[r.alertname, names.site(r.labels.get("site", "")) or words.NOT_APPLICABLE,
             local(r.start), local(r.end), duration(r.end - r.start)] for r in runs]


def _groups(report: Report) -> list[tuple[str, list[TargetFigures]]]:
    return [(heading, [f for f in report.targets if f.role == role])
            for role, heading in words.ROLE_HEADINGS.items()
            if any(f.role == role for f in report.targets)]


def title(report: Report) -> str:
    return (f"{words.REPORT_TITLE} {local(report.start)[:10]} till {local(report.end)[:10]}")


def period_line(report: Report) -> str:
    return (f"{words.PERIOD}: {local(report.start)} till {local(report.end)} "
            f"({words.TIMEZONE_NOTE}).")


# -- Markdown ---------------------------------------------------------------------
def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def markdown(report: Report, names: Names) -> str:
    out = [f"# {title(report)}", "", period_line(report), ""]
    for heading, targets in _groups(report):
        out += [f"## {heading}", ""]
        out += _md_table(_header(report, names), [_row(f, report, names) for f in targets])
        out.append("")
        for f in targets:
            out += [f"### {words.OUTAGES_OF.format(target=names.target(f))}", ""]
            rows = _outage_rows(f.overall)
            out += [*_md_table(list(words.OUTAGE_COLUMNS), rows), ""] if rows else [
                words.NO_OUTAGES, ""]
            out += [f"### {words.ALERTS_OF.format(target=names.target(f))}", ""]
            rows = _alert_rows(f.alerts, names)
            out += [*_md_table(list(words.ALERT_COLUMNS), rows), ""] if rows else [
                words.NO_ALERTS, ""]
    out += [f"## {words.OTHER_ALERTS}", ""]
    rows = _alert_rows(report.other_alerts, names)
    out += [*_md_table(list(words.ALERT_COLUMNS), rows), ""] if rows else [words.NO_ALERTS, ""]
    out += [f"## {words.HOW_COUNTED_HEADING}", ""]
    for paragraph in words.HOW_COUNTED:
        out += [paragraph, ""]
    return "\n".join(out)


# -- HTML ----------------------------------------------------------------------------
CHART_WIDTH = 720
ROW_HEIGHT = 14
LABEL_WIDTH = 110


def chart(f: TargetFigures, report: Report, names: Names) -> str:
    """One strip per timeline (at least one site, then each site): green up, red down,
    grey unknown, a tick at each local midnight. A down stretch is at least a
    pixel wide, so a short outage in a month stays visible."""
    lines = [(words.SITE_ANY, f.overall.timeline),
             *((names.site(site), v.timeline) for site, v in f.sites.items())]
    span = report.end - report.start
    width = CHART_WIDTH - LABEL_WIDTH
    height = ROW_HEIGHT * len(lines) + 16

    def x(t: float) -> float:
        return LABEL_WIDTH + (t - report.start) / span * width

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" '
             f'height="{height}" role="img" aria-label="{html.escape(names.target(f))}">']
    for row, (label, line) in enumerate(lines):
        y = row * ROW_HEIGHT
        parts.append(f'<text x="0" y="{y + 11}" font-size="11">{html.escape(label)}</text>')
        for s in sorted(line, key=lambda s: s.state == tl.DOWN):
            w = max(x(s.end) - x(s.start), 1.0 if s.state == tl.DOWN else 0.0)
            parts.append(f'<rect x="{x(s.start):.2f}" y="{y + 1}" width="{w:.2f}" '
                         f'height="{ROW_HEIGHT - 2}" fill="{COLOURS[s.state]}"/>')
    base = ROW_HEIGHT * len(lines)
    date = datetime.fromtimestamp(report.start, ZONE).date()
    while (t := datetime(date.year, date.month, date.day, tzinfo=ZONE).timestamp()) < report.end:
        parts.append(f'<line x1="{x(t):.2f}" x2="{x(t):.2f}" y1="{base}" y2="{base + 4}" '
                     'stroke="#555"/>')
        if date.day in (1, 8, 15, 22, 29):
            parts.append(f'<text x="{x(t):.2f}" y="{base + 14}" font-size="10">'
                         f'{date.day}/{date.month}</text>')
        date += timedelta(days=1)
    parts.append("</svg>")
    return "".join(parts)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: left; }
td { white-space: nowrap; }
td:not(:first-child) { text-align: right; }
h3 { margin-bottom: 0.2em; }
.legend span { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; }
"""


def html_page(report: Report, names: Names) -> str:
    e = html.escape
    legend = "".join(f'<span style="background:{COLOURS[state]}"></span>{e(text)}'
                     for state, text in words.LEGEND.items())
    out = ["<!DOCTYPE html>", '<html lang="sv"><head><meta charset="utf-8">',
           f"<title>{e(title(report))}</title><style>{STYLE}</style></head><body>",
           f"<h1>{e(title(report))}</h1>", f"<p>{e(period_line(report))}</p>",
           f'<p class="legend">{legend}</p>']
    for heading, targets in _groups(report):
        out.append(f"<h2>{e(heading)}</h2>")
        out.append(_html_table(_header(report, names), [_row(f, report, names) for f in targets]))
        for f in targets:
            out.append(f"<h3>{e(names.target(f))}</h3>")
            out.append(chart(f, report, names))
            rows = _outage_rows(f.overall)
            out.append(f"<h4>{e(words.OUTAGES_OF.format(target=names.target(f)))}</h4>")
            out.append(_html_table(list(words.OUTAGE_COLUMNS), rows) if rows
                       else f"<p>{e(words.NO_OUTAGES)}</p>")
            rows = _alert_rows(f.alerts, names)
            out.append(f"<h4>{e(words.ALERTS_OF.format(target=names.target(f)))}</h4>")
            out.append(_html_table(list(words.ALERT_COLUMNS), rows) if rows
                       else f"<p>{e(words.NO_ALERTS)}</p>")
    out.append(f"<h2>{e(words.OTHER_ALERTS)}</h2>")
    rows = _alert_rows(report.other_alerts, names)
    out.append(_html_table(list(words.ALERT_COLUMNS), rows) if rows
               else f"<p>{e(words.NO_ALERTS)}</p>")
    out.append(f"<h2>{e(words.HOW_COUNTED_HEADING)}</h2>")
    out += [f"<p>{e(p)}</p>" for p in words.HOW_COUNTED]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -- JSON ------------------------------------------------------------------------------
def _view_json(v: View) -> dict[str, Any]:
    return {
        "availability": v.availability,
        "up_seconds": v.up_seconds, "down_seconds": v.down_seconds,
        "unknown_seconds": v.unknown_seconds,
        "outage_count": len(v.outages), "downtime_seconds": v.downtime_seconds,
        "longest_outage_seconds": v.longest_seconds if v.outages else None,
        "mttr_seconds": v.mttr_seconds,
        "outages": [{"start": iso(o.start), "end": iso(o.end), "seconds": o.seconds,
                     "began_before_period": o.began_before,
                     "lasts_beyond_period": o.lasts_beyond} for o in v.outages],
    }


def _alert_json(r: AlertRun) -> dict[str, Any]:
    return {"alertname": r.alertname, "labels": dict(r.labels), "start": iso(r.start),
            "end": iso(r.end), "seconds": r.end - r.start,
            "began_before_period": r.began_before, "lasts_beyond_period": r.lasts_beyond}


def as_json(report: Report, names: Names) -> str:
    data = {
        "period": {"from": iso(report.start), "to": iso(report.end),
                   "timezone": str(ZONE), "half_open": True},
        "targets": [{
            "target": f.target, "name": names.target(f), "role": f.role,
            "ae_title": f.ae_title, "region": f.region, "for_seconds": f.for_seconds,
            **_view_json(f.overall),
            "store_success": f.store_success,
            "sites": {site: {"name": names.site(site), **_view_json(v)}
                      for site, v in f.sites.items()},
            "alerts_firing": [_alert_json(r) for r in f.alerts],
        } for f in report.targets],
        "other_alerts_firing": [_alert_json(r) for r in report.other_alerts],
        "notes": list(words.HOW_COUNTED),
    }
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


FORMATS = {"md": markdown, "html": html_page, "json": as_json}
