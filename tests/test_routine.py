"""The routine as one source of truth: quotes are the routine's words, the runbooks'
"Gör nu" is the model's, and the status page, the CLI and the alert give the same
next step for the same state."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alerts.scenarios import NEXT, fallback
from exporter import config as config_module
from exporter import routine
from exporter.config import ConfigError
from exporter.demo.embedded import on_loopback
from exporter.reasons import Reason, causes
from exporter.stats import Series, Snapshot
from exporter.web import oncall, runbooks
from tests.support.realpeers import free_port

ROOT = Path(__file__).parent.parent
COPY = ROOT / "runbooks" / "reservrutin-bildoverforing.txt"
EXAMPLE = ROOT / "examples" / "kronoberg.yml"
CONFIG = config_module.load(EXAMPLE)
NOW = 1_800_000_000.0
GE_DOCUMENT = "”Vem ringa...”"


def _flat(text: str) -> str:
    return " ".join(text.split())


ROUTINE_TEXT = _flat(COPY.read_text(encoding="utf-8"))


def quotes(text: str) -> list[str]:
    """Every span presented as the routine's words: between ” and ”."""
    text = _flat(text).replace(GE_DOCUMENT, "\0")
    return [q.replace("\0", GE_DOCUMENT) for q in re.findall(r"”([^”]+)”", text)]


def test_the_repository_copy_of_the_routine_is_verbatim() -> None:
    candidates = [ROOT.parent / "shared" / "seed" / COPY.name,
                  Path("/work/shared/seed") / COPY.name]
    source = next((path for path in candidates if path.is_file()), None)
    if source is None:
        pytest.skip("the governed routine (../shared/seed) is not beside this checkout")
    assert COPY.read_bytes() == source.read_bytes()


def test_every_quote_in_the_routine_model_is_the_routines_text() -> None:
    quoted = CONFIG.routine.quotes()
    assert len(quoted) >= 19
    for text in quoted:
        assert _flat(text) in ROUTINE_TEXT, text


def test_the_routines_causes_are_quoted_verbatim() -> None:
    routine_model = CONFIG.routine
    assert (len(routine_model.send_causes), len(routine_model.receive_causes)) == (6, 5)
    for text in [*routine_model.send_causes, *routine_model.receive_causes]:
        assert _flat(text) in ROUTINE_TEXT, text


