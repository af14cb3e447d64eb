import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import PIN_SETTINGS, Config, Overflow, PinPolicy, load_config
from acd.core.pins import hash_pin, is_pin_hash, verify_pin
from acd.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "town-hall.toml"


def test_town_hall_example_describes_the_reference_customer():
    cfg = load_config(EXAMPLE)
    assert (cfg.site.id, cfg.site.timezone) == ("town-hall", "Europe/Paris")
    front = cfg.queues["front-desk"]
    assert (front.numbers, front.priority, front.target, front.sl_threshold) == (
        ("3000",),
        1,
        0.99,
        20.0,
    )
    desk_agents = sorted(a for a, c in cfg.agents.items() if "front-desk" in c.skills)
    assert desk_agents == ["1001", "1002", "1003", "1004", "1005", "1006"]
    assert set(cfg.queues) == {"front-desk", "civil-status", "town-planning", "social-services"}
    assert verify_pin("1111", cfg.agents["1001"].pin_hash)
    assert verify_pin("9005", cfg.agents["2005"].pin_hash)
    hours = cfg.calendars["town-hall"].hours
    assert hours[0] == ((480, 1140),) and hours[5] == ((480, 780),) and 6 not in hours
    assert cfg.acd.reasons == {1: "break", 2: "lunch", 3: "back-office", 9: "no-answer"}
    assert cfg.announcements.closed == 5 and cfg.announcements.busy == 6
    assert cfg.link.url == "/dev/ttyS0"


def test_overflow_is_parsed_once_into_a_typed_value():
    queues = load_config(EXAMPLE).queues
    assert queues["front-desk"].overflow == Overflow()
    assert [q.overflow.queue for q in queues.values()] == [None, *["front-desk"] * 3]
    assert Overflow.parse("device:9999") == Overflow(device="9999")
    assert [str(Overflow.parse(t)) for t in ("clear", "queue:q", "device:1")] == [
        "clear",
        "queue:q",
        "device:1",
    ]
    with pytest.raises(ValueError, match="must be 'clear', 'queue:ID' or 'device:EXT'"):
        Overflow.parse("queue:")


def broken(mutate) -> dict:
    data = tomllib.loads(EXAMPLE.read_text())
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["site"].update(timezone="Mars/Olympus"), "site.timezone"),
        (
            lambda d: d["queues"]["front-desk"].update(strategy="fastest"),
            "queues.front-desk.strategy",
        ),
        (
            lambda d: d["queues"]["front-desk"].update(ring_timeout="15"),
            "queues.front-desk.ring_timeout",
        ),
        (lambda d: d["queues"]["front-desk"].update(colour="red"), "queues.front-desk.colour"),
        (
            lambda d: d["queues"]["front-desk"].update(overflow="queue:nowhere"),
            "queues.front-desk.overflow",
        ),
        (lambda d: d["queues"]["front-desk"].update(calendar="xmas"), "queues.front-desk.calendar"),
        (
            lambda d: d["queues"]["civil-status"].update(numbers=["3000"]),
            "queues.civil-status.numbers",
        ),
        (
            lambda d: d["queues"]["front-desk"].update(tiers=[{"min_level": 1}, {"min_level": 3}]),
            "queues.front-desk.tiers",
        ),
        (lambda d: d["link"].update(reset_interval=0), "link.reset_interval"),
        (lambda d: d["agents"]["1001"].update(pin_hash="1111"), "agents.1001.pin_hash"),
        (
            lambda d: d["agents"]["1001"]["skills"].update({"front-desk": 0}),
            "agents.1001.skills.front-desk",
        ),
        (
            lambda d: d["calendars"]["town-hall"]["hours"].update(mon="19:00-08:00"),
            "calendars.town-hall.hours.mon",
        ),
        (
            lambda d: d["calendars"]["town-hall"].update(closures=["24/12"]),
            "calendars.town-hall.closures",
        ),
        (lambda d: d["acd"]["reasons"].update({"x": "y"}), "acd.reasons.x"),
        (lambda d: d["link"].update(window=64), "link.window"),
        (lambda d: d.update(extra={}), "extra"),
        (lambda d: d.update(ha={"enabled": True}), "ha.enabled"),  # an SQLite store
        (lambda d: d.update(ha={"instance": "pc a"}), "ha.instance"),
        (lambda d: d.update(ha={"check_interval": 2.0}), "ha.check_interval"),
        (lambda d: d.update(ha={"lease_timeout": 0.5}), "ha.lease_timeout"),
    ],
)
def test_broken_configs_name_the_key(mutate, key):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(broken(mutate))
    assert info.value.key == key


def test_a_skill_naming_no_queue_is_an_error_with_the_closest_queue(tmp_path):
    misspelt = EXAMPLE.read_text().replace(
        "skills = { social-services = ", "skills = { social-service = ", 1
    )
    assert misspelt != EXAMPLE.read_text()
    path = tmp_path / "site.toml"
    path.write_text(misspelt)
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1
    agent = next(a for a, c in load_config(EXAMPLE).agents.items() if "social-services" in c.skills)
    assert result.output.strip().splitlines() == [
        f"Error: {path}: agents.{agent}.skills.social-service: no queue has the skill"
        " 'social-service' (did you mean 'social-services'?)"
    ]
    far = broken(lambda d: d["agents"]["1001"]["skills"].update({"zzz": 3}))
    with pytest.raises(ConfigError, match=r"no queue has the skill 'zzz'$") as info:
        Config.from_dict(far)
    assert info.value.key == "agents.1001.skills.zzz"


