"""Supervisor commands: `acd agent ready|not-ready|logout`, `acd agents`, `acd queues`,
`acd status`, all over the site's MQTT topics (``docs/mqtt.md``)."""

from __future__ import annotations

import asyncio

import click

from acd.cli.common import config_option, emit_json, json_option, timeout_option
from acd.cli.monitor import (
    broker_connection,
    host_option,
    load_site,
    port_option,
    read_snapshot,
    site_option,
)
from acd.runtime.topics import CommandAction
from acd.tools.monitor_view import clock, fit, site_zone

CREDENTIALS = """\b
Credentials: [mqtt] of the configuration, or the environment: ACD_MQTT_USERNAME,
ACD_MQTT_PASSWORD, ACD_MQTT_TOKEN (the command token). Never on the command line.
"""


@click.group(
    short_help="Set an agent ready, not ready or logged out (supervisor).",
    epilog="""\b
Examples:
  acd agent ready 1001 --config site.toml
  acd agent not-ready 1001 --reason 2 --config site.toml
  acd agent logout 1001 --site town-hall
\n"""
    + CREDENTIALS,
)
def agent() -> None:
    """Change an agent's status from a supervisor's desk (reply awaited, exit 1 if refused)."""


def _send(action: CommandAction, agent_id: str, reason: int | None, opts: dict) -> None:
    from drivers.mqtt_client import send_agent_command

    config = load_site(opts["config_path"])
    conn = broker_connection(config, opts["site"], opts["host"], opts["port"])
    asyncio.run(send_agent_command(conn, agent_id, action, reason, opts["timeout"]))
    if opts["as_json"]:
        emit_json({"agent_id": agent_id, "action": action.value, "reason": reason, "ok": True})
    else:
        extra = f" (reason {reason})" if reason is not None else ""
        click.echo(f"agent {agent_id}: {action.value.replace('_', ' ')}{extra}: accepted")


def _broker_options(fn):
    """The options of every command here: configuration, site, broker, timeout, JSON."""
    timeout = timeout_option("Seconds to wait for the controller's reply (or the retained state).")
    for option in (json_option, timeout, port_option, host_option, site_option):
        fn = option(fn)
    return config_option(fn)


def _agent_command(name: str, action: CommandAction, with_reason: bool, doc: str):
    def command(agent_id: str, reason: int | None = None, **opts) -> None:
        _send(action, agent_id, reason, opts)

    example = f"acd agent {name} 1001" + (" --reason 2" if with_reason else "")
    command.__doc__ = doc
    command = click.argument("agent_id", metavar="AGENT")(command)
    if with_reason:
        command = click.option(
            "--reason", type=click.IntRange(0, 99), help="Not-ready reason code (0..99)."
        )(command)
    command = _broker_options(command)
    epilog = f"\b\nExample:\n  {example} --config site.toml\n"
    return agent.command(name, epilog=epilog)(command)


_agent_command("ready", CommandAction.READY, False, "Ask the controller to make AGENT ready.")
_agent_command(
    "not-ready", CommandAction.NOT_READY, True, "Ask the controller to make AGENT not ready."
)
_agent_command("logout", CommandAction.LOGOUT, False, "Ask the controller to log AGENT out.")


def _reader(name: str, example: str, short_help: str):
    """A command that reads the retained state and hands its snapshot to ``show``."""

    def wrap(show):
        def command(config_path, site, host, port, timeout, as_json) -> None:
            show(read_snapshot(load_site(config_path), site, host, port, timeout), as_json)

        command.__doc__ = show.__doc__
        epilog = f"\b\nExamples:\n  acd {name} --config site.toml\n  {example}\n\n" + CREDENTIALS
        return click.command(name, short_help=short_help, epilog=epilog)(_broker_options(command))

    return wrap


def _since(ms, snap: dict) -> str:
    return "-" if ms is None else clock(ms, site_zone(snap))


