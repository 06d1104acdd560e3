"""The status page as HTML: one self-contained page, Swedish, no JavaScript needed.

A closed hospital network has no CDN and no web fonts, so everything is in
the page. State is written out in words and symbols, never colour alone. The
small script only refreshes the main section in place every 15 seconds (no
reload, no flicker); without it, the page refreshes itself every 30 seconds.
"""

from __future__ import annotations

import datetime
import html

from exporter import __version__
from exporter.route_state import HopState
from exporter.routine import words
from exporter.routine.words import PAGE
from exporter.web.oncall import STATE_TEXT, OnCallStatus

REFRESH_SECONDS = 15
REFRESH_RANGE = (2, 300)
# A target's state word (upp/nere/okänd) and a path's (öppen/stängd) -> (CSS class, text).
BADGE = {
    **{STATE_TEXT[HopState(state)]: (words.BADGE_CLASS[state],
                                      f"{words.BADGE_SYMBOL[state]} {word}")
       for state, word in words.HOP_STATE.items()},
    **{word: (words.BADGE_CLASS[state], f"{words.BADGE_SYMBOL[state]} {word}")
       for state, word in words.PATH_STATE.items() if state != "unknown"},
}
ROUTE_BADGE = words.ROUTE_BADGE
RUNBOOK_FOR_ROUTE = words.RUNBOOK_FOR_ROUTE_STATUS

STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #111; background: #fff; line-height: 1.45; }
header, main, footer { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
header { border-bottom: 2px solid #222; }
h1 { font-size: 1.5rem; margin: .8rem 0 .2rem; }
h2 { font-size: 1.2rem; margin: 1.4rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #bbb;
         vertical-align: top; }
th { background: #eee; }
.wrap { overflow-x: auto; }
.badge { font-weight: 700; padding: .05rem .4rem; border-radius: .25rem; white-space: nowrap;
         border: 1px solid currentColor; }
.ok { color: #0b5d1e; background: #e6f4ea; }
.fel { color: #8a0000; background: #fde7e7; }
.varning { color: #6b4500; background: #fff4d6; }
.okand { color: #333; background: #f0f0f0; }
.fault { border-left: .4rem solid #8a0000; background: #fdf3f3; padding: .5rem .8rem;
         margin: .5rem 0; }
.fault p { margin: .2rem 0; }
.allgood { border-left: .4rem solid #0b5d1e; background: #eef8f0; padding: .5rem .8rem; }
.muted { color: #444; font-size: .9rem; }
a { color: #0645ad; }
@media (max-width: 40rem) {
  th.optional, td.optional { display: none; }
  body { font-size: 1.05rem; }
}
"""

SCRIPT = """
(function () {
  function refresh() {
    fetch(window.location.pathname + window.location.search, {headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var next = fresh.getElementById("status");
        var now = document.getElementById("status");
        if (next && now && next.innerHTML !== now.innerHTML) { now.innerHTML = next.innerHTML; }
      })
      .catch(function () {
        var note = document.getElementById("stamp");
        if (note) { note.textContent = "__REFRESH_FAILED__"; }
      });
  }
  setInterval(refresh, __INTERVAL_MS__);
})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(kind: str, table: dict[str, tuple[str, str]]) -> str:
    css, text = table.get(kind, ("okand", kind))
    return f'<span class="badge {css}">{_e(text)}</span>'


def _age(seconds: float | None) -> str:
    if seconds is None:
        return PAGE["never"]
    if seconds < 90:
        return PAGE["seconds_ago"].format(seconds=f"{seconds:.0f}")
    return PAGE["minutes_ago"].format(minutes=f"{seconds / 60:.0f}")


def _faults(status: OnCallStatus) -> str:
    if not status.faults:
        return f'<div class="allgood"><p>{PAGE["no_faults"]}</p></div>'
    items = []
    for fault in status.faults:
        items.append(
            f'<li class="fault"><p><strong>{_e(fault.what)}</strong></p>'
            f"<p>{PAGE['next_step']} {_e(fault.next_step)}</p>"
            f'<p><a href="/runbooks/{_e(fault.runbook)}">{PAGE["runbook"]}: '
            f"{_e(fault.runbook)}</a></p></li>"
        )
    return f'<ul style="list-style:none;padding:0">{"".join(items)}</ul>'


def _next(text: str) -> str:
    return f'<br><span class="muted">{_e(text)}</span>' if text else ""


def _routes(status: OnCallStatus) -> str:
    if not status.routes:
        return f"<p>{PAGE['no_routes']} (<code>routes:</code>).</p>"
    rows = []
    for route in status.routes:
        detail = "; ".join(
            f"{'► ' if p['active'] else ''}{p['name']}: {p['state']}"
            + (f" ({words.ASSUMED}: {p['assumed']})" if p["assumed"] else "")
            for p in route.paths
        )
        runbook = RUNBOOK_FOR_ROUTE.get(route.status)
        link = f' <a href="/runbooks/{runbook}">{PAGE["runbook"]}</a>' if runbook else ""
        rows.append(
            f"<tr><th scope=\"row\">{_e(route.title)}</th>"
            f"<td>{_badge(route.status, ROUTE_BADGE)}</td><td><strong>{_e(route.advice)}"
            f"</strong>{_next(route.next_step)}{link}</td>"
            f'<td class="optional muted">{_e(detail)}</td></tr>'
        )
    return (
        f'<div class="wrap"><table><caption class="muted">{PAGE["routes_caption"]}'
        f'</caption><thead><tr><th scope="col">{PAGE["col_route"]}</th>'
        f'<th scope="col">{PAGE["col_state"]}</th>'
        f'<th scope="col">{PAGE["col_do"]}</th>'
        f'<th scope="col" class="optional">{PAGE["col_paths"]}</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _targets(status: OnCallStatus) -> str:
    rows = []
    for target in status.targets:
        echo = f"{target.echo_ms:.1f} ms" if target.echo_ms is not None else "-"
        reason = _e(target.reason_text) if target.reason_text else "-"
        rows.append(
            f"<tr><th scope=\"row\">{_e(target.title)}"
            f'<br><span class="muted">{_e(target.ae_title)}</span></th>'
            f'<td class="optional">{_e(target.role)}</td>'
            f"<td>{_badge(target.state, BADGE)}</td>"
            f'<td class="optional">{_e(_age(target.checked_seconds_ago))}</td>'
            f'<td class="optional">{_e(echo)}</td><td>{reason}</td></tr>'
        )
    return (
        f'<div class="wrap"><table><thead><tr><th scope="col">{PAGE["col_node"]}</th>'
        f'<th scope="col" class="optional">{PAGE["col_role"]}</th>'
        f'<th scope="col">{PAGE["col_state"]}</th>'
        f'<th scope="col" class="optional">{PAGE["col_checked"]}</th>'
        f'<th scope="col" class="optional">{PAGE["col_echo"]}</th>'
        f'<th scope="col">{PAGE["col_reason"]}</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _receiving(status: OnCallStatus) -> str:
    if not status.receiving:
        return ""
    rows = "".join(
        f"<tr><th scope=\"row\">{_e(r.receiver)} {PAGE['from']} {_e(r.partner)}</th>"
        f"<td>{_badge(r.state, BADGE)}</td><td>{_e(r.reason) or '-'}</td></tr>"
        for r in status.receiving
    )
    return (
        f'<section aria-labelledby="mottagning"><h2 id="mottagning">{PAGE["receiving"]}'
        f'</h2><div class="wrap"><table><thead><tr><th scope="col">{PAGE["col_receiver"]}'
        f'</th><th scope="col">{PAGE["col_state"]}</th>'
        f'<th scope="col">{PAGE["col_reason"]}</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _ranking(status: OnCallStatus) -> str:
    """The routine's own ranking of the regions, so the most important is plain."""
    return f'<p id="rangordning">{_e(status.ranking)}</p>' if status.ranking else ""


def _roles(status: OnCallStatus) -> str:
    if not status.roles:
        return ""
    items = "".join(f"<li><strong>{_e(name)}</strong>: {_e(contact)}</li>"
                    for name, contact in status.roles)
    return (f'<section aria-labelledby="roller"><h2 id="roller">{PAGE["roles"]}</h2>'
            f"<ul>{items}</ul></section>")


def render(status: OnCallStatus, refresh_seconds: int = REFRESH_SECONDS) -> str:
    """The page; `refresh_seconds` (e.g. from ?refresh=) sets the script's interval."""
    low, high = REFRESH_RANGE
    interval = min(max(refresh_seconds, low), high)
    stamp = datetime.datetime.fromtimestamp(status.generated_at).strftime("%Y-%m-%d %H:%M:%S")
    down = sum(1 for t in status.targets if t.state == STATE_TEXT[HopState.DOWN])
    title = PAGE["title_faults"].format(count=len(status.faults)) if status.faults else (
        PAGE["title_no_faults"])
    stamp_line = PAGE["stamp"].format(stamp=_e(stamp), down=down, total=len(status.targets))
    script = SCRIPT.replace("__INTERVAL_MS__", str(interval * 1000)).replace(
        "__REFRESH_FAILED__", PAGE["refresh_failed"])
    return f"""<!doctype html>
<html lang="sv"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<noscript><meta http-equiv="refresh" content="30"></noscript>
<style>{STYLE}</style></head>
<body>
<header><h1>{PAGE["heading"]}</h1>
<p class="muted">{PAGE["intro"]}</p></header>
<main id="status" aria-live="polite">
<p id="stamp" class="muted">{stamp_line}</p>
<section aria-labelledby="fel"><h2 id="fel">{PAGE["faults"]}</h2>{_faults(status)}</section>
<section aria-labelledby="vagar"><h2 id="vagar">{PAGE["routes"]}</h2>{_routes(status)}</section>
<section aria-labelledby="noder"><h2 id="noder">{PAGE["nodes"]}</h2>
{_ranking(status)}{_targets(status)}</section>
{_receiving(status)}
{_roles(status)}
</main>
<footer><h2>{PAGE["more"]}</h2><p><a href="/runbooks/">{PAGE["runbooks_link"]}</a> ·
<a href="/status.json">status.json</a> · <a href="/metrics">{PAGE["metrics_link"]}</a> ·
<a href="/sd">{PAGE["sd_link"]}</a> · dicom-exporter {_e(__version__)}</p></footer>
<script>{script}</script>
</body></html>
"""