SHOWN = [*sorted((ROOT / "runbooks").glob("*.md")), ROOT / "alerts" / "dicom.rules.yml",
         ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", SHOWN, ids=lambda p: p.name)
def test_every_sentence_shown_as_the_routines_is_in_it(path: Path) -> None:
    found = quotes(path.read_text(encoding="utf-8"))
    assert found or path.name not in {"dicom.rules.yml", "DicomLinkComputerDown.md"}
    for text in found:
        # Short quoted terms (a field, a label value) are not claims about the routine.
        if len(text.split()) < 4 or text.startswith(("skicka ", "Problem med att")):
            continue
        assert text in ROUTINE_TEXT, f"{path.name}: ”{text}”"


def test_the_vantage_point_configs_carry_the_same_routine() -> None:
    for site in ("vaxjo", "ljungby"):
        assert config_module.load(ROOT / "examples" / f"{site}.yml").routine == CONFIG.routine


@pytest.mark.parametrize("alert", sorted(routine.SITUATION_OF_ALERT))
def test_each_runbook_starts_with_the_models_steps(alert: str) -> None:
    text = runbooks.source(alert) or ""
    match = re.search(r"^## Gör nu\n\n(.*?)\n\n## ", text, re.S | re.M)
    assert match, alert
    assert match.group(1) == routine.runbook_steps(CONFIG, alert)


def test_our_own_steps_are_marked_and_quotes_are_not() -> None:
    for step in CONFIG.routine.steps.values():
        text = routine.step_text(step)
        assert text.endswith("(inte i rutinen):" if step.heading else "(inte i rutinen).") \
            != step.quote, text


# -- the same next step everywhere ---------------------------------------------
def _snapshot(down: dict[str, Reason]) -> Snapshot:
    series = {}
    for target in CONFIG.targets.values():
        for module in target.modules:
            reason = down.get(target.name)
            series[(target.name, module)] = Series(
                count=1, last_success=reason is None, last_time=NOW - 5, last_reason=reason,
                last_duration=0.002)
    return Snapshot(series, True, NOW - 100, 0)


def _promtool_next_steps() -> dict[tuple[str, str], set[str]]:
    """(alert, target or route) -> the next steps the committed promtool cases expect."""
    cases = yaml.safe_load((ROOT / "alerts" / "dicom.rules.test.yml").read_text("utf-8"))
    out: dict[tuple[str, str], set[str]] = {}
    for case in cases["tests"]:
        for check in case.get("alert_rule_test", []):
            for alert in check["exp_alerts"]:
                step = alert["exp_annotations"].get("next_step")
                labels = alert["exp_labels"]
                key = labels.get("target") or labels.get("route") or labels.get("site", "")
                if step:
                    out.setdefault((check["alertname"], key), set()).add(step)
    return out


@pytest.mark.parametrize(("down", "alert", "key", "expected"), [
    ({"z97117": Reason.REFUSED}, "DicomLinkComputerDown", "z97117",
     NEXT[("link_computer_down", "z97117")]),
    ({"skane": Reason.CONNECT_TIMEOUT}, "DicomPartnerUnreachable", "skane",
     NEXT[("partner_unreachable", "skane")]),
    ({"skane": Reason.REJECTED_CALLING_AE}, "DicomPartnerRejectsAssociation", "skane",
     NEXT[("partner_rejects", "default")]),
])
def test_status_page_cli_and_alert_give_the_same_next_step(
    down: dict[str, Reason], alert: str, key: str, expected: str, tmp_path: Path,
) -> None:
    # The alert, as Prometheus renders it: the committed promtool case expects exactly
    # this text for this state (test_alerts runs promtool on it).
    assert expected in _promtool_next_steps()[(alert, key)]
    # The status page.
    faults = [f for f in oncall.build(CONFIG, _snapshot(down), NOW).faults if f.runbook == alert]
    assert [f.next_step for f in faults] == [expected]
    # The CLI, run for real against a closed port on 127.0.0.1 (refused) or, for the
    # rejection, through the same renderer the CLI calls.
    [(name, reason)] = down.items()
    if reason is Reason.REFUSED:
        document = on_loopback(yaml.safe_load(EXAMPLE.read_text("utf-8")),
                               {name: free_port()})
        path = tmp_path / "config.yml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "--log.level", "error", "probe",
             "--config.file", str(path), name, "--module", "echo"],
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        printed = result.stdout
    else:
        printed = "\n".join(routine.cli_lines(CONFIG, CONFIG.targets[name], "echo", reason))
    assert f"nästa steg {expected}\n" in printed + "\n"


def test_route_advice_is_the_same_on_the_page_and_in_the_alert() -> None:
    result = oncall.build(CONFIG, _snapshot({"z97117": Reason.REFUSED}), NOW)
    routes = {r.name: r for r in result.routes}
    assert routes["vaxjo-skane"].next_step == fallback("Ljungby skickar via Blekinge",
                                                       reading=True)
    promtool = _promtool_next_steps()
    assert fallback("Ljungby skickar via Halland", reading=True) in promtool[
        ("RouteOnFallback", "vaxjo-skane")]


