"""Alerts, runbooks, metrics and Alertmanager routing stay consistent."""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import routine
from exporter.app import Exporter
from exporter.demo.embedded import Demo
from exporter.metrics import render_probe
from exporter.reasons import Reason
from exporter.schedule import Scheduler
from exporter.web import runbooks
from exporter.web import server as web_server
from tests.support.pki import tls_probe
from tests.support.realpeers import LOOPBACK, require

ROOT = Path(__file__).parent.parent
RULE_FILES = sorted((ROOT / "alerts").glob("*.rules.yml"))  # the alerts and the calendar
ALERTMANAGER = ROOT / "alerts" / "alertmanager.yml"
SECTIONS = ("Gör nu", "Betydelse", "Påverkan", "Diagnos", "Åtgärd", "Roller", "Eskalering")


def rules() -> list[dict]:
    documents = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in RULE_FILES]
    return [rule for document in documents for group in document["groups"]
            for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    assert {rule["alert"] for rule in rules()} == set(runbooks.names())


@pytest.mark.parametrize("name", runbooks.names())
def test_every_runbook_has_its_sections_in_order(name: str) -> None:
    text = runbooks.source(name) or ""
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert tuple(headings) == SECTIONS
    assert text.startswith(f"# {name}\n")


def test_runbooks_say_the_wait_and_the_receivers_the_rules_have() -> None:
    """Facts about the system itself, as the rules and routing have them (issue 27)."""
    by_name = {rule["alert"]: rule for rule in rules()}
    link = runbooks.source("DicomLinkComputerDown") or ""
    assert f"`for: {by_name['DicomLinkComputerDown']['for']}`" in link
    assert "45" not in link  # the old "fyra gånger i rad under 45 sekunder"
    for name, rule in by_name.items():
        text = " ".join((runbooks.source(name) or "").split())
        if rule["labels"].get("severity") == "warning":
            # Warnings never page: staff warnings reach IT's mailbox, not the pager.
            assert "administratörerna får det samtidigt" not in text, name
    fallback = " ".join((runbooks.source("RouteOnFallback") or "").split())
    assert "röntgen-IT:s brevlåda får det samtidigt" in fallback
    tls = " ".join((runbooks.source("DicomTLSCertificateExpiringSoon") or "").split())
    assert "punkt 4" not in tls and "punkt 5" in tls


def test_the_coverage_table_names_every_cause_of_the_routine() -> None:
    text = (ROOT / "runbooks" / "README.md").read_text(encoding="utf-8")
    for number in range(1, 7):
        assert re.search(rf"^\| Skicka {number}: ", text, re.MULTILINE), f"skicka {number}"
    for number in range(1, 6):
        assert re.search(rf"^\| Ta emot {number}: ", text, re.MULTILINE), f"ta emot {number}"
    rows = re.findall(r"^\| (?:Skicka|Ta emot) \d: [^|]*\| ([^|]*)\|", text, re.MULTILINE)
    alerts = {rule["alert"] for rule in rules()}
    for cell in rows:
        named = set(re.findall(r"[A-Z][A-Za-z]+", cell)) & alerts
        assert named or "syns inte från vår sida" in cell, cell


@pytest.fixture(scope="module")
def demo_exporter() -> Iterator[tuple[Exporter, str]]:
    demo = Demo.start()
    exporter = Exporter(demo.config)
    server, _ = web_server.start(exporter, (LOOPBACK, 0))
    schedule = Scheduler(exporter, 10.0)  # as the demo runs: the schedule's metrics too
    schedule.start()
    try:
        yield exporter, server.url
    finally:
        schedule.stop()
        server.shutdown()
        server.server_close()
        demo.stop()


def exposed_names(exporter: Exporter) -> set[str]:
    """Every metric family the exporter really exposes, on both endpoints."""
    texts = [generate_latest(exporter.registry).decode()]
    config = exporter.config
    for target in config.targets.values():
        for module in target.modules:
            texts.append(render_probe(exporter.probe(target.name, module)).decode())
    names = set()
    for text in texts:
        for family in text_string_to_metric_families(text):
            names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.slow
def test_every_metric_a_rule_uses_is_exposed_by_the_exporter(demo_exporter, pki,
                                                             tls_storescp) -> None:
    exporter, _ = demo_exporter
    # The demo has no TLS peer: a real one (dcmtk storescp with TLS) adds the TLS metrics.
    tls_names = {sample.name for family in text_string_to_metric_families(
        render_probe(tls_probe(pki, tls_storescp)).decode()) for sample in family.samples}
    used = set()
    every = [rule for path in RULE_FILES
             for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
             for rule in group["rules"]]
    for rule in every:
        used.update(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", rule["expr"]))
        for text in rule.get("annotations", {}).values():
            used.update(re.findall(r"`([a-z_:]+)\{", text))
    used.discard("up")  # Prometheus' own
    # Prometheus writes ALERTS and ALERTS_FOR_STATE for alerting rules: those
    # read must name alerts that exist.
    alerts = {rule["alert"] for rule in every if "alert" in rule}
    for rule in every:
        for names in re.findall(r'ALERTS(?:_FOR_STATE)?\{alertname=~?"([^"]+)"', rule["expr"]):
            assert set(names.split("|")) <= alerts, (rule.get("record"), names)
    used -= {"ALERTS", "ALERTS_FOR_STATE"}
    assert used, "no metric found in the rules"
    recorded = {rule["record"] for rule in every if "record" in rule}
    exposed = exposed_names(exporter) | tls_names | recorded
    assert used <= exposed, used - exposed


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_every_runbook_url_answers_from_a_running_exporter(demo_exporter) -> None:
    _, url = demo_exporter
    for rule in rules():
        link = rule["annotations"]["runbook_url"]
        path = link[link.index("/runbooks/"):].split("{{")[0]
        status, page = fetch(url + path)
        assert status == 200, path
        assert f"<h1>{rule['alert']}</h1>" in page
        assert "<h2>Åtgärd</h2>" in page


def test_the_runbook_index_links_every_runbook(demo_exporter) -> None:
    _, url = demo_exporter
    status, page = fetch(f"{url}/runbooks/")
    assert status == 200
    for name in runbooks.names():
        assert f'href="{name}.md"' in page
        assert fetch(f"{url}/runbooks/{name}.md")[0] == 200


@pytest.mark.parametrize("path", ["/runbooks/Nope", "/runbooks/..%2F..%2Fpyproject.toml",
                                  "/runbooks/../README", "/runbooks/%2Fetc%2Fpasswd",
                                  "/runbooks/Watchdog/extra"])
def test_unknown_runbooks_are_404_and_paths_cannot_escape(demo_exporter, path: str) -> None:
    _, url = demo_exporter
    assert fetch(url + path)[0] == 404


@pytest.mark.slow
def test_alertmanager_config_is_valid() -> None:
    result = subprocess.run([require("amtool"), "check-config", str(ALERTMANAGER)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # A transfer fault: the routine's communicators (both, by time of day) and the pager.
        (["alertname=DicomLinkComputerDown", "severity=critical", "audience=staff",
          "target=z97117"], "arkivet,lars,lars,admin-pager"),
        (["alertname=DicomPartnerUnreachable", "severity=critical", "audience=staff",
          "site=ljungby"], "arkivet,lars,lars,admin-pager"),
        # The route advice reaches the people who tell staff which way to send.
        (["alertname=RouteOnFallback", "severity=warning", "audience=staff"],
         "arkivet,lars,lars,it-mail"),
        # Monitoring faults: administrators and IT only.
        (["alertname=DicomExporterDown", "severity=critical", "audience=it"], "admin-pager"),
        (["alertname=DicomEchoLatencyHigh", "severity=warning", "audience=it"], "it-mail"),
        (["alertname=DicomProbesStale", "severity=warning", "audience=it"], "it-mail"),
        (["alertname=Watchdog", "severity=none", "audience=it"], "deadman"),
        # SLO burn rates: IT by e-mail, never a pager (labels as the rules carry them).
        *((["alertname=" + rule["alert"], *(f"{k}={v}" for k, v in rule["labels"].items())],
           "it-mail") for rule in rules() if "ErrorBudgetBurn" in rule["alert"]),
    ],
)
def test_alertmanager_routes(labels: list[str], receivers: str) -> None:
    """The routing tree only; time of day and inhibition are proven in a real Alertmanager
    (tests/test_alertmanager_scenarios.py)."""
    result = subprocess.run(
        [require("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
         f"--verify.receivers={receivers}", *labels],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    """One Alertmanager matcher of the forms the generated config uses: a="b", a=~"re"."""
    found = re.fullmatch(r'(\w+)(=~|!=|=)"(.*)"', matcher)
    assert found, f"matcher form the test does not know: {matcher}"
    name, operator, value = found.groups()
    have = labels.get(name, "")
    if operator == "=~":
        return re.fullmatch(value, have) is not None
    return (have == value) == (operator == "=")


def receivers_of(labels: dict[str, str]) -> list[str]:
    """The receivers the generated route tree picks for these labels (any time of day:
    time intervals decide only whether a route sends), as `amtool config routes test` does."""
    def walk(route: dict) -> list[str]:
        found: list[str] = []
        for child in route.get("routes", []):
            if all(_matches(m, labels) for m in child.get("matchers", [])):
                found += walk(child)
                if not child.get("continue", False):
                    break
        return found or [route["receiver"]]
    return walk(yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))["route"])


# What the Roller section of a runbook says for each set of receivers the config gives.
ROLE_SENTENCES = {
    frozenset({"arkivet", "lars", "admin-pager"}):
        "Larmet når Arkivet under kontorstid och LARS annars; administratörerna får det "
        "samtidigt",
    frozenset({"arkivet", "lars", "it-mail"}):
        "Larmet når Arkivet under kontorstid och LARS annars; röntgen-IT:s brevlåda får det "
        "samtidigt, men inget personsökarlarm går till administratörerna",
    frozenset({"admin-pager"}):
        "larmet går bara till administratörernas personsökare, inte till röntgen-IT:s "
        "brevlåda eller till Arkivet eller LARS",
    frozenset({"it-mail"}):
        "larmet går bara till röntgen-IT:s brevlåda, inte till administratörernas "
        "personsökare eller till Arkivet eller LARS",
    frozenset({"deadman"}):
        "Larmet går bara till mottagaren `deadman`",
}


def section(text: str, heading: str) -> str:
    body = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return " ".join(body.split())


@pytest.mark.parametrize("name", runbooks.names())
def test_each_runbook_names_the_receivers_alertmanager_sends_its_alert_to(name: str) -> None:
    """The receiver sentence follows the generated routing, so it cannot drift from it."""
    rule = next(rule for rule in rules() if rule["alert"] == name)
    reached = frozenset(receivers_of({"alertname": name, **rule["labels"]}))
    roles = section(runbooks.source(name) or "", "Roller")
    assert ROLE_SENTENCES[reached] in roles, (name, sorted(reached))
    for other, sentence in ROLE_SENTENCES.items():
        if other != reached:
            assert sentence not in roles, (name, sorted(reached))
    if "admin-pager" not in reached:
        assert "administratörerna och IT" not in (runbooks.source(name) or ""), name


def test_route_on_fallback_says_it_reaches_the_communicators_not_the_pager() -> None:
    meaning = section(runbooks.source("RouteOnFallback") or "", "Betydelse")
    assert "inget personsökarlarm" not in meaning
    assert "det når Arkivet eller LARS och röntgen-IT:s brevlåda, men inte " \
           "administratörernas personsökare" in meaning


@pytest.mark.slow
def test_the_python_route_walk_agrees_with_amtool() -> None:
    """The walk above is only as good as its agreement with Alertmanager's own."""
    for rule in rules():
        labels = {"alertname": rule["alert"], **rule["labels"]}
        result = subprocess.run(
            [require("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
             *(f"{k}={v}" for k, v in labels.items())],
            capture_output=True, text=True, check=True)
        assert result.stdout.strip() == ",".join(receivers_of(labels)), rule["alert"]


EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))


def probe_targets(text: str) -> list[tuple[str, str]]:
    """(target, exit-code note) of every `dicom-exporter probe` line in a runbook's code."""
    return re.findall(r"^dicom-exporter probe --config\.file \S+ (\S+).*?(# slutstatus .*)$",
                      text, re.MULTILINE)


@pytest.mark.parametrize("name", runbooks.names())
def test_every_site_config_has_a_target_the_runbook_probes(name: str) -> None:
    """A site pastes the command that names its own target: each example config (the
    central one, Växjö, Ljungby) finds one, and a target missing is exit code 2, said."""
    from exporter import config as exporter_config

    probed = probe_targets(runbooks.source(name) or "")
    if not probed:
        return
    for example in EXAMPLES:
        targets = set(exporter_config.load(str(example)).targets)
        assert {target for target, _ in probed} & targets, (name, example.name)
        for target, note in probed:
            if target not in targets:
                assert "2: målet finns inte" in note, (name, target, example.name)


def test_the_link_computer_runbook_covers_a_refused_ct_and_counts_one_alert_per_site() -> None:
    """The rule pages for every module of a link computer (a refused CT closes the hop
    as much as a dead computer: promtool case in alerts/promtool_cases.py), and it
    groups by target, not by site: two alerts in one notification."""
    by_name = {rule["alert"]: rule for rule in rules()}
    expr = by_name["DicomLinkComputerDown"]["expr"]
    # Every module: tcp and echo as they are, the others (negotiate, store) over two of
    # their slower scrapes; no module left out.
    reach = re.findall(r'prober(=~|!~)"([^"]+)"', expr)
    assert {op for op, _ in reach} == {"=~", "!~"} and len({kinds for _, kinds in reach}) == 1
    text = " ".join((runbooks.source("DicomLinkComputerDown") or "").split())
    assert "svarar men tar inte emot CT" in text
    assert "ett larm, inte två" not in text
    assert "två larm, ett per plats" in text
    grouping = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))["route"]["group_by"]
    assert "site" not in grouping and "target" in grouping


