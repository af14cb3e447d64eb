"""The [mqtt] section: credentials that would be dropped or missing are errors naming the key."""

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import Config, MqttConfig, load_config
from acd.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "town-hall.toml"


def with_mqtt(**mqtt) -> dict:
    data = tomllib.loads(EXAMPLE.read_text())
    data["mqtt"] = mqtt
    return data


@pytest.mark.parametrize(
    ("mqtt", "key"),
    [
        ({"password_env": "ACD_MQTT_PASSWORD"}, "mqtt.password_env"),
        ({"password": "s3cret"}, "mqtt.password"),
        ({"tls": True, "key_file": "client.key"}, "mqtt.key_file"),
        ({"cert_file": "client.crt"}, "mqtt.cert_file"),
        ({"allow_anonymous_commands": "yes"}, "mqtt.allow_anonymous_commands"),
    ],
)
def test_credentials_the_client_would_drop_are_errors_naming_the_key(mqtt, key):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(with_mqtt(**mqtt))
    assert info.value.key == key


def test_the_town_hall_example_sends_its_password(monkeypatch):
    monkeypatch.setenv("ACD_MQTT_PASSWORD", "s3cret")
    mqtt = load_config(EXAMPLE).mqtt
    assert (mqtt.username, mqtt.password, mqtt.password_env) == (
        "acd-townhall",
        "s3cret",
        "ACD_MQTT_PASSWORD",
    )
    assert mqtt.authenticated and mqtt.unset_env() == []


def test_an_unset_or_empty_env_variable_is_reported(monkeypatch):
    monkeypatch.setenv("ACD_MQTT_PASSWORD", "")
    monkeypatch.delenv("ACD_TOKEN_X", raising=False)
    data = with_mqtt(username="u", password_env="ACD_MQTT_PASSWORD", cmd_token_env="ACD_TOKEN_X")
    mqtt = Config.from_dict(data).mqtt
    assert mqtt.password is None and not mqtt.authenticated
    assert [key for key, _ in mqtt.unset_env()] == ["mqtt.password_env", "mqtt.cmd_token_env"]
    # a value in the file is the fallback of an unset variable
    data["mqtt"]["password"] = "from-file"
    assert Config.from_dict(data).mqtt.password == "from-file"


@pytest.mark.parametrize(
    ("mqtt", "authenticated"),
    [
        (MqttConfig(), False),
        (MqttConfig(username="u"), False),
        (MqttConfig(username="u", password="p"), True),
        (MqttConfig(tls=True, cert_file="c.pem"), True),
    ],
)
def test_what_counts_as_an_authenticated_connection(mqtt, authenticated):
    assert mqtt.authenticated is authenticated


def test_run_stops_at_once_when_password_env_is_unset(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["run", "--config", str(EXAMPLE), "--link", "/dev/ttyNOPE7", "--db", str(tmp_path / "x")],
        env={"ACD_MQTT_PASSWORD": None},
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        f"Error: {EXAMPLE}: mqtt.password_env: ACD_MQTT_PASSWORD is not set (or empty)"
        " in the environment"
    ]
    assert not (tmp_path / "x").exists()


def test_check_warns_of_an_unset_env_variable_and_still_passes():
    result = CliRunner().invoke(
        cli, ["config", "check", str(EXAMPLE)], env={"ACD_MQTT_PASSWORD": None}
    )
    assert result.exit_code == 0
    assert result.stderr.startswith(
        "warning: mqtt.password_env: ACD_MQTT_PASSWORD is not set (or empty)"
    )
    assert "OK" in result.stdout


@pytest.mark.parametrize(
    ("mqtt", "warning"),
    [
        ({"username": "acd-townhall", "password": "s3cret"}, None),
        ({}, "acd run will refuse every supervisor command"),
        ({"username": "acd-townhall"}, "acd run will refuse every supervisor command"),
        ({"allow_anonymous_commands": True}, "anyone on the broker can send supervisor commands"),
        ({"enabled": False}, None),
    ],
)
def test_check_warns_when_commands_would_come_over_an_anonymous_connection(tmp_path, mqtt, warning):
    site = tmp_path / "site.toml"
    text = EXAMPLE.read_text()
    start, end = text.index("[mqtt]"), text.index("[store]")
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in mqtt.items())
    site.write_text(f"{text[:start]}[mqtt]\n{lines}\n{text[end:]}")
    site.chmod(0o600)  # it holds PIN hashes
    result = CliRunner().invoke(cli, ["config", "check", str(site)])
    assert result.exit_code == 0, result.output
    if warning is None:
        assert result.stderr == ""
    else:
        assert result.stderr.startswith("warning: mqtt") and warning in result.stderr
    data = json.loads(CliRunner().invoke(cli, ["config", "check", "--json", str(site)]).stdout)
    assert [warning in w for w in data["warnings"]] == ([] if warning is None else [True])