# -- causes by role and direction ------------------------------------------------
def test_a_refused_link_computer_is_only_its_own_cause() -> None:
    z97117 = CONFIG.targets["z97117"]
    lines = routine.cause_lines(CONFIG, z97117, Reason.REFUSED)
    assert lines == ["skicka 2: ”Länkadator Z97117 är ur funktion/avstängd.”",
                     "ta emot 1: ”Mottagande dator Z83680 eller Z97117 är ur "
                     "funktion/avstängd”"]
    z83680 = routine.cause_lines(CONFIG, CONFIG.targets["z83680"], Reason.CONNECT_TIMEOUT)
    assert z83680[0] == "skicka 1: ”Avsändande dator Z83680 är ur funktion.”"


def test_a_refused_partner_cannot_receive_and_is_never_a_link_computer() -> None:
    found = causes(Reason.REFUSED, "partner", "send")
    assert (found.send_causes, found.receive_causes) == ((6,), (5,))


def test_receive_side_causes_name_our_receiver() -> None:
    found = causes(Reason.STATUS_WARNING, "link_computer", "receive")
    assert (found.send_causes, found.receive_causes) == ((), (2,))  # already on Z97117
    assert causes(Reason.REJECTED_CALLING_AE, "link_computer", "receive").receive_causes == (3,)
    # Our receiver turning a partner away for another reason (e.g. overloaded) is our
    # receiving computer (1) or the configuration (3), never "the sending region" (5).
    assert causes(Reason.REJECTED_OTHER, "link_computer", "receive").receive_causes == (1, 3)
    assert causes(Reason.NO_ACCEPTED_CONTEXT, "link_computer", "receive").receive_causes == (3,)


def test_an_expired_certificate_is_configuration_not_the_firewall() -> None:
    found = causes(Reason.TLS, "partner", "send")
    assert 4 not in found.send_causes and found.send_causes == (5,)


def test_an_abort_after_our_request_is_an_ae_permission_problem() -> None:
    found = causes(Reason.ABORTED, "partner", "send", phase="dimse")
    assert (found.send_causes, found.receive_causes) == ((5,), (3,))
    assert "behörighet" in found.explanation
    assert causes(Reason.ABORTED, "partner", "send").send_causes == (4, 6)


def test_dcmqrscp_answering_called_ae_for_an_unknown_calling_ae_is_explained() -> None:
    assert "dcmqrscp" in routine.explanation(Reason.REJECTED_CALLED_AE)


# -- the config section --------------------------------------------------------
def _with(document_edit) -> str:
    document = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    document_edit(document)
    return yaml.safe_dump(document, allow_unicode=True)


def test_unknown_steps_subjects_and_situations_are_config_errors() -> None:
    def edit(document: dict) -> None:
        situations = document["routine"]["situations"]
        situations["partner_unreachable"]["gotland"] = ["restart_both"]
        situations["no_route"]["default"].append("nonexistent")
        situations["lunch_break"] = {"default": ["ge"]}
    with pytest.raises(ConfigError) as error:
        config_module.parse(_with(edit), "k.yml")
    text = str(error.value)
    assert "k.yml: routine.situations.partner_unreachable.gotland: unknown subject" in text
    assert "k.yml: routine.situations.no_route.default[7]: unknown step 'nonexistent'" in text
    assert "k.yml: routine.situations.lunch_break: unknown field" in text


def test_a_step_is_either_a_quote_or_our_own() -> None:
    def edit(document: dict) -> None:
        document["routine"]["steps"]["ge"] = {"quote": "x", "own": "y"}
    with pytest.raises(ConfigError, match=r"routine\.steps\.ge: needs exactly one of quote"):
        config_module.parse(_with(edit), "k.yml")


def test_a_store_module_may_not_call_as_a_link_computer() -> None:
    def edit(document: dict) -> None:
        document["modules"]["store"]["calling_ae_title"] = "Z97117"
        document["modules"]["echo_as_z97117"] = {"prober": "echo", "timeout": "5s",
                                                 "calling_ae_title": "Z97117"}
    with pytest.raises(ConfigError) as error:
        config_module.parse(_with(edit), "k.yml")
    assert "k.yml: modules.store.calling_ae_title: a store module must not call" in str(
        error.value)
    assert "echo_as_z97117" not in str(error.value)  # echo may call as Z97117