def test_pin_hashes():
    h = hash_pin("4321", n=2, r=1, p=1)
    assert is_pin_hash(h) and verify_pin("4321", h) and not verify_pin("4322", h)
    assert hash_pin("4321") != hash_pin("4321")  # salted
    assert not verify_pin("4321", "scrypt$3$1$1$xx$yy")  # bad cost: no match, no crash


def test_cli_check_ok_and_broken(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["config", "check", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "queue front-desk: longest-idle" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('strategy = "ordered"', 'strategy = "best"'))
    result = runner.invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 1
    assert "queues.social-services.strategy: must be one of" in result.output
    assert "Traceback" not in result.output


def test_cli_show_applies_environment_and_hides_secrets():
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["config", "show", "--config", str(EXAMPLE), "--json"],
        env={"ACD_MQTT_PASSWORD": "s3cret"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mqtt"]["password"] == "***" and "s3cret" not in result.output
    assert data["agents"]["1001"]["pin_hash"] == "***"
    assert data["calendars"]["town-hall"]["hours"]["sat"] == ["08:00-13:00"]
    text = runner.invoke(cli, ["config", "show"], env={"ACD_CONFIG": str(EXAMPLE)})
    assert 'site.id = "town-hall"' in text.output


def test_cli_hash_pin():
    result = CliRunner().invoke(cli, ["config", "hash-pin", "2468"])
    assert result.exit_code == 0 and verify_pin("2468", result.output.strip())
    assert CliRunner().invoke(cli, ["config", "hash-pin", "12"]).exit_code == 1


def _check_refuses(path) -> str:
    """`acd config check path`: exit 1 with a message, not an internal error; its output."""
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "internal error" not in result.output
    return result.output


def test_config_check_names_the_byte_of_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[site]\nname = "Mairie de Cr\xe9teil"\n')
    assert "not UTF-8 text: byte 0xe9 at offset 27 (line 2)" in _check_refuses(path)


def test_config_check_names_a_time_zone_too_long_for_a_file_name(tmp_path):
    path = tmp_path / "tz.toml"
    path.write_text(f'[site]\ntimezone = "{"A" * 5000}"\n')
    output = _check_refuses(path)
    assert "site.timezone: unknown time zone" in output
    assert "(5000 characters)" in output and len(output) < 300


def test_agents_pin_settings_are_read_checked_and_not_agents():
    data = broken(lambda d: d["agents"].update(pin_min_length=6, pin_attempts=3, pin_lockout=30))
    cfg = Config.from_dict(data)
    assert (cfg.pins.min_length, cfg.pins.attempts, cfg.pins.lockout) == (6, 3, 30.0)
    assert "pin_min_length" not in cfg.agents and "1001" in cfg.agents
    every = broken(lambda d: d["agents"].update({k: 7 for k in PIN_SETTINGS}))
    assert Config.from_dict(every).pins == PinPolicy(7, 7, 7.0, 7.0)  # each key is a setting
    assert set(Config.from_dict(every).agents) == set(cfg.agents)  # and none is an agent
    with pytest.raises(ConfigError, match=r"agents\.pin_min_length: must be at least 4"):
        Config.from_dict(broken(lambda d: d["agents"].update(pin_min_length=3)))


def test_hash_pin_refuses_a_pin_shorter_than_the_sites_minimum(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(
        EXAMPLE.read_text().replace(
            "[agents.1001]", "[agents]\npin_min_length = 6\n\n[agents.1001]", 1
        )
    )
    site.chmod(0o600)
    short = CliRunner().invoke(cli, ["config", "hash-pin", "1234", "--config", str(site)])
    assert short.exit_code == 1 and "a PIN is 6 to 12 digits" in short.output
    good = CliRunner().invoke(cli, ["config", "hash-pin", "123456", "--config", str(site)])
    assert good.exit_code == 0 and verify_pin("123456", good.output.strip())


def test_config_check_warns_when_pin_hashes_are_readable_by_everyone(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(EXAMPLE.read_text())
    site.chmod(0o644)
    loose = CliRunner().invoke(cli, ["config", "check", str(site)])
    assert loose.exit_code == 0 and "readable by every user (mode 0644)" in loose.output
    site.chmod(0o640)
    assert (
        "readable by every user"
        not in CliRunner().invoke(cli, ["config", "check", str(site)]).output
    )


def test_a_pair_on_postgresql_with_its_timings():
    def pair(d):
        d["store"]["url"] = "postgresql://acd@db.example/acd"
        d["ha"] = {"enabled": True, "instance": "pc-1", "lease_timeout": 6}

    ha = Config.from_dict(broken(pair)).ha
    assert (ha.enabled, ha.name(), ha.check_interval, ha.lease_timeout) == (True, "pc-1", 0.5, 6.0)
    assert ha.fence_after == 3.0
