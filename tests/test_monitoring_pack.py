"""`dicom-exporter monitoring generate`: the installed program writes the monitoring pack.

The repository's committed files are this command's output for the example
config; a bad monitoring config is one line naming the file, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from exporter.cli import main as cli
from exporter.monitoring import pack
from tools.generate import EXAMPLE, ROOT


def generate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["monitoring", "generate", *args])
    return result.exit_code, result.output


def test_the_command_writes_the_committed_files_for_the_example_config(tmp_path: Path) -> None:
    code, output = generate("--config.file", str(EXAMPLE), "--out", str(tmp_path))
    assert code == 0, output
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written and pack.RULES in written
    for relative in written:
        assert (tmp_path / relative).read_text(encoding="utf-8") == (
            ROOT / relative).read_text(encoding="utf-8"), relative
    # Run again: nothing changes, nothing is rewritten.
    code, output = generate("--config.file", str(EXAMPLE), "--out", str(tmp_path))
    assert code == 0 and "0 files written" in output, output


def test_a_broken_monitoring_config_is_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "monitoring.yml"
    broken.write_text("jobs: {probe: dicom_probe}\n", encoding="utf-8")
    code, output = generate("--config.file", str(EXAMPLE), "--monitoring.file", str(broken),
                            "--out", str(tmp_path / "out"))
    assert code == 1
    assert output.count("\n") == 1 and output.startswith(str(broken)), output
    assert "Traceback" not in output and not (tmp_path / "out").exists()