def test_a_fallback_answers_only_hops_of_its_primary_path() -> None:
    def edit(document: dict) -> None:
        document["routes"]["vaxjo-skane"]["fallbacks"][0]["when_down"] = ["halland"]
    with pytest.raises(ConfigError, match=r"fallbacks\[0\].when_down\[0\]: 'halland' is not a "
                                          r"hop of the primary path"):
        config_module.parse(_with(edit), "k.yml")


def test_a_config_without_a_routine_has_no_next_steps_but_works() -> None:
    def edit(document: dict) -> None:
        del document["routine"]
    config = config_module.parse(_with(edit), "k.yml")
    fault = routine.target_fault(config, config.targets["skane"], "echo", Reason.REFUSED)
    assert fault is not None and fault.next_step == "" and fault.what.startswith(
        "DICOM till skane fungerar inte.")


# -- a quote only where the routine says it ---------------------------------------
# Written by hand from the routine, sentence by sentence: the situations (and, where
# the routine names one, the subject) each sentence is given for. "*": any subject.
FELSOKNING = {("link_computer_down", "*"), ("partner_unreachable", "*"),
              ("partner_rejects", "*"), ("partner_cannot_receive", "*"),
              ("all_partners_failing", "*"), ("no_route", "*"), ("receiver_rejects", "*"),
              ("restart", "*")}
RECEIVING = {("receiver_rejects", "*"), ("link_computer_down", "z97117"),
             ("link_computer_down", "z83680")}  # Rutin 2: the link computers receive
SKANE_CANNOT_RECEIVE = {("partner_unreachable", "skane"), ("partner_cannot_receive", "skane"),
                        ("no_route", "skane")}
QUOTE_SITUATIONS = {
    # Felsökning: the order for any transfer problem, sending or receiving.
    "Felsökning måste börja med att starta om länka-dator Z97117 (Växjö) och Z83680 "
    "(Ljungby).": FELSOKNING,
    "Därefter får ni ta kontakt med mottagande/sändande enhet för att höra om de har några "
    "störningar i DICOM-överföring.": FELSOKNING,
    "Har vi störningar i överföring till/från andra enheter?": FELSOKNING,
    "Kontakta sedan leverantör GE enligt dokument ”Vem ringa...”": FELSOKNING,
    "Kontakta administratör eller någon av cheferna.": FELSOKNING,
    "Administratör kontakter sedan IT.": FELSOKNING,
    # The routine's headings: Felsökning, and Rutin's two parts, which a link computer
    # (it sends and receives) shows both of.
    "Felsökning": {("link_computer_down", "z97117"), ("link_computer_down", "z83680")},
    "Driftstörning i överföring från Växjö/Ljungby till annan mottagare": {
        ("link_computer_down", "z97117"), ("link_computer_down", "z83680")},
    "Driftstörning i överföring till Växjö/Ljungby från avsändande enhet": RECEIVING,
    # Rutin 1, Z97117 ur funktion.
    "Starta om datorn och prova igen.": {("link_computer_down", "z97117"),
                                         ("restart", "z97117")},
    "Ljungby skicka undersökningar via Blekinge, Halland eller Jönköping.": {
        ("link_computer_down", "z97117")},
    "Bränna en DVD på dator med Intellispace portal \N{EN DASH} lämpligen på dator i "
    "granskningen.": {("link_computer_down", "z97117"), ("last_resort", "z97117")},
    # Rutin 1, Z83680 ur funktion.
    "Starta om datorn samt att Växjö starta om länka-datorn Z97117.": {
        ("link_computer_down", "z83680"), ("restart", "z83680")},
    "Växjö skickar undersökningar.": {("link_computer_down", "z83680")},
    "Ljungby får bränna DVD på dator med Intellispace Portal \N{EN DASH} lämpligen på dator i "
    "granskningen.": {("link_computer_down", "z83680"), ("last_resort", "z83680")},
    # Rutin 1, Region Skåne.
    "Om Region Skåne inte kan ta emot undersökningar kan vi prova skicka via Blekinge eller "
    "Halland.": SKANE_CANNOT_RECEIVE,
    "Kan Region Skåne inte ta emot bildöverföring från någon annan region, måste det "
    "övervägas att skicka patienten till annan region. Remitterande enhet måste då ta den "
    "kontakten med denna region.": {("last_resort", "skane")},
    "Vi kan även bränna DVD för att skicka med patienttransporten.": {("last_resort", "skane")},
    # Rutin 2: to Växjö/Ljungby.
    "Starta om länkadatorn och be dem skicka igen.": RECEIVING,
    "I vissa fall kan de skicka via andra enheter, tex. kan Skåne skicka via Blekinge eller "
    "Halland (och vice versa).": RECEIVING,
    "Vid akuta fall får de skicka DVD/CD.": RECEIVING,
    # Roller: who communicates any transfer fault.
    "Personal i Arkivet samt LARS under jouren, ansvarar för att kommunicera överföringsfel "
    "in röntgen/klinfys.": {*FELSOKNING, ("route_fallback", "*")},
    # Bakgrund: the ranking, shown beside the partners, in no situation's steps.
    "De viktigaste regionerna är Skåne, Blekinge, Östra Götaland och Jönköping. Västra "
    "Götaland är viktig för donationer.": set(),
}


