"""Recording rules and SLO burn-rate alerts for IT operations, from the monitoring config.

Recording rules follow Prometheus' `level:metric:operations` names:

- `target_module_site:probe_success:avg5m`: each probe's success ratio;
- `target_site:probe_success:reachable_avg<W>`: the target from one site (the
  worst of its reachability probes), "from each vantage point";
- `target:probe_success:reachable_avg<W>`: the best site, "from at least one
  vantage point", the SLO's measure (an upper bound over W when two sites
  fail at different moments; the monthly report computes it per sample);
- `target:probe_success:store_avg5m`: the store probes' success per partner.

Link computers and partners are separate groups: their probes come from
separate jobs at separate intervals. Every rule reads raw `probe_success`
(none reads another rule), so `promtool tsdb create-blocks-from rules` can
backfill them all on an old Prometheus.

The burn-rate alerts are the SRE workbook's multi-window ones: 14.4 times
the allowed error rate over 1 h and 5 m (2 % of a 30-day budget in an hour)
and 6 times over 6 h and 30 m (5 % in six hours), per role's objective
(`slo_objective_by_role`). They go to IT by e-mail (severity warning,
audience it), never to the staff's pager.
"""

from __future__ import annotations

from typing import Any

from exporter.config.strict import parse_duration
from exporter.monitoring.settings import Monitoring
from exporter.routine import itops as words
from exporter.routine.words import ALERT

Rule = dict[str, Any]
WINDOWS = ("5m", "30m", "1h", "6h")
# (long window, short window, burn factor, `for:`) per the SRE workbook, chapter 5.
BURNS = (("1h", "5m", 14.4, "2m"), ("6h", "30m", 6.0, "15m"))
BUDGET_DAYS = 30
GUARD_STEP = {"1h": "1m", "6h": "5m"}  # resolution of "how long has the target been recorded"
ATTRIBUTES = "role, region, ae_title"  # labels of the target, kept through every rule
KEEP = f"target, {ATTRIBUTES}"
ROLE_GROUPS = {"link_computer": "link_computers", "partner": "partners", "relay": "partners"}
ALERT_NAME = {"link_computers": ALERT["link_computer_budget"],
              "partners": ALERT["partner_budget"]}
IT_MAIL = {"severity": "warning", "audience": "it"}


def module_ratio() -> str:
    return "target_module_site:probe_success:avg5m"


def site_ratio(window: str) -> str:
    return f"target_site:probe_success:reachable_avg{window}"


def target_ratio(window: str) -> str:
    return f"target:probe_success:reachable_avg{window}"


def store_ratio() -> str:
    return "target:probe_success:store_avg5m"


def _selector(m: Monitoring, group: str) -> str:
    return m.link_computers if group == "link_computers" else m.partners


def recording_groups(m: Monitoring) -> list[dict[str, Any]]:
    groups = []
    for group in ("link_computers", "partners"):
        role = _selector(m, group)
        reach = f"probe_success{{{m.probe}, {role}, {m.reachability}}}"
        rules: list[Rule] = [{
            "record": module_ratio(),
            "expr": f"avg by (target, module, prober, site, direction, {ATTRIBUTES}) "
                    f"(avg_over_time(probe_success{{{m.probe}, {role}}}[5m]))",
        }]
        for window in WINDOWS:
            per_site = f"min by (site, {KEEP}) (avg_over_time({reach}[{window}]))"
            rules.append({"record": site_ratio(window), "expr": per_site})
            rules.append({"record": target_ratio(window), "expr": f"max by ({KEEP}) ({per_site})"})
        if group == "partners":
            rules.append({
                "record": store_ratio(),
                "expr": f"avg by ({KEEP}) (avg_over_time(probe_success{{{m.probe}, {role}, "
                        f'prober="store"}}[5m]))',
            })
        for rule in rules:  # which group made the series (and the names unique per group)
            rule["labels"] = {"slo": group}
        groups.append({"name": f"dicom_{group}_recording", "rules": rules})
    return groups


def percent(ratio: float) -> str:
    """ "99,9 %", "1,44 %": as few decimals as the figure needs, a decimal comma."""
    text = f"{ratio * 100:.3f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") + " %"


def exhaustion(factor: float) -> str:
    hours = BUDGET_DAYS * 24 / factor
    return f"{hours / 24:.0f} dygn" if hours % 24 == 0 else f"{hours:.0f} timmar"


def burn_alerts(m: Monitoring, names: str = "") -> list[Rule]:
    """A fast (1 h/5 m) and a slow (6 h/30 m) burn rule per alert and objective: roles
    that share an alert and an objective (partners and relays) share the rules.
    `names` sets the template variables ($region) the summaries say people's names with."""
    shared: dict[tuple[str, float], list[str]] = {}
    for role in m.roles:
        objective = m.slo_objectives.get(role)
        if objective is not None and role in ROLE_GROUPS:
            shared.setdefault((ROLE_GROUPS[role], objective), []).append(role)
    out = []
    for (group, objective), roles in sorted(shared.items()):
        name = ALERT_NAME[group]
        budget = 1 - objective
        role = f'role=~"{"|".join(sorted(roles))}"'
        for long, short, factor, wait in BURNS:
            threshold = f"{factor * budget:.6g}"
            # The long window must be at least half recorded: a Prometheus started
            # minutes ago (or a new target) judges no budget from a few minutes.
            recorded = (f"time() - min_over_time(timestamp({target_ratio('5m')}{{{role}}})"
                        f"[{long}:{GUARD_STEP[long]}])")
            expr = (f"(1 - {target_ratio(long)}{{{role}}}) > {threshold}\n"
                    f"and (1 - {target_ratio(short)}{{{role}}}) > {threshold}\n"
                    f"and ({recorded}) > {parse_duration(long) / 2:g}")
            out.append({
                "alert": name, "expr": expr, "for": wait,
                "labels": {**IT_MAIL, "slo_window": f"{long}/{short}",
                           "slo_objective": f"{objective:g}"},
                "annotations": {
                    "summary": names + words.SLO_BURN_SUMMARY[
                        "link_computer" if group == "link_computers" else "partner"],
                    "description": words.SLO_BURN_DESCRIPTION.format(
                        threshold=percent(factor * budget), long=long, short=short,
                        factor=f"{factor:g}".replace(".", ","), objective=percent(objective),
                        exhaustion=exhaustion(factor)),
                    "runbook_url": m.runbook(name, with_instance=False),
                },
            })
    return out
