"""Recording rules of each outage's start and last evaluation, for the outage table.

An outage is what the monthly report counts: a target that no site reaches,
longer than its role's `for:`. The outage alerts (DicomLinkComputerDown,
DicomPartnerUnreachable) have that `for:`, per site; Prometheus writes
`ALERTS_FOR_STATE` on every evaluation while one is pending or firing, its
value the alert's activeAt (the first evaluation that saw the failure), and
restores it across a restart. The target is out while the alert fires from
every site that has fresh probes of it and no site's reachability probes
(tcp, echo) answer, so:

- `target_reason:dicom_outage:start`: the outage's start, the latest
  activeAt of the sites (when the last site began to see the failure; for a
  link computer that can be its CT negotiation failing a probe interval
  before tcp or echo, which the report's start is);
- `target_reason:dicom_outage:last_evaluation`: the oldest of the sites'
  latest alert evaluations (the samples' own timestamps, so a history without
  staleness markers, such as a backfilled one, reads the same).

Both carry the failure reasons the reachability probes report at that
moment (`reason`, one series per reason; none when no probe says). They are
recorded only while the target is out, so a dashboard reads them over a
month with a plain `max_over_time`, one row per outage by its start. Unlike
the SLO rules they read the alerts' own series, so backfilling them needs a
history that has `ALERTS` and `ALERTS_FOR_STATE`.
"""

from __future__ import annotations

from typing import Any

from exporter.monitoring.settings import Monitoring
from exporter.routine.words import ALERT

ALERTS = (ALERT["link_computer_down"], ALERT["partner_unreachable"])
START = "target_reason:dicom_outage:start"
LAST_EVALUATION = "target_reason:dicom_outage:last_evaluation"
GROUP = "dicom_outages_recording"


def group(m: Monitoring) -> dict[str, Any]:
    names = "|".join(ALERTS)
    state = f'ALERTS_FOR_STATE{{alertname=~"{names}"}}'
    firing = (f"and on (alertname, target, site, instance) "
              f'ALERTS{{alertname=~"{names}", alertstate="firing"}}')
    reach = f'{m.probe}, {m.reachability}, direction!="receive"'
    every_site = (f"count by (target) (group by (target, site) ({state} {firing}))\n"
                  f"== count by (target) (group by (target, site) (probe_success{{{reach}}}))")
    # The report's test: no site reaches it now (a link computer whose CT
    # negotiation alone fails pages, but is not down in the report).
    unreached = f"max by (target) (min by (target, site) (probe_success{{{reach}}})) == 0"
    reasons = f"max by (target, reason) (probe_dicom_failure_reason{{{reach}}} == 1)"

    def per_outage(aggregate: str, value: str) -> str:
        out = (f"{aggregate} ({value} {firing})\nand on (target) ({every_site})\n"
               f"and on (target) ({unreached})")
        return (f"({out})\n+ on (target) group_right () (0 * {reasons})\n"
                f"or on (target) ({out})")
    return {"name": GROUP, "rules": [
        {"record": START, "expr": per_outage("max by (target)", state)},
        {"record": LAST_EVALUATION, "expr": per_outage("min by (target)", f"timestamp({state})")},
    ]}