def test_the_hand_written_table_covers_every_quote_of_the_model() -> None:
    quoted = {step.text for step in CONFIG.routine.steps.values() if step.quote}
    assert quoted == set(QUOTE_SITUATIONS)
    for text in QUOTE_SITUATIONS:
        assert _flat(text) in ROUTINE_TEXT, text


def test_each_quote_is_used_only_in_a_situation_the_routine_gives_it_for() -> None:
    """Every situation's steps (alerts, runbooks, status page and CLI all render them):
    a quote under a subject, or under `default` (any subject), must be the routine's
    for that situation and subject."""
    misplaced = []
    for situation, table in CONFIG.routine.situations.items():
        for subject, keys in table.items():
            for key in keys:
                step = CONFIG.routine.steps.get(key)
                if step is None or not step.quote:  # a slot: its own situation's steps
                    continue
                allowed = QUOTE_SITUATIONS[step.text]
                if (situation, "*") in allowed or (
                        subject != "default" and (situation, subject) in allowed):
                    continue
                misplaced.append(f"{situation}.{subject}: {step.text}")
    assert not misplaced, "\n".join(misplaced)


def test_the_routines_ranking_is_where_partners_are_read_about() -> None:
    ranking = routine.ranking(CONFIG)
    assert ranking.startswith("”De viktigaste regionerna är Skåne")
    for alert in ("DicomPartnerUnreachable", "DicomPartnerCannotReceive",
                  "DicomPartnerRejectsAssociation", "DicomAllPartnersFailing",
                  "NoRouteAvailable"):
        assert ranking in _flat(runbooks.source(alert) or ""), alert
    assert oncall.build(CONFIG, _snapshot({}), NOW).ranking == ranking
    # The example no longer calls one region "the most important partner".
    assert "most important partner" not in EXAMPLE.read_text(encoding="utf-8")


