"""`acd status` names a pair's controllers ([ha]) as `acd monitor` does."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import acd.cli.supervisor as supervisor
from acd.cli import cli
from acd.runtime.topics import Topics, encode, status_payload
from acd.tools.monitor_view import MonitorState

T = Topics("acd/v1", "town-hall")
NOW = 1_795_860_000.0
BASE = status_payload(True, ts=NOW, since=NOW - 60, seq=1, version="0.1.0")


def status_of(monkeypatch, payload: dict) -> str:
    state = MonitorState(T, timezone="UTC", broker="up")
    state.apply(T.status, encode(payload))
    monkeypatch.setattr(supervisor, "read_snapshot", lambda *args: state.snapshot(NOW))
    result = CliRunner().invoke(cli, ["status", "--site", "town-hall"])
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines() if line.startswith("controller:"))


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({}, "controller: online since 09:59:00, version 0.1.0"),
        (
            {"role": "active", "instance": "pc-a", "standby": "pc-b"},
            "controller: pc-a online since 09:59:00, standby: pc-b, version 0.1.0",
        ),
        (
            {"role": "active", "instance": "pc-b", "standby": None},
            "controller: pc-b online since 09:59:00, standby: none, version 0.1.0",
        ),
        (
            {"role": "standby", "instance": "pc-b", "active": "pc-a"},
            "controller: pc-b STANDBY, active: pc-a, version 0.1.0",
        ),
    ],
)
def test_status_names_the_pair(monkeypatch, extra, line):
    assert status_of(monkeypatch, BASE | extra) == line


def test_status_of_a_dead_active_one_says_who(monkeypatch):
    will = {"online": False, "reason": "connection_lost", "role": "active", "instance": "pc-a"}
    assert status_of(monkeypatch, will) == "controller: pc-a OFFLINE (connection_lost)"