@_reader(
    "agents", "acd agents --site town-hall --json", "List the agents' status and state (from MQTT)."
)
def agents(snap: dict, as_json: bool) -> None:
    """List the agents' status and state (retained agent/<id>/state topics)."""
    if as_json:
        emit_json(snap["agents"])
        return
    if not snap["agents"]:
        click.echo(f"no agent state published for site {snap['site']}")
        return
    click.echo(f"{'AGENT':<8}{'NAME':<20}{'STATUS':<12}{'STATE':<10}{'REASON':<16}{'SINCE':<10}DEV")
    for a in snap["agents"]:
        reason = "" if a["reason"] is None else f"{a['reason']} {a['reason_label']}".strip()
        click.echo(
            f"{a['agent_id']:<8}{fit(a['name'], 19):<20}{a['status'] or '?':<12}"
            f"{a['state'] or '?':<10}{reason:<16}{_since(a['since'], snap):<10}{a['device'] or ''}"
        )


@_reader("queues", "acd queues --site town-hall --json", "List the queues' figures (from MQTT).")
def queues(snap: dict, as_json: bool) -> None:
    """List the queues' figures (retained queue/<id>/stats topics)."""
    if as_json:
        emit_json(snap["queues"])
        return
    if not snap["queues"]:
        click.echo(f"no queue figures published for site {snap['site']}")
        return
    click.echo(
        f"{'QUEUE':<16}{'WAITING':>8}{'LONGEST':>9}{'OFFERED':>9}{'ANSWERED':>9}"
        f"{'ABANDONED':>10}{'ANSWER':>8}{'TARGET':>8}{'SL':>8}"
    )
    for q in snap["queues"]:
        flag = " below target" if q["below_target"] else ""
        click.echo(
            f"{q['queue_id']:<16}{_v(q.get('waiting')):>8}{_v(q['longest_wait_s'], 's'):>9}"
            f"{_v(q.get('offered')):>9}{_v(q.get('answered')):>9}{_v(q.get('abandoned')):>10}"
            f"{_pct(q.get('answer_rate')):>8}{_pct(q.get('target')):>8}"
            f"{_pct(q.get('sl_offered')):>8}{flag}"
        )


def _v(value, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@_reader(
    "status",
    "acd status --site town-hall --json",
    "Controller, link, alarms, agent and queue counts (MQTT).",
)
def status(snap: dict, as_json: bool) -> None:
    """Controller, link and alarms of the site, with agent and queue counts.

    The controller line names a pair's controllers (``[ha]``): ``pc-b online since
    10:02:41, standby: pc-a``, or ``pc-b STANDBY, active: pc-a`` while only a standby's
    status is there."""
    ctl = snap["controller"]
    counts: dict[str, int] = {}
    for a in snap["agents"]:
        counts[a["status"] or "?"] = counts.get(a["status"] or "?", 0) + 1
    summary = {
        "site": snap["site"],
        "controller": ctl,
        "link": snap["link"],
        "agents": counts,
        "queues": len(snap["queues"]),
        "alarms": snap["alarms"],
    }
    if as_json:
        emit_json(summary)
        return
    online = {True: "online", False: "OFFLINE", None: "unknown (nothing published)"}
    click.echo(f"site:       {snap['site']}")
    text = online[ctl["online"]]
    if ctl["online"] is True and ctl.get("role") == "standby":
        text = f"STANDBY, active: {ctl.get('active') or 'none'}"
    elif ctl["online"] is not None:
        text += f" since {_since(ctl['since'], snap)}" if ctl["since"] else f" ({ctl['reason']})"
        if ctl["online"] is True and ctl.get("role") == "active":
            text += f", standby: {ctl.get('standby') or 'none'}"
    if ctl.get("instance"):
        text = f"{ctl['instance']} {text}"
    click.echo(f"controller: {text}" + (f", version {ctl['version']}" if ctl["version"] else ""))
    click.echo(f"link:       {snap['link']}")
    click.echo("agents:     " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none"))
    click.echo(f"queues:     {len(snap['queues'])}")
    click.echo(f"alarms:     {len(snap['alarms']) or 'none'}")
    for alarm in snap["alarms"]:
        click.echo(f"  {alarm.get('severity', '?')}: {alarm['name']}: {alarm.get('message', '')}")