def test_the_last_resort_and_the_first_step_are_chosen_from_what_is_down() -> None:
    """No path open (or a fallback taken): the routine's words for the hop that is
    down, never a sentence it gives for another fault. A route to Skåne also closes
    when the link computers are down and Skåne is fine: then no "send the patient
    elsewhere" (the routine gives it for Skåne not receiving), but Z97117's DVD
    sentence; Skåne down gives Skåne's; a region the routine says nothing of gets our
    DVD advice, marked. The alert rules carry the same words per hop."""
    patient = "”Kan Region Skåne inte ta emot bildöverföring från någon annan region"
    z97117_dvd = "”Bränna en DVD på dator med Intellispace portal"
    z83680_dvd = "”Ljungby får bränna DVD"
    ours = "Bränn DVD på dator med IntelliSpace Portal i granskningen om undersökningen är " \
           "akut (inte i rutinen)."
    to_skane, from_ljungby = CONFIG.routes["vaxjo-skane"], CONFIG.routes["ljungby-skane"]
    links_only = _flat(routine.no_route_next_step(CONFIG, to_skane, {"z97117"}))
    assert z97117_dvd in links_only and patient not in links_only and ours not in links_only
    skane = _flat(routine.no_route_next_step(CONFIG, to_skane, {"skane", "blekinge"}))
    assert patient in skane and z97117_dvd not in skane
    both = routine.last_resort(CONFIG, from_ljungby, {"z83680", "z97117", "skane"})
    assert both.index(z83680_dvd) < both.index(z97117_dvd) < both.index(patient)
    blekinge = routine.no_route_next_step(CONFIG, CONFIG.routes["vaxjo-blekinge"], {"blekinge"})
    assert ours in blekinge and "”" + "Bränna" not in blekinge and patient not in blekinge
    # The page and the alert read the same choice: the status page for a state ...
    down = {"z97117": Reason.REFUSED, "z83680": Reason.REFUSED}
    page = {r.name: r for r in oncall.build(CONFIG, _snapshot(down), NOW).routes}
    assert page["vaxjo-skane"].status == "none"
    assert patient not in page["vaxjo-skane"].next_step
    assert z97117_dvd in page["vaxjo-skane"].next_step
    # ... and the rule, which asks Prometheus what is down when it fires.
    rules = (ROOT / "alerts" / "dicom.rules.yml").read_text(encoding="utf-8")
    assert "Om det är Skåne som inte kan ta emot" not in rules
    assert 'dicom_route_hop_state{instance="%s",target="skane",state="down"}' in rules
    # RouteOnFallback: the routine's first step for the fault (Rutin 1, punkt 1).
    path = next(p for p in to_skane.fallbacks if p.name == "Ljungby skickar via Blekinge")
    fallback_step = routine.fallback_next_step(CONFIG, to_skane, path, {"z97117"})
    assert "1. ”Starta om datorn och prova igen.”" in fallback_step
    z83680 = next(p for p in from_ljungby.fallbacks if p.name == "Växjö skickar")
    assert "1. ”Starta om datorn samt att Växjö starta om länka-datorn Z97117.”" in \
        routine.fallback_next_step(CONFIG, from_ljungby, z83680, {"z83680"})


def test_a_when_of_a_step_must_be_words() -> None:
    def edit(document: dict) -> None:
        document["routine"]["steps"]["skane_patient"]["when"] = 3
    with pytest.raises(ConfigError, match=r"routine\.steps\.skane_patient\.when: must be a "):
        config_module.parse(_with(edit), "k.yml")


def test_every_situation_follows_the_routines_order() -> None:
    """Felsökning's steps keep the routine's order among themselves, and "Har vi
    störningar i överföring till/från andra enheter?" (one partner or all?) comes before
    any step of the routine's own Rutin section (the Skåne fallback, for one)."""
    troubleshooting_end = ROUTINE_TEXT.index("Problem med att skicka:")
    rutin_start = ROUTINE_TEXT.index("Rutin 1 Driftstörning")
    one_or_all = "Har vi störningar i överföring till/från andra enheter?"
    for situation, table in CONFIG.routine.situations.items():
        for subject, keys in table.items():
            quoted = [_flat(CONFIG.routine.steps[key].text) for key in keys
                      if key in CONFIG.routine.steps and CONFIG.routine.steps[key].quote]
            where = [ROUTINE_TEXT.index(text) for text in quoted]
            felsokning = [at for at in where if at < troubleshooting_end]
            assert felsokning == sorted(felsokning), f"{situation}.{subject}"
            if one_or_all in quoted:
                first = quoted.index(one_or_all)
                assert all(at < rutin_start for at in where[:first]), f"{situation}.{subject}"