MONITORING_RUNBOOKS = ("DicomExporterDown", "DicomExporterConfigReloadFailed",
                       "DicomExporterScheduleStalled", "DicomProbeScrapeFailing",
                       "DicomProbesStale", "DicomLinkComputerErrorBudgetBurn",
                       "DicomPartnerErrorBudgetBurn", "DicomHolidayCalendarEnding", "Watchdog")


@pytest.mark.parametrize("name", MONITORING_RUNBOOKS)
def test_monitoring_runbooks_mark_their_advice_and_quote_no_escalation(name: str) -> None:
    """The routine has nothing on faults of the monitoring: its Åtgärd is ours, and its
    "Administratör kontakter sedan IT." belongs to transfer-fault troubleshooting."""
    text = runbooks.source(name) or ""
    assert "inte i rutinen" in section(text, "Åtgärd").split(".")[0]
    escalation = section(text, "Eskalering")
    assert "”" not in escalation and "inte i rutinen" in escalation


def test_scrape_failing_queries_the_jobs_its_rule_covers() -> None:
    rule = next(rule for rule in rules() if rule["alert"] == "DicomProbeScrapeFailing")
    job = re.search(r'job=~?"[^"]+"', rule["expr"])
    assert job
    text = runbooks.source("DicomProbeScrapeFailing") or ""
    queries = re.findall(r"job=~?\"[^\"]+\"", section(text, "Diagnos"))
    assert queries and all(query == job[0] for query in queries), queries


