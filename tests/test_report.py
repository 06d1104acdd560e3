"""The monthly report's computation and rendering, on hand-made samples (no Prometheus).

The backfilled-Prometheus test (test_report_backfill.py) checks the same
figures end to end; these pin each rule of the computation on its own.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from exporter.availability import figures, monthly, render
from exporter.availability import timeline as tl
from exporter.routine import itops as words

MIN = 60.0


def samples(start: float, values: str, step: float = MIN) -> list[tuple[float, float]]:
    """ "11 0 1": one sample per step, space = no sample (a gap)."""
    return [(start + n * step, float(v)) for n, v in enumerate(values) if v != " "]


def test_a_sample_stands_until_the_next_and_a_gap_is_unknown() -> None:
    line = tl.from_samples(samples(0, "110   11"), 0, 8 * MIN)
    assert line == [tl.Segment(0, 120, tl.UP), tl.Segment(120, 180, tl.DOWN),
                    tl.Segment(180, 360, tl.UNKNOWN), tl.Segment(360, 480, tl.UP)]
    assert tl.ratio(line) == pytest.approx(240 / 300)


def test_one_lost_scrape_is_not_a_gap() -> None:
    line = tl.from_samples(samples(0, "11 11"), 0, 5 * MIN)
    assert line == [tl.Segment(0, 300, tl.UP)]


def test_the_sample_before_the_period_gives_the_state_at_its_start() -> None:
    line = tl.from_samples(samples(-30, "0111"), 0, 150)
    assert line == [tl.Segment(0, 30, tl.DOWN), tl.Segment(30, 150, tl.UP)]


def test_no_samples_at_all_is_all_unknown() -> None:
    assert tl.from_samples([], 0, 100) == [tl.Segment(0, 100, tl.UNKNOWN)]
    assert tl.ratio(tl.from_samples([], 0, 100)) is None


def test_combine_any_is_up_if_one_site_is_up_and_unknown_only_if_none_is_known() -> None:
    a = [tl.Segment(0, 100, tl.DOWN), tl.Segment(100, 200, tl.UNKNOWN)]
    b = [tl.Segment(0, 50, tl.UP), tl.Segment(50, 150, tl.DOWN), tl.Segment(150, 200, tl.UNKNOWN)]
    assert tl.combine([a, b], 0, 200, "any") == [
        tl.Segment(0, 50, tl.UP), tl.Segment(50, 150, tl.DOWN), tl.Segment(150, 200, tl.UNKNOWN)]
    assert tl.combine([a, b], 0, 200, "all") == [
        tl.Segment(0, 150, tl.DOWN), tl.Segment(150, 200, tl.UNKNOWN)]


def test_an_outage_is_a_down_run_longer_than_for_and_unknown_ends_it() -> None:
    line = tl.from_samples(samples(0, "1001000  0"), 0, 10 * MIN)
    found = tl.outages(line, 0, 10 * MIN, longer_than=MIN)
    assert [(o.start, o.end) for o in found] == [(60, 180), (240, 420)]
    assert tl.outages(line, 0, 10 * MIN, longer_than=120) == [found[1]]
    assert not found[1].lasts_beyond


def test_an_outage_cut_by_the_period_says_so() -> None:
    line = tl.from_samples(samples(-60, "00111100"), 0, 6 * MIN)
    first, last = tl.outages(line, 0, 6 * MIN, longer_than=30)
    assert (first.start, first.end, first.began_before, first.lasts_beyond) == (0, 60, True, False)
    assert (last.start, last.end, last.began_before, last.lasts_beyond) == (300, 360, False, True)


def probe(target: str, site: str, prober: str, values: str, role: str = "partner",
          start: float = 0, **extra: str) -> figures.Series:
    labels = {"target": target, "site": site, "prober": prober, "module": prober,
              "role": role, "ae_title": target.upper(), "region": target, **extra}
    return figures.Series(labels, samples(start, values))


def test_a_partner_down_from_one_site_only_is_up_and_that_site_shows_it() -> None:
    report = figures.build([
        probe("skane", "vaxjo", "echo", "1000001111"),
        probe("skane", "ljungby", "echo", "1111111111"),
        probe("skane", "vaxjo", "negotiate", "0000000000"),
    ], [], 0, 10 * MIN, {"partner": 60})
    (skane,) = report.targets
    assert skane.overall.availability == 1.0 and not skane.overall.outages
    assert skane.sites["vaxjo"].availability == pytest.approx(0.5)
    assert len(skane.sites["vaxjo"].outages) == 1
    assert skane.store_success is None


def test_a_link_computer_is_down_from_a_site_if_tcp_or_echo_fails() -> None:
    report = figures.build([
        probe("z97117", "vaxjo", "tcp", "1110011111", role="link_computer"),
        probe("z97117", "vaxjo", "echo", "1111100111", role="link_computer"),
        probe("z97117", "vaxjo", "echo", "0000000000", role="link_computer",
              direction="receive"),
    ], [], 0, 10 * MIN, {"link_computer": 20})
    (z,) = report.targets
    assert z.overall.down_seconds == 4 * MIN
    assert [(o.start, o.end) for o in z.overall.outages] == [(180, 420)]
    assert z.overall.mttr_seconds == 240


def test_store_success_and_alerts_are_per_target() -> None:
    alert = figures.Series({"__name__": "ALERTS", "alertname": "DicomPartnerUnreachable",
                            "alertstate": "firing", "target": "skane", "site": "vaxjo"},
                           samples(2 * MIN, "111"))
    other = figures.Series({"__name__": "ALERTS", "alertname": "DicomExporterDown",
                            "alertstate": "firing", "instance": "x"}, samples(0, "11"))
    report = figures.build([probe("skane", "vaxjo", "echo", "1111"),
                            probe("skane", "vaxjo", "store", "1101")],
                           [alert, other], 0, 4 * MIN, {"partner": 60})
    (skane,) = report.targets
    assert skane.store_success == pytest.approx(0.75)
    assert [(a.alertname, a.start, a.end) for a in skane.alerts] == [
        ("DicomPartnerUnreachable", 120, 240)]
    assert [a.alertname for a in report.other_alerts] == ["DicomExporterDown"]


def test_the_period_is_local_midnights_and_a_dst_month_has_an_extra_hour() -> None:
    start, end = monthly.period(date(2026, 10, 1), date(2026, 11, 1))
    assert end - start == 31 * 86400 + 3600
    assert render.local(start) == "2026-10-01 00:00"
    with pytest.raises(ValueError, match="--to"):
        monthly.period(date(2026, 11, 1), date(2026, 11, 1))


def test_numbers_have_a_decimal_comma_and_durations_read_as_people_say_them() -> None:
    assert render.percent(0.99954) == "99,95 %"
    assert render.percent(None) == words.NOT_APPLICABLE
    assert render.duration(45) == "45 s"
    assert render.duration(3 * 3600 + 5 * 60) == "3 h 5 min"
    assert render.duration(2 * 86400 + 3600) == "2 d 1 h"


def sample_report() -> figures.Report:
    return figures.build([
        probe("skane", "vaxjo", "echo", "1100011111"),
        probe("z97117", "vaxjo", "tcp", "1111111111", role="link_computer"),
    ], [], 0, 10 * MIN, {"partner": 60, "link_computer": 20})


def test_every_format_carries_the_same_figures_under_swedish_headings() -> None:
    report = sample_report()
    names = render.Names({"vaxjo": "Växjö"}, {"skane": "Skåne"})
    md = render.markdown(report, names)
    assert f"## {words.ROLE_HEADINGS['link_computer']}" in md
    assert "| Skåne (SKANE) | 70,00 % | 70,00 % | 1 | 3 min | 3 min |" in md
    page = render.html_page(report, names)
    assert page.count("<svg") == 2 and "70,00 %" in page and 'lang="sv"' in page
    data = json.loads(render.as_json(report, names))
    skane = next(t for t in data["targets"] if t["target"] == "skane")
    assert skane["availability"] == pytest.approx(0.7)
    assert skane["outage_count"] == 1 and skane["longest_outage_seconds"] == 180
    assert skane["sites"]["vaxjo"]["name"] == "Växjö"
    assert data["period"]["from"] == "1970-01-01T01:00:00+01:00"


CONFIG = "examples/kronoberg.yml"


def run_cli(*args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from exporter.cli import main
    result = CliRunner().invoke(main, ["report", f"--config.file={CONFIG}", *args])
    return result.exit_code, result.stdout, result.stderr


def test_an_unreachable_prometheus_is_one_line_not_a_traceback() -> None:
    from tests.support.realpeers import free_port
    code, out, err = run_cli(f"--prometheus.url=http://127.0.0.1:{free_port()}",
                             "--from=2026-11-01", "--to=2026-12-01")
    assert code == 1 and not out
    assert err.startswith("report: cannot read Prometheus at http://127.0.0.1:")
    assert len(err.strip().splitlines()) == 1


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    code, _, err = run_cli("--prometheus.url=http://127.0.0.1:9", "--from=2026-12-01",
                           "--to=2026-11-01")
    assert code == 1 and err.strip() == "report: --to 2026-11-01 must be after --from 2026-12-01"


def test_an_slo_objective_outside_0_and_1_is_one_line(tmp_path: Path) -> None:
    from exporter import config as config_module
    from exporter.config import ConfigError
    from exporter.monitoring import settings

    text = settings.CONFIG.read_text(encoding="utf-8").replace("link_computer: 0.999",
                                                               "link_computer: 99.9")
    path = tmp_path / "monitoring.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"slo_objective_by_role: link_computer: 99.9 is not"):
        settings.load(config_module.load(CONFIG), path)
