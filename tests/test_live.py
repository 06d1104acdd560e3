"""The one reload owner (exporter.live): both files reload through it, a swap
moves the generation on, a bad file changes nothing that runs, and the running
state beside the web config (rate-limit bucket, verified passwords) is handed
on only while the config leaves it unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import config
from exporter.app import Exporter
from exporter.config import webconfig
from tests.support.webauth import basic, users_yaml

EXAMPLES = Path(__file__).parent.parent / "examples"


def _exporter(tmp_path: Path) -> tuple[Exporter, Path, Path]:
    path = tmp_path / "exporter.yml"
    path.write_text((EXAMPLES / "kronoberg.yml").read_text(encoding="utf-8"), encoding="utf-8")
    web = tmp_path / "web.yml"
    web.write_text(users_yaml(prometheus="first").rstrip("\n")
                   + "\nrate_limit: {interval: 60s, burst: 5}\n")
    exporter = Exporter(config.load(path), str(path))
    exporter.live.serve_web(webconfig.load(web))
    return exporter, path, web


def _gauge(exporter: Exporter) -> float | None:
    return exporter.registry.get_sample_value("dicom_exporter_config_last_reload_successful")


def test_a_reload_swaps_both_files_and_moves_the_generation_on(tmp_path: Path) -> None:
    exporter, path, web = _exporter(tmp_path)
    live = exporter.live
    before = live.current
    path.write_text(path.read_text().replace("results_max_age: 2m", "results_max_age: 3m"))
    web.write_text(users_yaml(prometheus="second"))
    assert exporter.reload() is None
    after = live.current
    assert after.generation == before.generation + 1
    assert after.config.results_max_age == 180.0 and exporter.config is after.config
    assert after.gate.authorized(basic("prometheus", "second"))
    assert not after.gate.authorized(basic("prometheus", "first"))
    assert after.gate.limiter is None  # the new file has no rate limit
    assert _gauge(exporter) == 1


def test_a_web_only_reload_keeps_the_generation(tmp_path: Path) -> None:
    """The generation is the exporter config's: a certificate rotation does not
    make running probes' results stale."""
    exporter, _, _ = _exporter(tmp_path)
    generation = exporter.live.generation
    assert exporter.live.reload_web() is None
    assert exporter.live.generation == generation


def test_a_bad_file_changes_nothing_that_runs(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    exporter, path, web = _exporter(tmp_path)
    before = exporter.live.current
    web.write_text("basic_auth_users: [\n")
    problems = exporter.reload()
    assert problems is not None and problems.startswith(f"{web}: ")
    assert exporter.live.current.web is before.web
    assert exporter.live.current.gate is before.gate
    # The exporter config itself was good: it was swapped, the gauge says the web one failed.
    assert exporter.live.generation == before.generation + 1
    assert _gauge(exporter) == 0
    path.write_text("modules: [\n")
    web.write_text(users_yaml(prometheus="first"))
    exporter.reload()
    assert exporter.live.generation == before.generation + 1 and _gauge(exporter) == 0
    path.write_text((EXAMPLES / "kronoberg.yml").read_text(encoding="utf-8"))
    assert exporter.reload() is None and _gauge(exporter) == 1


def test_the_running_state_is_handed_on_only_while_its_config_is_unchanged(
        tmp_path: Path) -> None:
    exporter, _, web = _exporter(tmp_path)
    live = exporter.live
    first = live.current.gate
    assert live.reload_web() is None
    assert live.current.gate.limiter is first.limiter
    assert live.current.gate.passwords is first.passwords
    web.write_text(users_yaml(prometheus="first").rstrip("\n")
                   + "\nrate_limit: {interval: 60s, burst: 9}\n")
    assert live.reload_web() is None
    assert live.current.gate.limiter is not first.limiter
    assert live.current.gate.passwords is not first.passwords  # a new salt: hashed again


def test_a_built_in_config_has_nothing_to_reload() -> None:
    exporter = Exporter(config.load(EXAMPLES / "kronoberg.yml"))
    assert exporter.reload() == "no configuration file to reload (built-in configuration)"
