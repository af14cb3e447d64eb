"""`acd service install`: the unit, the directories and the user, into a directory tree."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.cli.service import Unit

ROOT = Path(__file__).resolve().parents[3]


def test_install_under_root_writes_the_notify_unit_and_the_directories(tmp_path):
    result = CliRunner().invoke(
        cli, ["service", "install", "--root", str(tmp_path), "--program", "/opt/acd/bin/acd"]
    )
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "etc/systemd/system/acd.service").read_text()
    assert unit == Unit("/opt/acd/bin/acd").text()
    for line in ("Type=notify", "WatchdogSec=30", "User=acd", "SupplementaryGroups=dialout"):
        assert line in unit.splitlines()
    assert "ExecStart=/opt/acd/bin/acd run --config /etc/acd/site.toml --db" in unit
    for d in ("etc/acd", "var/lib/acd"):
        assert (tmp_path / d).is_dir() and (tmp_path / d).stat().st_mode & 0o777 == 0o750
    assert "useradd --system" in result.output and "daemon-reload" in result.output
    again = CliRunner().invoke(cli, ["service", "install", "--root", str(tmp_path)])
    assert again.exit_code == 1 and "exists: give --force" in again.output


def test_store_from_config_leaves_the_store_to_the_configuration(tmp_path):
    """A PostgreSQL site or a pair: no --db in the unit, so [store] url is the store."""
    result = CliRunner().invoke(
        cli, ["service", "install", "--root", str(tmp_path), "--store-from-config"]
    )
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "etc/systemd/system/acd.service").read_text().splitlines()
    start = next(line for line in unit if line.startswith("ExecStart="))
    assert start.endswith(" run --config /etc/acd/site.toml"), start
    assert "WorkingDirectory=/var/lib/acd" in unit  # relative store and outbox paths land there


def test_dry_run_changes_nothing_and_shows_the_unit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["service", "install", "--dry-run", "--root", "img"])
    assert result.exit_code == 0 and "[Service]" in result.output
    assert not (tmp_path / "img").exists()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path):
    path = tmp_path / "acd.service"
    path.write_text(Unit(shutil.which("true") or "/bin/true").text())
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert "acd.service" not in done.stderr, done.stderr


def test_operations_guide_shows_the_unit_the_command_writes():
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"```ini\n(\[Unit\].*?)```", text, re.S)
    assert block and block.group(1) == Unit("/opt/acd/bin/acd").text()