def test_sending_and_receiving_steps_stand_under_the_routines_own_headings() -> None:
    """A link computer sends (Rutin 1) and receives (Rutin 2): the alert, the status page
    and the runbook show the two lists apart, each under the routine's heading and
    numbered from 1, as the routine does, never run together as one list."""
    rutin_2 = ROUTINE_TEXT.index("2 Driftstörning i överföring till Växjö/Ljungby")
    roller = ROUTINE_TEXT.index("Roller Personal")
    rutin_1 = ROUTINE_TEXT.index("Rutin 1 Driftstörning")
    mixed = 0
    for situation, table in CONFIG.routine.situations.items():
        for subject in table:
            steps = CONFIG.routine.steps_for(situation, subject)
            part = {rutin_1: 1, rutin_2: 2}
            parts = {1 if rutin_1 <= at < rutin_2 else 2
                     for step in steps if step.quote and not step.heading
                     and rutin_1 <= (at := ROUTINE_TEXT.index(_flat(step.text))) < roller}
            if parts != {1, 2}:
                continue
            mixed += 1
            for heading, items in routine.sections(steps):
                assert heading is not None, f"{situation}.{subject}: steps before a heading"
                where = ROUTINE_TEXT.index(heading.text)
                own_part = part[max(at for at in part if at <= where)] if where >= rutin_1 \
                    else None
                for step in items:
                    if step.quote and rutin_1 <= ROUTINE_TEXT.index(_flat(step.text)) < roller:
                        at = ROUTINE_TEXT.index(_flat(step.text))
                        assert own_part == (1 if at < rutin_2 else 2), (situation, subject,
                                                                        step.text)
            text = routine.next_step(CONFIG, situation, subject)
            assert text.index("”Driftstörning i överföring från") < text.index(
                "”Driftstörning i överföring till") < text.index("”Starta om länkadatorn och be")
    assert mixed == 2  # Z97117 and Z83680
    page = runbooks.source("DicomLinkComputerDown") or ""
    assert page.count("*”Driftstörning i överföring till Växjö/Ljungby från avsändande "
                      "enhet”:*") == 2


def test_a_heading_flag_must_be_a_boolean() -> None:
    def edit(document: dict) -> None:
        document["routine"]["steps"]["sending"]["heading"] = "yes"
    with pytest.raises(ConfigError, match=r"routine\.steps\.sending\.heading: must be true or "):
        config_module.parse(_with(edit), "k.yml")


def test_the_configs_last_resort_is_shown_as_ours_wherever_it_is_read() -> None:
    """The config's `last_resort` ("bränn DVD på dator med IntelliSpace Portal i
    granskningen") rewords the routine: the status page's advice and the CLI's route
    table mark it as ours; the routine's own sentence is in the next step."""
    from exporter.cli import route_table
    from exporter.route_state import current

    down = {"z97117": Reason.REFUSED, "z83680": Reason.REFUSED}
    page = oncall.build(CONFIG, _snapshot(down), NOW)
    nones = [r for r in page.routes if r.status == "none"]
    assert nones and all(r.advice.endswith("(inte i rutinen).") for r in nones)
    assert all("”Bränna en DVD på dator med Intellispace portal" in r.next_step
               for r in nones if r.name.startswith("vaxjo-"))
    lines = route_table(CONFIG, current(CONFIG, _snapshot(down), NOW))
    last = [line for line in lines if line.strip().startswith("sista utväg")]
    assert len(last) == len(CONFIG.routes)
    assert all(line.endswith("(inte i rutinen).") for line in last)
