"""Scenario files: the shipped ones load; invalid ones get errors naming the key."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.errors import AcdError
from firmware_sim.scenario import load_scenario, shipped_scenarios

MINIMAL = """
[callers]
patience = { kind = "exponential", mean = 60 }
"""


def test_the_reference_site_scenarios_ship_and_agree_with_the_site():
    names = shipped_scenarios()
    for name in (
        "town-hall-weekday-250",
        "town-hall-weekday-700",
        "town-hall-saturday-250",
        "town-hall-saturday-700",
    ):
        assert name in names
        sc = load_scenario(name)
        assert sc.switch.trunks == 30 and sc.switch.service_numbers == ("3000",)
        plan = sc.traffic.plan_for(sc.day)
        assert plan is not None and plan.volume == int(name.rsplit("-", 1)[1])
        front = {a.agent_id: (a.extension, a.pin) for a in sc.agents if a.agent_id < "2000"}
        assert front == {f"100{i}": (f"20{i}", str(i) * 4) for i in range(1, 7)}
    weekday = load_scenario("town-hall-weekday-250")
    assert weekday.day.weekday() < 5 and load_scenario("town-hall-saturday-700").day.weekday() == 5
    specialists = {a.agent_id: (a.extension, a.pin) for a in weekday.agents if a.agent_id >= "2000"}
    assert specialists == {f"200{i}": (f"30{i}", f"900{i}") for i in range(1, 6)}
    groups = set(weekday.agents[0].behaviour.escalate_to)
    assert groups == {"civil-status", "town-planning", "social-services"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "callers.patience: section is required"),
        (MINIMAL + "[switch]\ntrunks = 0\n", "switch.trunks: must be at least 1"),
        (MINIMAL + "[switch]\ntrunk = 3\n", "switch.trunk: unknown key"),
        (MINIMAL + '[run]\nstart = "8h"\n', "run.start: '8h' is not a time of day"),
        (MINIMAL + '[run]\nstart = "10:00"\nend = "09:00"\n', "run.end: must be after"),
        (MINIMAL + '[run]\nday = "2026-02-30"\n', "run.day: '2026-02-30' is not a date"),
        (
            '[callers]\npatience = { kind = "gamma", mean = 3 }\n',
            "callers.patience.kind: must be one of",
        ),
        (
            '[callers]\npatience = { kind = "lognormal", mean = 3 }\n',
            "callers.patience.sd: is required",
        ),
        (
            '[callers]\npatience = { kind = "empirical", file = "nope.csv" }\n',
            "callers.patience.file: .*not found",
        ),
        (
            MINIMAL + '[traffic.week]\nmon = { volume = 10, profile = "x" }\n',
            "traffic.week.mon.profile: no profile 'x'",
        ),
        (MINIMAL + "[traffic.week.funday]\nvolume = 1\n", "traffic.week.funday: unknown day"),
        (
            MINIMAL + '[traffic.profiles.p]\nshares = [1, "a"]\n',
            "traffic.profiles.p.shares: must be a non-empty list",
        ),
        (
            MINIMAL + '[[agents]]\nid = "1"\nextension = "201"\npin = "1"\n'
            'behaviour = "b"\nshift = "s"\n',
            r"agents\[0\].behaviour: no behaviour 'b'",
        ),
        (MINIMAL + '[[faults]]\nkind = "cable"\n', r"faults\[0\].duration: is required"),
        (MINIMAL + '[[faults]]\nkind = "flood"\n', r"faults\[0\].kind: must be one of"),
        (MINIMAL + '[[calls]]\ncalling = "06"\n', r"calls\[0\].at: is required"),
        (MINIMAL + "colour = 3\n", "colour: unknown key"),
        ("[callers\n", "<syntax>"),
    ],
)
def test_invalid_scenarios_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(AcdError, match=message) as info:
        load_scenario(path)
    assert str(path) in str(info.value)


def test_empirical_durations_from_a_csv(tmp_path):
    (tmp_path / "talk.csv").write_text("seconds\n10\n20\n30\n")
    path = tmp_path / "ok.toml"
    path.write_text('[callers]\npatience = { kind = "empirical", file = "talk.csv" }\n')
    assert load_scenario(path).callers.patience.mean == 20.0
    (tmp_path / "talk.csv").write_text("seconds\n10\nlots\n")
    with pytest.raises(AcdError, match=r"talk.csv:3: 'lots' is not a number"):
        load_scenario(path)


def test_acd_sim_reports_a_bad_scenario_in_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + "[switch]\ntrunks = -1\n")
    result = CliRunner().invoke(cli, ["sim", "--pty", "--scenario", str(path)])
    assert result.exit_code == 1
    assert re.fullmatch(r"Error: .*switch\.trunks: must be at least 1, got -1\n", result.output)
    for args, words in [
        ([], "choose one transport"),
        (["--pty", "--tcp", "5000"], "choose one transport"),
        (["--pty", "--start", "25:99"], "--start"),
        (["--pty", "--fault", "cable"], "duration: is required"),
        (["--pty", "--scenario", "no-such-scenario"], "no such file or shipped scenario"),
    ]:
        result = CliRunner().invoke(cli, ["sim", *args])
        assert result.exit_code == 1 and words in result.output, result.output