def test_the_index_gives_moving_the_patient_only_for_skane() -> None:
    text = (ROOT / "runbooks" / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if "[NoRouteAvailable]" in line)
    assert "flytta patienten" not in row
    assert "bara för Skåne" in row


@pytest.mark.parametrize("name", ("DicomEchoLatencyHigh", "DicomTLSCertificateExpiringSoon"))
def test_early_warnings_quote_no_escalation_of_the_routine(name: str) -> None:
    """A slow echo or a certificate about to expire is no transfer fault yet: the
    routine's "Administratör kontakter sedan IT." (its troubleshooting of transfer
    faults) is not these alerts' escalation; ours is marked as ours."""
    escalation = section(runbooks.source(name) or "", "Eskalering")
    assert "”" not in escalation and "inte i rutinen" in escalation


def test_partner_unreachable_maps_every_reason_it_can_carry_to_the_routines_causes() -> None:
    """The reason → cause table is the exporter's own mapping (exporter/reasons.py), for
    every reason the alert can carry: none left out, none mapped by hand."""
    text = runbooks.source("DicomPartnerUnreachable") or ""
    table = routine.cause_table(routine.PARTNER_UNREACHABLE_REASONS, "partner")
    assert text.index("## Diagnos") < text.index(table) < text.index("## Åtgärd")
    rule = next(rule for rule in rules() if rule["alert"] == "DicomPartnerUnreachable")
    excluded = set(Reason) - set(routine.PARTNER_UNREACHABLE_REASONS)
    # Left out only: what the rule itself leaves out (AE rejections), what an echo
    # cannot give (the store's verification) and our own shutdown.
    assert {r.value for r in routine.AE_REJECTIONS} == set(
        re.search(r'reason=~"([^"]+)"', rule["expr"])[1].split("|"))
    assert excluded == routine.AE_REJECTIONS | routine.VERIFY_REASONS | {Reason.SHUTDOWN}
    for reason in ("reset", "tls", "aborted", "rejected_other"):
        assert f"| `{reason}` |" in table
