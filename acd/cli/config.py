"""``acd config``: check a configuration file, show the effective one, hash a PIN."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from typing import Any

import click

from acd.cli.common import config_option, emit_json, fail, json_option
from acd.config import WEEKDAYS, Config, PinPolicy, exposed_pin_hashes, load_config
from acd.core.pins import hash_pin

SECRET_KEYS = ("password", "cmd_token", "pin_hash")


@click.group(short_help="Check, show, compare and prepare configuration files.")
def config() -> None:
    """Check, show and prepare configuration files (`example` prints a complete one).

    \b
    Examples:
      acd config check examples/town-hall.toml
      acd config show --config examples/town-hall.toml --json
      acd config hash-pin 1111
      acd config diff /etc/acd/site.toml site-new.toml
    """


@config.command(short_help="Validate FILE: a summary, or the key that is wrong.")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def check(file: str, as_json: bool) -> None:
    """Validate FILE: print a summary, or the error naming the key (exit 1).

    \b
    Example:
      acd config check examples/town-hall.toml
    """
    cfg = load_config(file)
    summary = _summary(cfg)
    if exposed := exposed_pin_hashes(file, cfg):
        summary["warnings"].append(exposed)
    if as_json:
        emit_json(summary)
        return
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{file}: OK")
    click.echo(f"site {cfg.site.id} ({cfg.site.name}), time zone {cfg.site.timezone}")
    click.echo(
        f"link {cfg.link.url} at {cfg.link.baudrate} bd; mqtt {cfg.mqtt.host}:{cfg.mqtt.port}"
    )
    for q in cfg.queues.values():
        numbers = ", ".join(q.numbers) or "escalation only"
        members = summary["queues"][q.id]["agents"]
        click.echo(
            f"queue {q.id}: {q.strategy}, priority {q.priority}, {members} agent(s), "
            f"numbers {numbers}, target {q.target:.0%} within {q.sl_threshold:g} s"
        )
    click.echo(
        f"{len(cfg.agents)} agent(s), {len(cfg.calendars)} calendar(s), {len(cfg.menus)} menu(s)"
    )


def _summary(cfg: Config) -> dict[str, Any]:
    return {
        "site": cfg.site.id,
        "queues": {
            q.id: {
                "strategy": q.strategy,
                "numbers": list(q.numbers),
                "agents": sum(q.skill in a.skills for a in cfg.agents.values()),
            }
            for q in cfg.queues.values()
        },
        "agents": len(cfg.agents),
        "calendars": sorted(cfg.calendars),
        "menus": sorted(cfg.menus),
        "warnings": _warnings(cfg),
    }


def _warnings(cfg: Config) -> list[str]:
    """What `acd run` would stop on or refuse with this file in this environment."""
    mqtt = cfg.mqtt
    if not mqtt.enabled:
        return []
    out = [f"{key}: {problem} (acd run stops on this)" for key, problem in mqtt.unset_env()]
    if mqtt.authenticated:
        return out
    if mqtt.allow_anonymous_commands:
        out.append(
            "mqtt.allow_anonymous_commands = true and the broker connection is not"
            " authenticated: anyone on the broker can send supervisor commands (a lab only)"
        )
    else:
        out.append(
            "mqtt: the broker connection is not authenticated (no username + password, no"
            " cert_file): acd run will refuse every supervisor command"
        )
    return out


@config.command(short_help="Print the effective configuration, secrets as ***.")
@config_option
@json_option
def show(config_path: str | None, as_json: bool) -> None:
    """Print the effective configuration (defaults and environment applied, secrets
    hidden). Without --config (or ACD_CONFIG), the defaults.

    \b
    Example:
      ACD_MQTT_PASSWORD=s3cret acd config show --config examples/town-hall.toml --json
    """
    cfg = load_config(config_path) if config_path else Config()
    data = _plain(dataclasses.asdict(cfg))
    if as_json:
        emit_json(data)
        return
    for section, values in data.items():
        _echo_flat(section, values)


def _plain(value: Any, key: str = "") -> Any:
    """JSON-ready values, secrets replaced by ``"***"``, calendar keys spelt out."""
    if key in SECRET_KEYS and value:
        return "***"
    if isinstance(value, dict):
        if key == "hours":
            return {WEEKDAYS[d]: _spans(v) for d, v in value.items()}
        if key == "openings":
            return {d.isoformat(): _spans(v) for d, v in value.items()}
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _spans(spans: Any) -> list[str]:
    """Opening spans in minutes as ``"08:00-19:00"`` strings, as written in the file."""
    return [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans]


def _echo_flat(path: str, value: Any) -> None:
    """One ``dotted.key = JSON value`` line per setting."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _echo_flat(f"{path}.{k}", v)
    else:
        click.echo(f"{path} = {json.dumps(value, ensure_ascii=False)}")


@config.command(short_help="What a reload (SIGHUP) would change from OLD to NEW.")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@json_option
def diff(old: str, new: str, as_json: bool) -> None:
    """What a reload (SIGHUP, systemctl reload acd) would change going from OLD to NEW.

    Both files are checked first. Agents, queues, skills, calendars, menus,
    announcements, [acd] and [alarms] change in place; [site], [link], [mqtt] and
    [store] need a restart (marked so). Secrets are never shown.

    \b
    Example:
      acd config diff /etc/acd/site.toml site-new.toml
    """
    from acd.config_diff import changes

    lines = changes(load_config(old), load_config(new))
    if as_json:
        emit_json(lines)
    else:
        click.echo("\n".join(lines) if lines else "no changes")


@config.command("hash-pin", short_help="Print the hash of an agent PIN for [agents].")
@click.argument("pin", required=False)
@config_option
def hash_pin_command(pin: str | None, config_path: str | None) -> None:
    """Print the hash of an agent PIN for the configuration (``pin_hash``); without PIN,
    prompt for it (not echoed, not kept in the shell history). The PIN has at least
    ``[agents] pin_min_length`` digits (of --config; 4 without one), at most 12.

    \b
    Example:
      acd config hash-pin --config examples/town-hall.toml
    """
    least = load_config(config_path).pins.min_length if config_path else PinPolicy.min_length
    if pin is None:
        pin = click.prompt("PIN", hide_input=True, confirmation_prompt=True)
    if not pin.isdigit() or not least <= len(pin) <= 12:
        fail(f"a PIN is {least} to 12 digits ([agents] pin_min_length = {least})")
    click.echo(hash_pin(pin))


@config.command(short_help="Print the reference site's configuration (the town hall).")
def example() -> None:
    """Print the reference site's configuration (the town hall), shipped with the
    package: a complete file to start from.

    \b
    Example:
      acd config example > site.toml && acd config check site.toml
    """
    from acd.shipped import example as shipped

    click.echo(shipped("town-hall.toml").read_text(encoding="utf-8"), nl=False)
